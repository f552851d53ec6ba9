"""The api handler wired to the project's local provider on loopback (no internet, no real keys)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.web.services import reset_services
from local_cloud.moto_resources import create_table
from local_cloud.provider import LocalProvider

from tests.helpers import ADMIN_PRINCIPAL, load_handler
from tests.integration.bad_input import BUCKET, CHAT_PATH, JOBS_TABLE, VALID_CHAT, multipart_body, send

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


# --- the bad-input tests' gateway: the moto tables and local provider above, plus Files and Batch storage ---


@pytest.fixture
def gateway(tenants_table, gateway_env) -> SimpleNamespace:
    """The api handler over moto with a tenant (limits on, so admission runs) and its key."""
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    create_table(tenants_table, JOBS_TABLE)
    queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="fuzz-ingestion")["QueueUrl"]
    gateway_env.setenv("UPLOADS_BUCKET_NAME", BUCKET)
    gateway_env.setenv("JOBS_TABLE_NAME", JOBS_TABLE)
    gateway_env.setenv("INGESTION_QUEUE_URL", queue_url)
    reset_services()
    handler = load_handler("api")

    limits = {"requests_per_minute": 1_000_000, "tokens_per_minute": 1_000_000_000, "monthly_budget_usd": "100000"}
    created = send(handler, "POST", "/admin/tenants", body={"tenant_id": "acme", "name": "Acme", "limits": limits},
                   principal=ADMIN_PRINCIPAL)
    assert created["statusCode"] == 201, created["body"]
    key = send(handler, "POST", "/admin/tenants/acme/keys", body={"scopes": ["chat", "files", "batch"]},
               principal=ADMIN_PRINCIPAL)
    assert key["statusCode"] == 201, key["body"]
    key_id = json.loads(key["body"])["key_id"]
    principal = Principal(tenant_id="acme", principal_id=key_id, kind="api_key",
                          scopes=frozenset({"chat", "files", "batch"}), key_id=key_id)
    # A good request first: the route works, so a 5xx below is the bad input's doing.
    ok = send(handler, "POST", CHAT_PATH, body=VALID_CHAT, principal=principal)
    assert ok["statusCode"] == 200, ok["body"]
    return SimpleNamespace(handler=handler, principal=principal)


@pytest.fixture
def stored(gateway) -> SimpleNamespace:
    """The tenant also has an uploaded batch file and a batch made from it (a good request on both APIs)."""
    line = json.dumps({"custom_id": "r1", "method": "POST", "url": CHAT_PATH, "body": VALID_CHAT}).encode() + b"\n"
    form, content_type = multipart_body("B0UNDARY", [("purpose", None, b"batch"), ("file", "in.jsonl", line)])
    uploaded = send(gateway.handler, "POST", "/v1/files", raw_body=base64.b64encode(form).decode(),
                    base64_encoded=True, headers={"Content-Type": content_type}, principal=gateway.principal)
    assert uploaded["statusCode"] == 200, uploaded["body"]
    file_id = json.loads(uploaded["body"])["id"]
    batch = send(gateway.handler, "POST", "/v1/batches", principal=gateway.principal,
                 body={"input_file_id": file_id, "endpoint": CHAT_PATH, "completion_window": "24h"})
    assert batch["statusCode"] == 200, batch["body"]
    return SimpleNamespace(**vars(gateway), file_id=file_id, batch_id=json.loads(batch["body"])["id"])
