"""OIDC bearer-token validation for the REQUEST authorizer, following RFC 8725 (JWT BCP).

Tokens come from Keycloak, Amazon Cognito or any OIDC provider listed in `OIDC_ISSUERS`. The unverified
header and `iss` only *select* configuration; nothing in them is trusted until the signature verifies
with a key from the issuer's own JWKS.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepseek_gateway.auth.principal import ALL_SCOPES, Principal, Scope
from deepseek_gateway.errors import AuthenticationError, PermissionDeniedError
from deepseek_gateway.observability import logger

Fetch = Callable[[str], dict[str, Any]]
TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOKEN_CHARS = 16_384  # bounds the work an unauthenticated caller can make us do
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Asymmetric algorithms only: HS* would let anyone holding the (public) JWKS forge tokens.
ALG_KTY = {f"{p}{n}": ("RSA" if p in ("RS", "PS") else "EC") for p in ("RS", "PS", "ES") for n in (256, 384, 512)}
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
# Headers that would let the token choose its own verification key (RFC 8725 §3.10): never honoured.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _invalid(message: str = "Invalid bearer token.") -> AuthenticationError:
    return AuthenticationError(message, code="invalid_token")


class IssuerConfig(BaseModel):
    """One trusted issuer. Unknown fields are refused so a typo never silently weakens a check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1)
    audiences: list[str] = Field(min_length=1)
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    flavor: Literal["keycloak", "cognito", "generic"] = "generic"
    tenant_claim: str = "tenant_id"
    default_tenant: str | None = None
    client_tenants: dict[str, str] = Field(default_factory=dict)
    scope_map: dict[str, Scope] = Field(default_factory=dict)
    plan_claim: str | None = None
    leeway_s: int = Field(default=30, ge=0, le=120)
    required_claims: list[str] = Field(default_factory=lambda: ["exp", "iat", "iss", "sub"])
    accept_id_tokens: bool = False  # Cognito only: ID tokens are for the client app, not for calling APIs

    @model_validator(mode="before")
    @classmethod
    def _flavor_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("flavor") == "cognito":
            data = {"tenant_claim": "custom:tenant_id",
                    "required_claims": ["sub", "exp", "iss", "client_id", "token_use"], **data}
        return data

    @field_validator("algorithms")
    @classmethod
    def _safe_algorithms(cls, algs: list[str]) -> list[str]:
        for alg in algs:
            if alg.lower() == "none":
                raise ValueError("alg 'none' is never allowed")
            if alg.upper().startswith("HS"):
                raise ValueError(f"HMAC algorithm {alg!r} is never allowed: the JWKS is public")
            if alg not in ALG_KTY:
                raise ValueError(f"unsupported algorithm {alg!r}; allowed: {sorted(ALG_KTY)}")
        return algs

    @field_validator("jwks_url")
    @classmethod
    def _safe_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise ValueError("jwks_url must be an absolute https URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("jwks_url must use https (http is allowed only for 127.0.0.1/localhost)")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> IssuerConfig:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("exactly one of jwks_url and jwks_file is required")
        tenants = [self.default_tenant, *self.client_tenants.values()]
        if any(t is not None and not TENANT_RE.match(t) for t in tenants):
            raise ValueError("tenant ids must match ^[A-Za-z0-9_-]{1,64}$")
        if self.accept_id_tokens and self.flavor != "cognito":
            raise ValueError("accept_id_tokens applies only to flavor 'cognito'")
        return self


def parse_issuers(raw: str | None) -> list[IssuerConfig]:
    """Reads `OIDC_ISSUERS` (a JSON list); unset or blank means OIDC is off. Bad config fails loudly at cold start."""
    if raw is None or not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"OIDC_ISSUERS is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(items, list):
        raise ValueError("OIDC_ISSUERS must be a JSON list of issuer objects")
    configs: list[IssuerConfig] = []
    for i, item in enumerate(items):
        try:
            configs.append(IssuerConfig.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"OIDC_ISSUERS[{i}] is invalid: {problems}") from None
    issuers = [c.issuer for c in configs]
    if len(set(issuers)) != len(issuers):
        raise ValueError("OIDC_ISSUERS lists an issuer more than once")
    return configs


def http_fetch(url: str) -> dict[str, Any]:
    """Default JWKS fetcher. Redirects are not followed: the configured URL is the only trusted source."""
    import httpx  # lazy: keeps cold starts fast for API-key-only deployments

    response = httpx.get(url, timeout=3, follow_redirects=False)
    response.raise_for_status()
    return response.json()


class _IssuerKeys:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}  # kid -> raw JWK
        self.parsed: dict[tuple[str, str], jwt.PyJWK] = {}  # (kid, alg) -> key bound to that alg
        self.fetched_at: float | None = None
        self.last_attempt: float | None = None


