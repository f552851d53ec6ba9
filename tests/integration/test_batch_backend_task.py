"""The router and backend functions of the batch workflow, against the local provider and moto tables.

Each line goes through the real handlers (as Step Functions invokes them), the safety task, the local
provider's fault switches, the idempotency table, the breaker table and the jobs table.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.batches.task_runtime import reset_task_runtime
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.errors import ProviderClientError, UpstreamError
from deepseek_gateway.policy.models import TenantPolicy
from deepseek_gateway.safety.task import run_task as safety_task
from deepseek_gateway.tenancy.models import Limits, TenantCreate, TenantUpdate
from deepseek_gateway.tenancy.store import TenantStore
from deepseek_gateway.web.services import reset_services

from tests.helpers import ROOT, TEST_PRINCIPAL, FakeLambdaContext, api_event, load_handler

BATCH_PRINCIPAL = Principal(tenant_id=TEST_PRINCIPAL.tenant_id, principal_id="s3-upload", kind="service",
                            scopes=frozenset({"batch"}))
SYSTEM = "You are the support assistant of Acme Corp."


def _table(client: Any, name: str, *keys: str) -> None:
    kinds = ("HASH", "RANGE")
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": k, "KeyType": kinds[i]} for i, k in enumerate(keys)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
    )


@pytest.fixture
def tables(tenants_table, gateway_env):
    """Jobs, idempotency and breaker tables next to the tenants and usage tables, and the tenant itself."""
    client = tenants_table
    _table(client, "jobs", "pk", "sk")
    _table(client, "idempotency", "id")
    _table(client, "breaker", "provider")
    for name, value in {"JOBS_TABLE_NAME": "jobs", "IDEMPOTENCY_TABLE_NAME": "idempotency",
                        "BREAKER_TABLE_NAME": "breaker", "BREAKER_FAILURE_THRESHOLD": "100"}.items():
        gateway_env.setenv(name, value)
    TenantStore("tenants", client).create_tenant(TenantCreate(tenant_id=TEST_PRINCIPAL.tenant_id, name="Tenant A"))
    reset_services()
    reset_task_runtime()
    yield client
    reset_task_runtime()


@pytest.fixture
def batches(tables) -> BatchStore:
    return BatchStore("jobs", tables)


def new_batch(store: BatchStore) -> str:
    batch = store.create(BATCH_PRINCIPAL.tenant_id, input_file_id="file-x", endpoint="/v1/chat/completions",
                         completion_window="24h", metadata=None, principal=BATCH_PRINCIPAL, window_s=86_400)
    store.start(BATCH_PRINCIPAL.tenant_id, batch.id, total=1, execution_arn="arn:aws:states:::execution:b:x")
    return batch.id


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(function).lambda_handler(event, FakeLambdaContext(function_name=function))


def backend_event(request: dict[str, Any], model: str, line: int = 1) -> dict[str, Any]:
    return {"request": request, "model": model, "idempotency_key": f"batch_test:{line}:{model}"}


def route_event(batch_id: str, request: dict[str, Any]) -> dict[str, Any]:
    return {"action": "route", "tenant_id": BATCH_PRINCIPAL.tenant_id, "batch_id": batch_id,
            "principal": json.loads(BATCH_PRINCIPAL.model_dump_json()), "request": request, "line": 1}


def through_the_workflow(body: dict[str, Any], model: str, line: int = 1) -> dict[str, Any]:
    """safety(input) → backend → safety(output), as the state machine chains them for one line."""
    checked = safety_task({"stage": "input", "request": body})
    provider = load_catalogue().resolve(model).provider
    completion = invoke(f"backend_{provider}", backend_event(checked["request"], model, line))
    verdict = safety_task({"stage": "output", "request": body, "completion": completion,
                           "redactions": checked["redactions"], "canary": checked["canary"]})
    return verdict["completion"]


def sync_answer(body: dict[str, Any]) -> dict[str, Any]:
    response = load_handler("api").lambda_handler(api_event("POST", "/v1/chat/completions", body),
                                                  FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def chat(model: str = "deepseek-chat", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, **extra, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Refund card 4111 1111 1111 1111 for jane.roe@example.org, please."}]}


# --- the same answer as the synchronous path ---------------------------------------------------------


@pytest.mark.parametrize("body", [chat(thinking={"type": "disabled"}), chat("claude-haiku-4-5")],
                         ids=["deepseek-with-extension", "anthropic"])
def test_the_same_body_gets_the_same_completion_as_the_sync_path(tables, local_provider, body):
    # Given a body with a redacted card and a canary-protected system prompt
    # When it goes through the batch workflow's tasks and through POST /v1/chat/completions
    batch = through_the_workflow(body, body["model"])
    sync = sync_answer(body)
    # Then both answers are the same completion, field for field (the provider saw the same request);
    # `created` of a translated Anthropic answer is the gateway's clock, so only it may differ
    assert abs(batch.pop("created") - sync.pop("created")) <= 2
    assert batch == sync
    assert "4111 1111 1111 1111" in batch["choices"][0]["message"]["content"]


def test_a_fallback_backend_gets_what_the_sync_fallback_sends(tables, local_provider):
    # Given DeepSeek failing every attempt, so the sync path falls back to gpt-4.1-mini
    body = chat(thinking={"type": "disabled"})
    local_provider.set_fault("deepseek", status=503, times=2)
    sync = sync_answer(body)
    assert sync["model"] == "gpt-4.1-mini"
    # When the batch workflow's next candidate, the OpenAI backend, answers the same line
    batch = through_the_workflow(body, "gpt-4.1-mini")
    # Then it is the same completion: the requested model's extensions went along, as in the sync path
    assert abs(batch.pop("created") - sync.pop("created")) <= 2
    assert batch == sync


def test_the_sample_events_run(tables, batches, local_provider):
    backend = json.loads((ROOT / "events" / "backend_call.json").read_text())
    completion = invoke("backend_deepseek", backend)
    assert completion["object"] == "chat.completion" and completion["model"] == "deepseek-chat"
    route = json.loads((ROOT / "events" / "router_route.json").read_text())
    route |= {"tenant_id": BATCH_PRINCIPAL.tenant_id, "batch_id": new_batch(batches),
              "principal": json.loads(BATCH_PRINCIPAL.model_dump_json())}
    assert invoke("router", route)["model"] == "deepseek-chat"


# --- failures leave as the errors the state machine matches -----------------------------------------


@pytest.mark.parametrize(("switches", "error_name"), [
    ({"status": 503}, "ProviderRetryableError"),
    ({"status": 429, "retry_after": 1}, "ProviderRetryableError"),
    ({"hang": True, "hang_s": 5.0}, "ProviderRetryableError"),  # past the 0.5 s attempt timeout
    ({"drop": True}, "ProviderRetryableError"),
    ({"status": 400}, "ProviderClientError"),
    ({"status": 404}, "ProviderClientError"),
    ({"status": 413}, "ProviderClientError"),
    ({"status": 422}, "ProviderClientError"),
    ({"status": 401}, "UpstreamAuthError"),
    ({"status": 403}, "UpstreamAuthError"),
])
def test_provider_failures_raise_the_class_the_state_machine_matches(tables, local_provider, switches, error_name):
    # Given the provider failing the call
    local_provider.set_fault("deepseek", **switches)
    # When the backend is invoked, then Lambda would report the error under this class name
    with pytest.raises(Exception) as raised:
        invoke("backend_deepseek", backend_event(chat(), "deepseek-chat"))
    assert type(raised.value).__name__ == error_name
    assert local_provider.request_count("deepseek") == 1  # one attempt: the state machine owns retries
    if error_name == "UpstreamAuthError":  # its own class: the batch's error file keeps the code
        assert raised.value.code == "upstream_auth_error"
    if error_name == "ProviderClientError":
        assert isinstance(raised.value, ProviderClientError) and raised.value.status == switches["status"]


def test_retryable_failures_count_in_the_shared_breaker_and_a_success_resets_it(tables, local_provider):
    # Given one 500 from DeepSeek
    local_provider.set_fault("deepseek", status=500, times=1)
    with pytest.raises(Exception, match="status 500"):
        invoke("backend_deepseek", backend_event(chat(), "deepseek-chat", line=1))
    failures = tables.get_item(TableName="breaker", Key={"provider": {"S": "deepseek"}})["Item"]["failures"]
    assert failures == {"N": "1"}
    # When the next call succeeds, then the breaker is reset for every instance
    invoke("backend_deepseek", backend_event(chat(), "deepseek-chat", line=2))
    item = tables.get_item(TableName="breaker", Key={"provider": {"S": "deepseek"}})["Item"]
    assert item["failures"] == {"N": "0"}


# --- idempotency -----------------------------------------------------------------------------------


def test_a_repeated_invocation_after_a_success_replays_without_calling_the_provider(tables, local_provider):
    # Given a line answered once
    event = backend_event(chat(), "deepseek-chat")
    first = invoke("backend_deepseek", event)
    # When Step Functions invokes the backend again with the same key
    again = invoke("backend_deepseek", event)
    # Then the stored completion comes back and the provider was called once
    assert again == first
    assert local_provider.request_count("deepseek") == 1
    assert tables.scan(TableName="idempotency")["Count"] == 1


def test_a_failure_is_not_stored_so_the_retry_calls_the_provider(tables, local_provider):
    # Given a first attempt failing with a 503
    event = backend_event(chat(), "deepseek-chat")
    local_provider.set_fault("deepseek", status=503, times=1)
    with pytest.raises(Exception, match="status 503"):
        invoke("backend_deepseek", event)
    # When it is retried, then the provider is called again and answers; a third call replays that answer
    answered = invoke("backend_deepseek", event)
    assert invoke("backend_deepseek", event) == answered
    assert local_provider.request_count("deepseek") == 2


# --- the router function -------------------------------------------------------------------------------


def test_a_policy_forbidding_a_fallback_model_removes_it_from_remaining(tables, batches, local_provider):
    # Given a tenant policy forbidding Anthropic
    TenantStore("tenants", tables).put_policy(TEST_PRINCIPAL.tenant_id, TenantPolicy(
        cedar='@id("eu-only") forbid(principal, action, resource) when { context.provider == "anthropic" };'))
    # When a line is routed
    route = invoke("router", route_event(new_batch(batches), chat()))
    # Then DeepSeek is first and only OpenAI remains
    assert route == {"provider": "deepseek", "model": "deepseek-chat",
                     "remaining": [{"provider": "openai", "model": "gpt-4.1-mini"}], "failures": []}


def test_a_cancelled_batch_is_refused(tables, batches, local_provider):
    # Given a batch being cancelled
    batch_id = new_batch(batches)
    batches.request_cancel(BATCH_PRINCIPAL.tenant_id, batch_id)
    # When one of its lines is routed, then the router refuses it under the name `record` maps
    with pytest.raises(Exception) as refused:
        invoke("router", route_event(batch_id, chat()))
    assert type(refused.value).__name__ == "BatchCancelledError"
    assert local_provider.request_count("deepseek") == 0


def test_next_after_the_last_candidate_names_every_failure(tables, batches, local_provider):
    # Given a route whose every candidate failed
    route = invoke("router", route_event(new_batch(batches), chat()))
    for _ in range(3):
        cause = json.dumps({"errorType": "ProviderRetryableError", "errorMessage": "status 503"})
        try:
            route = invoke("router", {"action": "next", "route": route,
                                      "error": {"Error": "ProviderRetryableError", "Cause": cause}})
        except UpstreamError as exhausted:
            # Then the router gives up with an UpstreamError listing each model's failure
            assert type(exhausted).__name__ == "UpstreamError"
            assert exhausted.message.count("status 503") == 3
            return
    pytest.fail("the router did not give up after the last candidate")


def test_an_exhausted_monthly_budget_is_refused_as_insufficient_quota(tables, batches, local_provider):
    # Given a tenant with a 5 USD budget whose counter item shows 5 USD spent this month
    TenantStore("tenants", tables).update_tenant(TEST_PRINCIPAL.tenant_id,
                                                 TenantUpdate(limits=Limits(monthly_budget_usd=5)))
    month = time.strftime("%Y-%m", time.gmtime())
    tables.put_item(TableName="usage", Item={
        "pk": {"S": f"LIMITS#T#{TEST_PRINCIPAL.tenant_id}"}, "sk": {"S": "STATE"}, "month": {"S": month},
        "committed": {"N": "5.0001"}, "leases": {"M": {}}})
    # When a line is routed, then it is refused with the 429 the sync path gives
    with pytest.raises(Exception) as refused:
        invoke("router", route_event(new_batch(batches), chat()))
    assert type(refused.value).__name__ == "QuotaExceededError"
    assert refused.value.code == "insufficient_quota"
