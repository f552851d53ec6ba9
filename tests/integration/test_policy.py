"""The policy engine through the api handler: models, providers, caps and features, write-time validation."""

from __future__ import annotations

import json

import pytest
from deepseek_gateway.auth.principal import Principal

from tests.helpers import ADMIN_PRINCIPAL, FakeLambdaContext, api_event, load_handler

ACME = Principal(tenant_id="acme", principal_id="k1", kind="api_key", scopes=frozenset({"chat"}), key_id="k1")
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello policy"}]}


@pytest.fixture
def api(tenants_table, gateway_env):
    handler = load_handler("api")
    status, body = admin(handler, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme"})
    assert status == 201, body
    return handler


def admin(api, method, path, body=None):
    response = api.lambda_handler(api_event(method, path, body, principal=ADMIN_PRINCIPAL), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def chat(api, body=CHAT, principal=ACME):
    response = api.lambda_handler(api_event("POST", "/v1/chat/completions", body, principal=principal),
                                  FakeLambdaContext())
    return response["statusCode"], response.get("headers") or {}, json.loads(response["body"])


def policy(api, cedar: str, **settings):
    status, body = admin(api, "PUT", "/admin/tenants/acme/policy", {"cedar": cedar, "settings": settings})
    assert status == 200, body


def test_without_a_policy_the_global_defaults_allow(api):
    status, body = admin(api, "GET", "/admin/tenants/acme/policy")
    assert status == 200 and body["custom"] is False
    assert chat(api)[0] == 200


def test_model_outside_the_allowed_list_is_403_naming_the_rule(api):
    admin(api, "PATCH", "/admin/tenants/acme", {"allowed_models": ["gpt-4.1-mini"]})
    status, _, body = chat(api)
    assert status == 403
    assert body["error"]["code"] == "policy_violation"
    assert "tenant-allowed-models" in body["error"]["message"]
    assert "forbid" not in body["error"]["message"]  # the rule's name, not its text


def test_forbidden_provider_is_skipped_in_the_fallback_chain_and_never_called(api, local_provider):
    policy(api, '@id("eu-only") forbid(principal, action, resource) when { context.provider == "anthropic" };')
    local_provider.set_fault("deepseek", status=500)
    local_provider.set_fault("openai", status=500)
    status, _, body = chat(api)
    assert status == 502
    assert "not allowed by the tenant's policy" in body["error"]["message"]
    assert local_provider.request_count("anthropic") == 0


def test_forbidding_the_requested_models_provider_is_403(api, local_provider):
    policy(api, '@id("no-deepseek") forbid(principal, action, resource) when { resource.provider == "deepseek" };')
    status, _, body = chat(api)
    assert status == 403 and "no-deepseek" in body["error"]["message"]
    assert local_provider.request_count("deepseek") == 0


def test_max_tokens_cap_and_feature_rules(api):
    policy(api, '@id("cap-256") forbid(principal, action, resource) when { context.max_tokens > 256 };\n'
                '@id("no-tools") forbid(principal, action, resource) when { context.tools };')
    assert chat(api, {**CHAT, "max_tokens": 200})[0] == 200
    status, _, body = chat(api, {**CHAT, "max_tokens": 1000})
    assert status == 403 and "cap-256" in body["error"]["message"]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    status, _, body = chat(api, {**CHAT, "tools": tools})
    assert status == 403 and "no-tools" in body["error"]["message"]


def test_a_rule_for_one_key_leaves_the_tenants_other_keys_alone(api):
    policy(api, '@id("k1-no-reasoner") forbid(principal == Key::"k1", action, resource == Model::"deepseek-reasoner");')
    other = ACME.model_copy(update={"key_id": "k2", "principal_id": "k2"})
    assert chat(api, {**CHAT, "model": "deepseek-reasoner"})[0] == 403
    assert chat(api, {**CHAT, "model": "deepseek-reasoner"}, principal=other)[0] == 200


@pytest.mark.parametrize("cedar", [
    'forbid(principal, action, resource) when { context.no_such_field == 1 };',
    'permit(principal, action, resource',
    'forbid(principal, action, resource) when { context.max_tokens == "many" };',
])
def test_an_invalid_policy_is_refused_when_written_with_a_clear_message(api, cedar):
    status, body = admin(api, "PUT", "/admin/tenants/acme/policy", {"cedar": cedar})
    assert status == 400
    assert body["error"]["code"] == "invalid_policy" and body["error"]["param"] == "cedar"
    assert admin(api, "GET", "/admin/tenants/acme/policy")[1]["custom"] is False


def test_resetting_the_policy_restores_the_defaults(api):
    policy(api, '@id("nothing") forbid(principal, action, resource);')
    assert chat(api)[0] == 403
    assert admin(api, "DELETE", "/admin/tenants/acme/policy")[0] == 200
    assert chat(api)[0] == 200


def test_retention_setting_sets_the_usage_records_expiry(api):
    import boto3

    policy(api, "", retention_days=7)
    assert chat(api)[0] == 200
    (record,) = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName="usage", KeyConditionExpression="pk = :pk AND begins_with(sk, :req)",
        ExpressionAttributeValues={":pk": {"S": "TENANT#acme"}, ":req": {"S": "REQ#"}})["Items"]
    import time

    assert abs(int(record["expires_at"]["N"]) - (time.time() + 7 * 86400)) < 120