class JwksCache:
    """Per-issuer signing keys. Refetches on an unknown `kid` or after `max_age_s`, but never more than once
    per `cooldown_s`, so a flood of tokens with random kids cannot turn us into a JWKS-endpoint hammer."""

    def __init__(self, fetch: Fetch | None = None, clock: Callable[[], float] = time.time,
                 cooldown_s: float = 60.0, max_age_s: float = 3600.0) -> None:
        self._fetch = fetch or http_fetch
        self._clock = clock
        self.cooldown_s = cooldown_s
        self.max_age_s = max_age_s
        self._state: dict[str, _IssuerKeys] = {}
        self._lock = threading.Lock()

    def key(self, cfg: IssuerConfig, kid: str, alg: str) -> jwt.PyJWK | None:
        """The issuer's key for `kid`, bound to `alg`; None when unknown or of the wrong type for `alg`."""
        with self._lock:
            state = self._state.setdefault(cfg.issuer, _IssuerKeys())
            now = self._clock()
            stale = state.fetched_at is None or (cfg.jwks_url is not None and now - state.fetched_at >= self.max_age_s)
            if stale or kid not in state.keys:
                self._maybe_refresh(cfg, state, now)
            raw = state.keys.get(kid)
            if raw is None or not _key_fits(raw, alg):
                return None
            if (kid, alg) not in state.parsed:
                try:
                    state.parsed[(kid, alg)] = jwt.PyJWK(raw, algorithm=alg)
                except jwt.PyJWTError:
                    return None
            return state.parsed[(kid, alg)]

    def _maybe_refresh(self, cfg: IssuerConfig, state: _IssuerKeys, now: float) -> None:
        if cfg.jwks_file is not None and state.fetched_at is not None:
            return  # a file is read once: it changes only with a deployment
        if state.last_attempt is not None and now - state.last_attempt < self.cooldown_s:
            return
        state.last_attempt = now
        try:
            if cfg.jwks_file is not None:
                with open(cfg.jwks_file, encoding="utf-8") as fh:
                    document = json.load(fh)
            else:
                document = self._fetch(cfg.jwks_url or "")
            keys = _usable_keys(document)
        except Exception as exc:  # keep serving the keys we have; retry after the cool-down
            logger.warning("JWKS refresh failed", extra={"issuer": cfg.issuer, "error": type(exc).__name__})
            return
        state.keys, state.parsed, state.fetched_at = keys, {}, now  # rotation: keys gone from the set are dropped


def _usable_keys(document: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, dict[str, Any]] = {}
    for raw in document["keys"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str) or raw.get("use", "sig") != "sig":
            continue
        if raw.get("kty") not in ("RSA", "EC") or "d" in raw:  # public asymmetric keys only
            continue
        try:
            jwt.PyJWK(raw)
        except jwt.PyJWTError:
            continue
        keys[raw["kid"]] = raw
    return keys


