"""Decides who a request comes from: an API key or an OIDC token, resolved to a Principal.

Used by the authorizer function; its answers are cached by API Gateway for the authorizer TTL,
which is why a revoked key stops working within that TTL rather than at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from deepseek_gateway.auth import api_keys
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.errors import AuthenticationError, PermissionDeniedError
from deepseek_gateway.tenancy.store import TenantStore

if TYPE_CHECKING:
    from deepseek_gateway.auth.oidc import OidcValidator

_MISSING = "You didn't provide an API key. Send it as `Authorization: Bearer <key>` or in `x-api-key`."
_INCORRECT = "Incorrect API key provided."


def presented_credential(headers: Mapping[str, str]) -> str | None:
    """The bearer token from Authorization, else x-api-key (header names in any case)."""
    lower = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    authorization = lower.get("authorization", "").strip()
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return lower.get("x-api-key", "").strip() or None


class Authenticator:
    def __init__(
        self, store: TenantStore, oidc: OidcValidator | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._oidc = oidc
        self._clock = clock

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        credential = presented_credential(headers)
        if not credential:
            raise AuthenticationError(_MISSING, code="missing_api_key")
        if credential.startswith(api_keys.PREFIX):
            principal = self._api_key(credential)
        elif self._oidc is not None and self._oidc.looks_like_jwt(credential):
            principal = self._oidc.validate(credential)
        else:
            raise AuthenticationError(_INCORRECT)
        tenant = self._store.get_tenant(principal.tenant_id)
        if tenant is None or tenant.status != "active":
            raise PermissionDeniedError("This tenant is disabled or unknown.", code="tenant_disabled")
        return principal.model_copy(update={"plan": tenant.plan})

    def _api_key(self, credential: str) -> Principal:
        parsed = api_keys.parse(credential)
        if parsed is None:
            raise AuthenticationError(_INCORRECT)
        key_id, secret = parsed
        record = self._store.key_for_authorization(key_id)
        # A missing key and a wrong secret are indistinguishable to the caller.
        if record is None or not api_keys.matches(secret, str(record.get("digest", ""))):
            raise AuthenticationError(_INCORRECT)
        if record.get("revoked_at") is not None:
            raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
        expires_at = record.get("expires_at")
        if expires_at is not None and int(expires_at) <= self._clock():
            raise AuthenticationError("This API key has expired.", code="expired_api_key")
        return Principal(
            tenant_id=str(record["tenant_id"]),
            principal_id=key_id,
            kind="api_key",
            scopes=frozenset(record.get("scopes") or []),
            key_id=key_id,
        )


def context_of(principal: Principal) -> dict[str, str]:
    """Authorizer context values must be strings, numbers or booleans: scopes travel space-separated."""
    return {
        "tenant_id": principal.tenant_id,
        "principal_id": principal.principal_id,
        "kind": principal.kind,
        "scopes": " ".join(sorted(principal.scopes)),
        "plan": principal.plan,
        "key_id": principal.key_id or "",
        "issuer": principal.issuer or "",
    }


def principal_from_context(context: Mapping[str, Any] | None) -> Principal | None:
    """The Principal the authorizer put in the request context; None when there is none."""
    if not context or not context.get("tenant_id"):
        return None
    return Principal(
        tenant_id=str(context["tenant_id"]),
        principal_id=str(context.get("principal_id") or context["tenant_id"]),
        kind="oidc" if context.get("kind") == "oidc" else "api_key",
        scopes=frozenset(s for s in str(context.get("scopes", "")).split() if s in {"chat", "batch", "files", "admin"}),
        plan=str(context.get("plan") or "default"),
        key_id=str(context.get("key_id")) or None,
        issuer=str(context.get("issuer")) or None,
    )
