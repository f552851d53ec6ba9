"""OIDC bearer tokens (RFC 8725): every known JWT attack is refused, and real IdP token shapes map to Principals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import warnings
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from deepseek_gateway.auth.oidc import IssuerConfig, JwksCache, OidcValidator, parse_issuers
from deepseek_gateway.errors import AuthenticationError, PermissionDeniedError
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.warnings import InsecureKeyLengthWarning

# Keys are generated once per module: RSA generation dominates the run time otherwise.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_NEW = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())

KC_ISS = "https://kc.example.com/realms/acme"
KC_JWKS = f"{KC_ISS}/protocol/openid-connect/certs"
COG_ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf"
COG_JWKS = f"{COG_ISS}/.well-known/jwks.json"
GEN_ISS = "https://idp.example.org/"
GEN_JWKS = "https://idp.example.org/.well-known/jwks.json"


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", **extra}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj).encode())


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetcher:
    """Serves a JWKS document per URL and counts fetches; `fail` makes the endpoint go down."""

    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents
        self.urls: list[str] = []
        self.fail = False

    def __call__(self, url: str) -> dict[str, Any]:
        self.urls.append(url)
        if self.fail:
            raise ConnectionError("JWKS endpoint down")
        return self.documents[url]

    @property
    def calls(self) -> int:
        return len(self.urls)


def default_jwks() -> dict[str, dict[str, Any]]:
    keys = {"keys": [rsa_jwk(RSA_KEY, "rsa-1", alg="RS256"), ec_jwk(EC_KEY, "ec-1")]}
    return {KC_JWKS: keys, COG_JWKS: keys, GEN_JWKS: keys}


KEYCLOAK = IssuerConfig(
    issuer=KC_ISS, audiences=["gateway"], jwks_url=KC_JWKS, flavor="keycloak", plan_claim="plan",
    scope_map={"gateway-admin": "admin", "gateway-user": "chat"}, client_tenants={"batch-robot": "acme-batch"},
)
COGNITO = IssuerConfig(
    issuer=COG_ISS, audiences=["app-client-1", "m2m-client"], jwks_url=COG_JWKS, flavor="cognito",
    scope_map={"gateway/chat": "chat", "gateway/admin": "admin", "gateway-admins": "admin"},
    client_tenants={"m2m-client": "tenant-m2m"},
)
GENERIC = IssuerConfig(issuer=GEN_ISS, audiences=["api://gateway"], jwks_url=GEN_JWKS, tenant_claim="org.tenant",
                       algorithms=["RS256", "ES256"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fetcher() -> FakeFetcher:
    return FakeFetcher(default_jwks())


@pytest.fixture
def validator(fetcher: FakeFetcher, clock: FakeClock) -> OidcValidator:
    return OidcValidator([KEYCLOAK, COGNITO, GENERIC], fetch=fetcher, clock=clock)


def claims(iss: str = KC_ISS, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": iss, "sub": "user-123", "aud": "gateway", "iat": now, "exp": now + 300, "tenant_id": "acme",
            "scope": "openid chat"}
    return {k: v for k, v in {**base, **extra}.items() if v is not None}


def mint(payload: dict[str, Any], key: Any = RSA_KEY, kid: str | None = "rsa-1", alg: str = "RS256",
         **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, **headers} if kid else headers or None)


def rejected(validator: OidcValidator, token: str, message: str | None = None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        validator.validate(token)
    assert caught.value.code == "invalid_token"
    assert caught.value.status == 401
    if token:
        assert token not in str(caught.value) and token not in json.dumps(caught.value.to_body())
    if message is not None:
        assert caught.value.message == message
    return caught.value


def denied(validator: OidcValidator, token: str, message: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        validator.validate(token)
    assert caught.value.status == 403 and caught.value.message == message
    assert token not in str(caught.value)


# --- accepted token shapes -------------------------------------------------------------------------------------


def test_given_keycloak_token_with_realm_and_client_roles_when_validated_then_tenant_and_mapped_scopes(validator):
    token = mint(claims(
        azp="web-ui", plan="pro", scope="openid profile files",
        realm_access={"roles": ["offline_access", "gateway-admin"]},
        resource_access={"gateway": {"roles": ["gateway-user"]}, "other-app": {"roles": ["batch"]}},
    ))

    principal = validator.validate(token)

    assert principal.kind == "oidc" and principal.issuer == KC_ISS
    assert principal.tenant_id == "acme" and principal.principal_id == "user-123" and principal.plan == "pro"
    assert principal.scopes == frozenset({"admin", "chat", "files"})  # "batch" of another client is not ours


def test_given_keycloak_service_account_token_when_validated_then_client_is_principal_and_mapped_tenant(validator):
    token = mint(claims(sub="8f1c-service-user", azp="batch-robot", client_id="batch-robot", tenant_id=None,
                        scope="batch"))

    principal = validator.validate(token)

    assert principal.principal_id == "batch-robot" and principal.tenant_id == "acme-batch"
    assert principal.scopes == frozenset({"batch"})


def test_given_cognito_access_token_when_validated_then_scope_groups_and_custom_tenant_apply(validator):
    token = mint(claims(iss=COG_ISS, aud=None, client_id="app-client-1", token_use="access",
                        scope="gateway/chat", tenant_id=None, **{"cognito:groups": ["gateway-admins"],
                                                                 "custom:tenant_id": "globex"}))

    principal = validator.validate(token)

    assert principal.tenant_id == "globex" and principal.principal_id == "user-123"
    assert principal.scopes == frozenset({"chat", "admin"})


def test_given_cognito_client_credentials_token_when_validated_then_client_tenants_supply_the_tenant(validator):
    token = mint(claims(iss=COG_ISS, aud=None, sub="m2m-client", client_id="m2m-client", token_use="access",
                        scope="gateway/chat gateway/unknown", tenant_id=None, iat=None))

    principal = validator.validate(token)

    assert principal.principal_id == "m2m-client" and principal.tenant_id == "tenant-m2m"
    assert principal.scopes == frozenset({"chat"})


def test_given_cognito_access_token_for_another_app_client_when_validated_then_rejected(validator):
    token = mint(claims(iss=COG_ISS, aud=None, client_id="someone-elses-client", token_use="access",
                        scope="gateway/chat", **{"custom:tenant_id": "globex"}))
    rejected(validator, token, "The token's audience is not accepted.")


def test_given_cognito_id_token_when_access_expected_then_rejected_by_default(validator):
    token = mint(claims(iss=COG_ISS, aud="app-client-1", token_use="id", **{"cognito:groups": ["gateway-admins"],
                                                                           "custom:tenant_id": "globex"}))
    rejected(validator, token, "ID tokens are not accepted; send an access token.")


def test_given_issuer_opting_in_to_id_tokens_when_cognito_id_token_validated_then_aud_is_checked(fetcher, clock):
    cfg = COGNITO.model_copy(update={"accept_id_tokens": True})
    validator = OidcValidator([cfg], fetch=fetcher, clock=clock)
    extra = {"cognito:groups": ["gateway-admins"], "custom:tenant_id": "globex", "scope": None}

    principal = validator.validate(mint(claims(iss=COG_ISS, aud="app-client-1", token_use="id", **extra)))

    assert principal.tenant_id == "globex" and principal.scopes == frozenset({"admin"})
    rejected(validator, mint(claims(iss=COG_ISS, aud="other-client", token_use="id", **extra)))
    # An access token whose token_use was not "access" is not an ID token either.
    rejected(validator, mint(claims(iss=COG_ISS, aud=None, client_id="app-client-1", token_use="refresh", **extra)))


@pytest.mark.parametrize("typ", ["ID", "Refresh", "Logout"])
def test_given_keycloak_token_that_is_not_an_access_token_when_validated_then_rejected(validator, typ):
    rejected(validator, mint(claims(typ=typ)), "Only access tokens are accepted.")
    assert validator.validate(mint(claims(typ="Bearer"))).tenant_id == "acme"


def test_given_generic_es256_token_with_nested_tenant_when_validated_then_accepted(validator):
    token = mint(claims(iss=GEN_ISS, aud=["api://gateway", "other"], org={"tenant": "initech"}, scope=None,
                        scp=["files"], roles=["chat"]), key=EC_KEY, kid="ec-1", alg="ES256")

    principal = validator.validate(token)

    assert principal.tenant_id == "initech" and principal.scopes == frozenset({"files", "chat"})


def test_given_token_without_tenant_when_issuer_has_default_tenant_then_default_used(fetcher, clock):
    validator = OidcValidator([GENERIC.model_copy(update={"default_tenant": "solo"})], fetch=fetcher, clock=clock)
    principal = validator.validate(mint(claims(iss=GEN_ISS, aud="api://gateway", tenant_id=None)))
    assert principal.tenant_id == "solo"


# --- 403: authenticated but not authorised ---------------------------------------------------------------------


def test_given_valid_token_without_gateway_scope_when_validated_then_permission_denied(validator):
    token = mint(claims(scope="openid profile", realm_access={"roles": ["offline_access"]}))
    denied(validator, token, "The token grants no gateway scope.")


def test_given_valid_token_without_tenant_when_validated_then_permission_denied(validator):
    denied(validator, mint(claims(tenant_id=None, azp="web-ui")), "The token names no tenant.")


@pytest.mark.parametrize("tenant", ["../etc", "", "a" * 65, ["acme"], 42])
def test_given_token_with_malformed_tenant_when_validated_then_permission_denied(validator, tenant):
    denied(validator, mint(claims(tenant_id=tenant)), "The token's tenant is not valid.")


# --- attacks ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_given_alg_none_in_any_casing_when_validated_then_rejected(validator, alg, signature):
    token = f"{b64json({'alg': alg, 'kid': 'rsa-1', 'typ': 'JWT'})}.{b64json(claims())}.{signature}"
    rejected(validator, token, "Invalid bearer token.")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_given_hmac_token_keyed_with_the_rsa_public_pem_when_validated_then_rejected(validator, alg):
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64json({'alg': alg, 'kid': 'rsa-1'})}.{b64json(claims())}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    token = f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), digest).digest())}"
    rejected(validator, token)


def test_given_expired_token_when_validated_then_rejected_as_expired(validator):
    now = int(time.time())
    rejected(validator, mint(claims(iat=now - 600, exp=now - 60)), "The token has expired.")


def test_given_expiry_within_leeway_when_validated_then_accepted(validator):
    assert validator.validate(mint(claims(exp=int(time.time()) - 10))).tenant_id == "acme"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_given_nbf_or_iat_in_the_future_when_validated_then_rejected_beyond_leeway_and_accepted_within(
        validator, claim):
    now = int(time.time())
    rejected(validator, mint(claims(**{claim: now + 120})), "The token is not yet valid.")
    assert validator.validate(mint(claims(**{claim: now + 10}))).principal_id == "user-123"


@pytest.mark.parametrize("iss", ["https://evil.example.com/realms/acme", KC_ISS + "/", KC_ISS.upper()])
def test_given_untrusted_issuer_when_validated_then_rejected_without_fetching_keys(validator, fetcher, iss):
    rejected(validator, mint(claims(iss=iss)), "The token's issuer is not trusted.")
    assert fetcher.calls == 0


def test_given_token_without_iss_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(iss=None)))


@pytest.mark.parametrize("aud", ["account", ["account", "other"], None])
def test_given_wrong_or_missing_audience_when_validated_then_rejected(validator, aud):
    rejected(validator, mint(claims(aud=aud)))


@pytest.mark.parametrize("missing", ["exp", "sub", "iat"])
def test_given_token_missing_a_required_claim_when_validated_then_rejected(validator, missing):
    rejected(validator, mint(claims(**{missing: None})), f"The token lacks the required claim `{missing}`.")


def test_given_unknown_kid_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(), kid="not-a-published-kid"))


def test_given_token_without_kid_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(), kid=None))


def test_given_a_flood_of_random_kids_when_validated_then_at_most_one_fetch_per_cooldown(validator, fetcher, clock):
    body = b64json(claims())

    def flood() -> None:
        for _ in range(1000):
            rejected(validator, f"{b64json({'alg': 'RS256', 'kid': secrets.token_hex(8)})}.{body}.c2ln")

    flood()
    assert fetcher.calls == 1
    clock.now += 59
    flood()
    assert fetcher.calls == 1
    clock.now += 2  # the cool-down has passed
    flood()
    assert fetcher.calls == 2
    assert validator.validate(mint(claims())).tenant_id == "acme"  # real tokens still work, without a fetch
    assert fetcher.calls == 2


def test_given_tampered_payload_when_validated_then_signature_mismatch_rejected(validator):
    header, _, signature = mint(claims(tenant_id="acme")).split(".")
    rejected(validator, f"{header}.{b64json(claims(tenant_id='victim', scope='admin'))}.{signature}")


def test_given_token_signed_by_another_key_with_an_existing_kid_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(), key=ATTACKER_KEY, kid="rsa-1"))


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c"])
def test_given_key_source_header_injection_when_validated_then_rejected_and_never_fetched(
        validator, fetcher, header):
    values = {"jku": "https://evil.example.com/jwks.json", "x5u": "https://evil.example.com/cert.pem",
              "jwk": rsa_jwk(ATTACKER_KEY, "rsa-1"), "x5c": ["MIIBIjANBgkq"]}
    for key in (ATTACKER_KEY, RSA_KEY):  # attacker-signed with its embedded key, and even a genuinely signed one
        rejected(validator, mint(claims(), key=key, **{header: values[header]}))
    assert all(url == KC_JWKS for url in fetcher.urls)


def test_given_algorithm_outside_the_allow_list_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(), alg="RS512"))
    rejected(validator, mint(claims(), alg="PS256"))


def test_given_ec_kid_with_an_rs256_header_when_validated_then_rejected(validator):
    rejected(validator, mint(claims(), kid="ec-1", alg="RS256"))
    rejected(validator, mint(claims(), key=EC_KEY, kid="rsa-1", alg="ES256"))


def test_given_jwks_key_pinned_to_another_alg_when_token_claims_a_sibling_alg_then_rejected(fetcher, clock):
    cfg = KEYCLOAK.model_copy(update={"algorithms": ["RS256", "PS256"]})
    validator = OidcValidator([cfg], fetch=fetcher, clock=clock)
    rejected(validator, mint(claims(), alg="PS256"))  # the JWK says alg RS256


def test_given_weak_rsa_key_in_jwks_when_validated_then_rejected(clock):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    validator = OidcValidator([KEYCLOAK], fetch=FakeFetcher({KC_JWKS: {"keys": [rsa_jwk(weak, "weak")]}}),
                              clock=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = mint(claims(), key=weak, kid="weak")
    rejected(validator, token)


def test_given_oversized_or_malformed_tokens_when_validated_then_rejected(validator):
    for token in ["", "sk-abc", "a.b", "a.b.c.d.e", "!!.??.xx", mint(claims(pad="x" * 20_000)),
                  f"{b64(b'not json')}.{b64json(claims())}.c2ln", f"{b64json({'alg': 'RS256', 'kid': 'rsa-1'})}.e30",
                  f"{b64json({'alg': ['RS256'], 'kid': 'rsa-1'})}.{b64json(claims())}.c2ln",
                  f"{b64json({'alg': 'RS256', 'kid': {'k': 1}})}.{b64json(claims())}.c2ln",
                  f"{b64json({'alg': 'RS256', 'kid': 'rsa-1'})}.{b64(b'[1]')}.c2ln",
                  f"{b64json({'alg': 'RS256', 'kid': 'rsa-1'})}.{b64json({'iss': [KC_ISS]})}.c2ln"]:
        rejected(validator, token)


# --- keys: rotation, max age, outages, files ------------------------------------------------------------------


def test_given_issuer_rotates_its_key_when_new_kid_arrives_then_one_refresh_accepts_it_and_old_kid_is_dropped(
        validator, fetcher, clock):
    old_token = mint(claims())
    assert validator.validate(old_token).tenant_id == "acme"
    fetcher.documents[KC_JWKS] = {"keys": [rsa_jwk(RSA_KEY_NEW, "rsa-2")]}
    clock.now += 61

    assert validator.validate(mint(claims(), key=RSA_KEY_NEW, kid="rsa-2")).tenant_id == "acme"
    assert fetcher.calls == 2
    rejected(validator, old_token)
    assert fetcher.calls == 2  # still in the cool-down: the dropped kid does not trigger another fetch


def test_given_cached_keys_older_than_max_age_when_validated_then_refetched(validator, fetcher, clock):
    token = mint(claims())
    validator.validate(token)
    clock.now += 3599
    validator.validate(token)
    assert fetcher.calls == 1
    clock.now += 2
    validator.validate(token)
    assert fetcher.calls == 2


@pytest.mark.parametrize("broken", [ConnectionError, {"no": "keys"}, {"keys": "nope"}])
def test_given_jwks_endpoint_failing_when_keys_expire_then_last_good_keys_keep_working(
        validator, fetcher, clock, broken):
    token = mint(claims())
    validator.validate(token)
    clock.now += 4000
    if broken is ConnectionError:
        fetcher.fail = True
    else:
        fetcher.documents[KC_JWKS] = broken
    assert validator.validate(token).tenant_id == "acme"
    assert fetcher.calls == 2


def test_given_jwks_endpoint_down_at_cold_start_when_validated_then_rejected_and_retried_after_cooldown(
        validator, fetcher, clock):
    fetcher.fail = True
    token = mint(claims())
    rejected(validator, token)
    rejected(validator, token)
    assert fetcher.calls == 1
    fetcher.fail = False
    clock.now += 60
    assert validator.validate(token).tenant_id == "acme"


def test_given_jwks_file_when_validated_then_file_read_once_and_never_fetched(tmp_path, fetcher, clock):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk(RSA_KEY, "rsa-1")]}))
    cfg = KEYCLOAK.model_copy(update={"jwks_url": None, "jwks_file": str(path)})
    validator = OidcValidator([cfg], fetch=fetcher, clock=clock)

    assert validator.validate(mint(claims())).tenant_id == "acme"
    path.unlink()
    clock.now += 10_000
    assert validator.validate(mint(claims())).tenant_id == "acme"
    rejected(validator, mint(claims(), kid="other"))
    assert fetcher.calls == 0


def test_given_jwks_with_unusable_entries_when_loaded_then_only_public_signing_keys_kept(clock):
    private = {**rsa_jwk(RSA_KEY, "priv"), "d": "AAAA"}
    doc = {"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, rsa_jwk(RSA_KEY, "enc", use="enc"), private,
                    "junk", {"kty": "RSA", "kid": "broken"}, rsa_jwk(RSA_KEY, "good")]}
    cache = JwksCache(FakeFetcher({KC_JWKS: doc}), clock)
    assert [kid for kid in ("hmac", "enc", "priv", "broken", "good") if cache.key(KEYCLOAK, kid, "RS256")] == ["good"]


# --- looks_like_jwt --------------------------------------------------------------------------------------------


def test_given_various_credentials_when_checked_then_only_jwt_shapes_look_like_jwts():
    assert OidcValidator.looks_like_jwt(mint(claims()))
    assert OidcValidator.looks_like_jwt(f"{b64json({'alg': 'none'})}.{b64json({})}.")
    for value in ["sk-live-abc.def.ghi", "abc", "a.b", f"{b64json({'typ': 'JWT'})}.e30.c2ln", "a b.c.d"]:
        assert not OidcValidator.looks_like_jwt(value)


# --- OIDC_ISSUERS ----------------------------------------------------------------------------------------------


def test_given_keycloak_and_cognito_config_when_parsed_then_flavor_defaults_apply():
    raw = json.dumps([
        {"issuer": KC_ISS, "audiences": ["gateway"], "jwks_url": KC_JWKS, "flavor": "keycloak",
         "scope_map": {"gateway-admin": "admin"}},
        {"issuer": COG_ISS, "audiences": ["app-client-1"], "jwks_url": COG_JWKS, "flavor": "cognito",
         "client_tenants": {"m2m-client": "tenant-m2m"}},
        {"issuer": "http://127.0.0.1:4566/local", "audiences": ["gateway"], "jwks_url": "http://localhost:4566/jwks"},
    ])

    keycloak, cognito, local = parse_issuers(raw)

    assert keycloak.tenant_claim == "tenant_id" and keycloak.algorithms == ["RS256", "ES256"]
    assert keycloak.required_claims == ["exp", "iat", "iss", "sub"] and keycloak.leeway_s == 30
    assert cognito.tenant_claim == "custom:tenant_id"
    assert cognito.required_claims == ["sub", "exp", "iss", "client_id", "token_use"]
    assert local.flavor == "generic"
    assert parse_issuers(None) == [] and parse_issuers("  ") == []


@pytest.mark.parametrize(("change", "reason"), [
    ({"algorithms": ["none"]}, "never allowed"),
    ({"algorithms": ["RS256", "None"]}, "never allowed"),
    ({"algorithms": ["HS256"]}, "HMAC"),
    ({"algorithms": ["hs512"]}, "HMAC"),
    ({"algorithms": ["EdDSA"]}, "unsupported algorithm"),
    ({"algorithms": []}, "algorithms"),
    ({"jwks_url": "http://idp.example.com/jwks"}, "https"),
    ({"jwks_url": "http://10.0.0.5/jwks"}, "https"),
    ({"jwks_url": "ftp://idp.example.com/jwks"}, "https"),
    ({"jwks_url": None}, "exactly one"),
    ({"jwks_file": "/tmp/jwks.json"}, "exactly one"),
    ({"audiences": []}, "audiences"),
    ({"leeway_s": 121}, "leeway_s"),
    ({"scope_map": {"gateway-admin": "root"}}, "scope_map"),
    ({"default_tenant": "a/b"}, "tenant ids"),
    ({"client_tenants": {"c": "x y"}}, "tenant ids"),
    ({"audience": "gateway"}, "audience"),
    ({"flavor": "auth0"}, "flavor"),
    ({"accept_id_tokens": True}, "cognito"),
])
def test_given_unsafe_or_malformed_issuer_config_when_parsed_then_value_error_names_the_problem(change, reason):
    entry = {"issuer": KC_ISS, "audiences": ["gateway"], "jwks_url": KC_JWKS, **change}
    with pytest.raises(ValueError, match=r"OIDC_ISSUERS\[0\] is invalid") as caught:
        parse_issuers(json.dumps([entry]))
    assert reason in str(caught.value)


@pytest.mark.parametrize(("raw", "reason"), [
    ("{not json", "not valid JSON"),
    ('{"issuer": "x"}', "JSON list"),
    (json.dumps([{"issuer": KC_ISS, "audiences": ["g"], "jwks_url": KC_JWKS}] * 2), "more than once"),
])
def test_given_malformed_oidc_issuers_when_parsed_then_value_error(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_issuers(raw)


def test_given_default_fetcher_when_fetching_then_short_timeout_and_no_redirects(monkeypatch):
    import httpx
    from deepseek_gateway.auth.oidc import http_fetch

    seen: dict[str, Any] = {}

    def fake_get(url: str, **kwargs: Any) -> httpx.Response:
        seen.update(kwargs, url=url)
        return httpx.Response(200, json={"keys": []}, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert http_fetch(KC_JWKS) == {"keys": []}
    assert seen == {"url": KC_JWKS, "timeout": 3, "follow_redirects": False}