def _key_fits(raw: dict[str, Any], alg: str) -> bool:
    """RFC 8725 §3.1: the key decides the algorithm family, never the token header alone."""
    if raw.get("kty") != ALG_KTY.get(alg) or raw.get("alg", alg) != alg:
        return False
    return alg not in EC_CURVES or raw.get("crv") == EC_CURVES[alg]


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _dig(value: Any, *path: str) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _claim(claims: dict[str, Any], name: str, nested: bool) -> Any:
    """A claim by name; `a.b` also reaches nested objects (Keycloak mappers and generic IdPs nest claims)."""
    if not nested or name in claims:
        return claims.get(name)
    return _dig(claims, *name.split("."))


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class OidcValidator:
    """Validates bearer JWTs against the configured issuers and maps their claims to a Principal."""

    def __init__(self, issuers: list[IssuerConfig], fetch: Fetch | None = None,
                 clock: Callable[[], float] = time.time, *, jwks: JwksCache | None = None) -> None:
        self.issuers = {cfg.issuer: cfg for cfg in issuers}
        self.jwks = jwks or JwksCache(fetch, clock)

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Cheap routing test (JWT or API key?); says nothing about validity."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not SEGMENT_RE.match(token):
            return False
        header = _b64json(token.split(".", 1)[0])
        return isinstance(header, dict) and "alg" in header

    def validate(self, token: str) -> Principal:
        if not self.looks_like_jwt(token):
            raise _invalid()
        head_b64, body_b64, _ = token.split(".")
        header, unverified = _b64json(head_b64), _b64json(body_b64)
        alg, kid = header.get("alg"), header.get("kid")
        if (not isinstance(alg, str) or alg not in ALG_KTY  # exact match: rejects none/None/NONE/nOnE and every HS*
                or any(name in header for name in FORBIDDEN_HEADERS) or not isinstance(kid, str) or not kid
                or not isinstance(unverified, dict) or not isinstance(unverified.get("iss"), str)):
            raise _invalid()
        cfg = self.issuers.get(unverified["iss"])  # selects configuration only; verified below
        if cfg is None:
            raise _invalid("The token's issuer is not trusted.")
        key = self.jwks.key(cfg, kid, alg) if alg in cfg.algorithms else None
        if key is None:
            raise _invalid()
        cognito_access = cfg.flavor == "cognito" and unverified.get("token_use") != "id"
        if cfg.flavor == "cognito" and not cognito_access and not cfg.accept_id_tokens:
            raise _invalid("ID tokens are not accepted; send an access token.")
        claims = self._decode(token, key, alg, cfg, cognito_access)
        # RFC 8725 §3.11: a validly signed token of another kind (ID, refresh) must not pass as an access token.
        if cfg.flavor == "cognito" and claims.get("token_use") != ("access" if cognito_access else "id"):
            raise _invalid()
        if cfg.flavor == "keycloak" and claims.get("typ", "Bearer") != "Bearer":
            raise _invalid("Only access tokens are accepted.")
        if cognito_access and claims.get("client_id") not in cfg.audiences:
            raise _invalid("The token's audience is not accepted.")
        return self._principal(cfg, claims)

    @staticmethod
    def _decode(token: str, key: jwt.PyJWK, alg: str, cfg: IssuerConfig, cognito_access: bool) -> dict[str, Any]:
        required = list(cfg.required_claims)
        if cfg.flavor == "cognito" and not cognito_access:
            required = [c for c in required if c != "client_id"] + ["aud"]
        try:
            return jwt.decode(
                token, key, algorithms=[alg], issuer=cfg.issuer, leeway=cfg.leeway_s,
                audience=None if cognito_access else cfg.audiences,
                options={"require": required, "verify_aud": not cognito_access, "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("The token is not yet valid.") from None
        except jwt.InvalidAudienceError:
            raise _invalid("The token's audience is not accepted.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"The token lacks the required claim `{exc.claim}`.") from None
        except jwt.PyJWTError:
            raise _invalid() from None

    @staticmethod
    def _principal(cfg: IssuerConfig, claims: dict[str, Any]) -> Principal:
        nested = cfg.flavor != "cognito"
        client = claims.get("client_id") or claims.get("clientId") or claims.get("azp")
        client = client if isinstance(client, str) and client else None
        external = _words(claims.get("scope"))
        if cfg.flavor == "keycloak":
            external += _words(_dig(claims, "realm_access", "roles"))
            # Client roles count only for our own clients: another client's "admin" role is not ours.
            for name in set(cfg.audiences) | ({client} & set(cfg.client_tenants)):
                external += _words(_dig(claims, "resource_access", name, "roles"))
        elif cfg.flavor == "cognito":
            external += _words(claims.get("cognito:groups"))
        else:
            external += _words(claims.get("scp")) + _words(claims.get("roles"))
        scopes = frozenset(s for v in external if (s := cfg.scope_map.get(v, v)) in ALL_SCOPES)
        if not scopes:
            raise PermissionDeniedError("The token grants no gateway scope.")

        tenant = _claim(claims, cfg.tenant_claim, nested)
        if tenant is None:
            tenant = cfg.client_tenants.get(client or "") or cfg.default_tenant
        if tenant is None:
            raise PermissionDeniedError("The token names no tenant.")
        if not isinstance(tenant, str) or not TENANT_RE.match(tenant):
            raise PermissionDeniedError("The token's tenant is not valid.")

        sub = claims.get("sub")
        machine = client is not None and (
            not sub or sub in (client, f"{client}@clients")
            or (cfg.flavor == "keycloak" and ("client_id" in claims or "clientId" in claims)))
        principal_id = client if machine else sub
        if not isinstance(principal_id, str) or not principal_id:
            raise _invalid()
        plan = _claim(claims, cfg.plan_claim, nested) if cfg.plan_claim else None
        plan = plan if isinstance(plan, str) and TENANT_RE.match(plan) else "default"
        return Principal(kind="oidc", tenant_id=tenant, principal_id=principal_id, scopes=scopes, plan=plan,
                         issuer=cfg.issuer)
