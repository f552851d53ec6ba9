"""The api handler wired to the project's local provider on loopback (no internet, no real keys)."""

from __future__ import annotations

import pytest
from deepseek_gateway.web.services import reset_services
from local_cloud.provider import LocalProvider

from tests.helpers import load_handler

PROVIDERS = ("deepseek", "openai", "anthropic")


@pytest.fixture(scope="session")
def local_provider():
    with LocalProvider() as provider:
        yield provider


@pytest.fixture
def gateway_env(local_provider, monkeypatch):
    """Environment as the local cloud gives the api function, with short timeouts for tests."""
    for name in PROVIDERS:
        monkeypatch.setenv(f"{name.upper()}_BASE_URL", local_provider.base_url(name))
        monkeypatch.setenv(f"{name.upper()}_API_KEY", f"local-{name}-key")
    monkeypatch.setenv("ATTEMPT_TIMEOUT_S", "0.5")
    monkeypatch.setenv("REQUEST_DEADLINE_S", "10")
    monkeypatch.setenv("BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("BACKOFF_CAP_S", "0.05")
    monkeypatch.setenv("BREAKER_FAILURE_THRESHOLD", "100")
    monkeypatch.setenv("BREAKER_CACHE_TTL_S", "0")
    monkeypatch.delenv("BREAKER_TABLE_NAME", raising=False)
    local_provider.reset()
    reset_services()
    yield monkeypatch
    local_provider.reset()
    reset_services()


@pytest.fixture
def api(gateway_env):
    return load_handler("api")


@pytest.fixture
def tenants_table(monkeypatch):
    """moto tenants and usage tables with the template's key schema, wired into the functions' settings.

    moto's DynamoDB is made atomic (as DynamoDB is) so concurrency tests measure the gateway, not moto.
    """
    import boto3
    from local_cloud.moto_dynamodb_cpu import fast_dynamodb
    from local_cloud.moto_patches import serialize_dynamodb
    from moto import mock_aws

    serialize_dynamodb()
    fast_dynamodb()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name in ("tenants", "usage"):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        monkeypatch.setenv("TENANTS_TABLE_NAME", "tenants")
        monkeypatch.setenv("USAGE_TABLE_NAME", "usage")
        monkeypatch.setenv("TENANT_CACHE_TTL_S", "0")
        monkeypatch.setenv("USAGE_PLAN_KEYS", '{"default": "usage-plan-default-key-000000"}')
        reset_services()
        from deepseek_gateway.auth.service import get_authenticator

        get_authenticator.cache_clear()
        yield client
        get_authenticator.cache_clear()
        reset_services()
