"""Tenants, keys and the authorizer against moto: the admin API, key checks, scopes, isolation."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from tests.helpers import ADMIN_PRINCIPAL, TEST_PRINCIPAL, FakeLambdaContext, api_event, load_handler


@pytest.fixture
def api(tenants_table, gateway_env):
    return load_handler("api")


@pytest.fixture
def authorizer(tenants_table):
    return load_handler("authorizer")


def admin(api, method, path, body=None, principal=ADMIN_PRINCIPAL):
    response = api.lambda_handler(api_event(method, path, body, principal=principal), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def authorize(authorizer, headers):
    with open("events/authorizer_request.json") as sample:
        event = json.load(sample)
    event["headers"] = headers
    return authorizer.lambda_handler(event, FakeLambdaContext(function_name="authorizer"))


@pytest.fixture
def tenant_key(api):
    assert admin(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme", "plan": "default"})[0] == 201
    status, created = admin(api, "POST", "/admin/tenants/acme/keys", {"name": "ci", "scopes": ["chat"]})
    assert status == 201
    return created


def test_created_key_authorizes_with_the_tenant_context(authorizer, tenant_key):
    answer = authorize(authorizer, {"Authorization": f"Bearer {tenant_key['key']}"})
    statement = answer["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"][0].endswith("abc123/dev/*/*")  # one cached answer covers every route
    assert answer["context"]["tenant_id"] == "acme"
    assert answer["context"]["scopes"] == "chat"
    assert answer["usageIdentifierKey"] == "usage-plan-default-key-000000"


def test_x_api_key_header_works_too(authorizer, tenant_key):
    answer = authorize(authorizer, {"x-api-key": tenant_key["key"]})
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


@pytest.mark.parametrize("credential", ["", "Bearer ", "Bearer sk-not-ours", "Bearer dsg_aaaaaaaaaaaaaaaa_" + "x" * 44])
def test_missing_malformed_or_unknown_keys_are_unauthorized(authorizer, tenant_key, credential):
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(authorizer, {"Authorization": credential} if credential else {})


def test_right_key_id_with_wrong_secret_is_unauthorized(authorizer, tenant_key):
    forged = tenant_key["key"][:-4] + ("AAAA" if not tenant_key["key"].endswith("AAAA") else "BBBB")
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(authorizer, {"Authorization": f"Bearer {forged}"})


def test_revoked_key_is_unauthorized(api, authorizer, tenant_key):
    status, revoked = admin(api, "DELETE", f"/admin/tenants/acme/keys/{tenant_key['key_id']}")
    assert status == 200 and revoked["revoked_at"]
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(authorizer, {"Authorization": f"Bearer {tenant_key['key']}"})


def test_expired_key_is_unauthorized(api, authorizer, tenant_key):
    status, created = admin(api, "POST", "/admin/tenants/acme/keys",
                            {"scopes": ["chat"], "expires_at": int(time.time()) - 1})
    assert status == 201
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(authorizer, {"Authorization": f"Bearer {created['key']}"})


def test_disabled_tenant_is_denied_with_a_reason(api, authorizer, tenant_key):
    assert admin(api, "DELETE", "/admin/tenants/acme")[1]["status"] == "disabled"
    answer = authorize(authorizer, {"Authorization": f"Bearer {tenant_key['key']}"})
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert answer["context"]["error_code"] == "tenant_disabled"


def test_the_secret_is_never_stored_nor_logged(api, authorizer, tenants_table):
    from deepseek_gateway.observability import logger

    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        admin(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme"})
        created = admin(api, "POST", "/admin/tenants/acme/keys", {"scopes": ["chat"]})[1]
        authorize(authorizer, {"Authorization": f"Bearer {created['key']}"})
    finally:
        logger.removeHandler(handler)
    secret = created["key"].rsplit("_", 1)[1]
    items = tenants_table.scan(TableName="tenants")["Items"]
    assert len(items) == 3  # the tenant, the key, the key's listing entry
    assert secret not in json.dumps(items)
    assert secret not in sink.getvalue() and "authorized" in sink.getvalue()


def test_listing_keys_never_returns_secrets(api, tenant_key):
    status, listed = admin(api, "GET", "/admin/tenants/acme/keys")
    assert status == 200
    assert [k["key_id"] for k in listed["data"]] == [tenant_key["key_id"]]
    assert "key" not in listed["data"][0] and "digest" not in listed["data"][0]


def test_admin_routes_without_the_admin_scope_are_403(api):
    status, body = admin(api, "GET", "/admin/tenants", principal=TEST_PRINCIPAL)
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"


def test_chat_without_the_chat_scope_is_403(api):
    response = api.lambda_handler(
        api_event("POST", "/v1/chat/completions", {"model": "deepseek-chat", "messages": [
            {"role": "user", "content": "hi"}]}, principal=ADMIN_PRINCIPAL), FakeLambdaContext())
    assert response["statusCode"] == 403


def test_request_without_authorizer_context_is_401_whatever_its_headers_say(api):
    response = api.lambda_handler(
        api_event("GET", "/v1/models", headers={"x-tenant-id": "acme"}, principal=None), FakeLambdaContext())
    assert response["statusCode"] == 401


def test_a_key_of_one_tenant_cannot_be_revoked_through_another(api, tenant_key):
    admin(api, "POST", "/admin/tenants", {"tenant_id": "globex", "name": "Globex"})
    status, body = admin(api, "DELETE", f"/admin/tenants/globex/keys/{tenant_key['key_id']}")
    assert status == 404
    assert admin(api, "GET", "/admin/tenants/globex/keys")[1]["data"] == []
    assert admin(api, "GET", "/admin/tenants/acme/keys")[1]["data"][0]["revoked_at"] is None


def test_unknown_tenant_is_404_and_duplicate_is_409(api, tenant_key):
    assert admin(api, "GET", "/admin/tenants/nobody")[0] == 404
    assert admin(api, "POST", "/admin/tenants/nobody/keys", {"scopes": ["chat"]})[0] == 404
    assert admin(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "again"})[0] == 409


def test_tenant_update_validates_and_persists(api, tenant_key):
    status, updated = admin(api, "PATCH", "/admin/tenants/acme",
                            {"plan": "pro", "limits": {"requests_per_minute": 60}, "allowed_models": ["deepseek-chat"]})
    assert status == 200 and updated["plan"] == "pro" and updated["limits"]["requests_per_minute"] == 60
    assert admin(api, "GET", "/admin/tenants/acme")[1]["allowed_models"] == ["deepseek-chat"]
    status, updated = admin(api, "PATCH", "/admin/tenants/acme", {"limits": {"tokens_per_minute": 1000}})
    assert updated["limits"]["requests_per_minute"] == 60 and updated["limits"]["tokens_per_minute"] == 1000
    status, body = admin(api, "PATCH", "/admin/tenants/acme", {"limits": {"requests_per_minute": 0}})
    assert status == 400 and body["error"]["param"] == "limits.requests_per_minute"
    status, body = admin(api, "PATCH", "/admin/tenants/acme", {"tenant_id": "other"})
    assert status == 400 and body["error"]["param"] == "tenant_id"


@pytest.fixture
def issuer(tmp_path, monkeypatch, tenants_table):
    from deepseek_gateway.auth.service import get_authenticator
    from local_cloud.oidc_issuer import LocalIssuer

    local = LocalIssuer(tmp_path).ensure()
    monkeypatch.setenv("OIDC_ISSUERS", json.dumps([local.issuer_config()]))
    from deepseek_gateway.web.services import reset_services

    reset_services()
    get_authenticator.cache_clear()
    return local


def test_oidc_token_of_a_registered_tenant_is_allowed_with_its_scopes(api, authorizer, issuer):
    admin(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme", "plan": "pro"})
    token = issuer.mint("acme", ["chat", "batch"], subject="alice")
    answer = authorize(authorizer, {"Authorization": f"Bearer {token}"})
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"]["kind"] == "oidc"
    assert answer["context"]["tenant_id"] == "acme"
    assert answer["context"]["scopes"] == "batch chat"
    assert answer["context"]["plan"] == "pro"


def test_oidc_token_for_an_unregistered_tenant_is_denied(authorizer, issuer):
    answer = authorize(authorizer, {"Authorization": f"Bearer {issuer.mint('ghost', ['chat'])}"})
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_oidc_token_signed_by_another_key_is_unauthorized(api, authorizer, issuer, tmp_path):
    from local_cloud.oidc_issuer import LocalIssuer

    admin(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme"})
    impostor = LocalIssuer(tmp_path / "impostor").ensure()  # same issuer name and kid, different key
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(authorizer, {"Authorization": f"Bearer {impostor.mint('acme', ['chat'])}"})
