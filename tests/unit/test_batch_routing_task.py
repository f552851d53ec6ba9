"""The batch workflow's router task (and the backend's classification), with fakes for every store."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.backend_task import BackendTask
from deepseek_gateway.batches.errors import BatchCancelledError, BatchExpiredError, ProviderRetryableError
from deepseek_gateway.batches.models import Batch
from deepseek_gateway.batches.routing_task import (
    CounterBudgetGate,
    RoutingTask,
    StoreBatchGate,
    request_from_body,
)
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.chat_service import ChatService, parse_request
from deepseek_gateway.errors import (
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    ProviderClientError,
    ServiceUnavailableError,
    UpstreamAuthError,
    UpstreamError,
)
from deepseek_gateway.limits.service import QuotaExceededError
from deepseek_gateway.policy.models import TenantPolicy
from deepseek_gateway.providers.base import ProviderFailure
from deepseek_gateway.routing.breaker import CircuitBreaker, InMemoryBreakerStore
from deepseek_gateway.routing.router import Router, RoutingPolicy
from deepseek_gateway.tenancy.directory import TenantDirectory
from deepseek_gateway.tenancy.models import Limits, Tenant

from tests.fakes import FakeClock, FakeProvider

POLICY = RoutingPolicy(attempt_timeout_s=7.0, deadline_s=60.0, attempts_per_provider=2, backoff_base_s=0.5,
                       backoff_cap_s=4.0, max_retry_after_s=5.0)
PRINCIPAL = Principal(tenant_id="acme", principal_id="keyacmeacmeacme1", kind="api_key", scopes=frozenset({"batch"}),
                      key_id="keyacmeacmeacme1")
BATCH_ID = "batch_0AbCdEfGhIjKlMnOpQrStUvW"
NOW = 1_800_000_000.0


# --- fakes ---------------------------------------------------------------------------------------


@dataclass
class FakeTenantStore:
    """What TenantDirectory reads: the tenant, its policy and the key's limits."""

    cedar: str = ""
    limits: Limits = field(default_factory=Limits)
    key_limits: Limits | None = None
    status: str = "active"

    def snapshot(self, tenant_id: str, key_id: str | None):
        tenant = Tenant(tenant_id=tenant_id, name="Acme", limits=self.limits, status=self.status, created_at=1,
                        updated_at=1)
        return tenant, TenantPolicy(cedar=self.cedar), self.key_limits


@dataclass
class FakeBatchStore:
    status: str = "in_progress"
    expires_at: int = int(NOW) + 3600

    def get(self, tenant_id: str, batch_id: str) -> Batch:
        return Batch(id=batch_id, endpoint="/v1/chat/completions", input_file_id="file-x", completion_window="24h",
                     status=self.status, created_at=int(NOW) - 60, expires_at=self.expires_at)


@dataclass
class FakeCounterTable:
    """A DynamoDB client with the one tenant counter item GetItem reads."""

    item: dict[str, Any] | None = None
    reads: int = 0

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.reads += 1
        return {"Item": self.item} if self.item else {}


@dataclass
class Keys:
    present: bool = True

    def configured(self) -> bool:
        return self.present


def month_item(committed: str, month: str | None = None, **extra: str) -> dict[str, Any]:
    month = month or time.strftime("%Y-%m", time.gmtime(NOW))
    return {"pk": {"S": "LIMITS#T#acme"}, "sk": {"S": "STATE"}, "month": {"S": month},
            "committed": {"N": committed}, **{k: {"N": v} for k, v in extra.items()}}


def breaker(clock: FakeClock | None = None, store: InMemoryBreakerStore | None = None) -> CircuitBreaker:
    return CircuitBreaker(store or InMemoryBreakerStore(), threshold=2, cooldown_s=30, cache_ttl_s=0,
                          clock=clock or FakeClock())


def make_task(tenants: FakeTenantStore | None = None, batches: FakeBatchStore | None = None,
              counters: FakeCounterTable | None = None, keys: dict[str, Keys] | None = None,
              the_breaker: CircuitBreaker | None = None) -> RoutingTask:
    tenants = tenants or FakeTenantStore()
    return RoutingTask(
        catalogue=load_catalogue(),
        providers=keys or {name: Keys() for name in ("deepseek", "openai", "anthropic")},
        breaker=the_breaker or breaker(),
        policy=POLICY,
        directory=TenantDirectory(tenants, ttl_s=0),  # type: ignore[arg-type]
        budget=CounterBudgetGate("usage", counters or FakeCounterTable(), clock=lambda: NOW),
        batches=StoreBatchGate(batches or FakeBatchStore(), clock=lambda: NOW),  # type: ignore[arg-type]
    )


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], **extra}


def route_event(request: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"action": "route", "tenant_id": "acme", "batch_id": BATCH_ID,
            "principal": json.loads(PRINCIPAL.model_dump_json()), "request": request or body(), "line": 3, **extra}


def caught(error_name: str, message: str) -> dict[str, str]:
    """A Catch's error as Step Functions builds it from a Lambda error."""
    return {"Error": error_name, "Cause": json.dumps({"errorType": error_name, "errorMessage": message,
                                                     "stackTrace": ["  File \"handler.py\" ..."]})}


# --- route ---------------------------------------------------------------------------------------


def test_route_returns_the_catalogue_chain_with_the_first_candidate_in_front():
    # Given a healthy tenant and batch, when a line is routed
    route = make_task().run(route_event())
    # Then the requested model is first and its fallbacks follow, nothing has failed yet
    assert route == {"provider": "deepseek", "model": "deepseek-chat",
                     "remaining": [{"provider": "openai", "model": "gpt-4.1-mini"},
                                   {"provider": "anthropic", "model": "claude-haiku-4-5"}],
                     "failures": []}


def test_a_policy_forbidding_a_fallback_removes_it_from_remaining():
    # Given a tenant whose policy forbids Anthropic
    tenants = FakeTenantStore(cedar='@id("eu-only") forbid(principal, action, resource) '
                                    'when { context.provider == "anthropic" };')
    # When a line is routed
    route = make_task(tenants).run(route_event())
    # Then the Anthropic fallback is not among the candidates
    assert [r["model"] for r in route["remaining"]] == ["gpt-4.1-mini"]


def test_a_policy_denial_of_the_requested_model_is_the_sync_paths_error():
    # Given a tenant that forbids DeepSeek
    tenants = FakeTenantStore(cedar='@id("no-deepseek") forbid(principal, action, resource) '
                                    'when { resource.provider == "deepseek" };')
    task = make_task(tenants)
    # When the same body goes through the batch router and through the synchronous chat service
    with pytest.raises(PermissionDeniedError) as batch_error:
        task.run(route_event())
    sync = ChatService(load_catalogue(), Router(load_catalogue(), {}, breaker(), POLICY), task.directory)
    with pytest.raises(PermissionDeniedError) as sync_error:
        sync.complete(parse_request(body(), load_catalogue()), PRINCIPAL)
    # Then both raise the same class with the same message and code
    assert type(batch_error.value) is type(sync_error.value)
    assert type(batch_error.value).__name__ == "PolicyViolation"
    assert batch_error.value.message == sync_error.value.message
    assert batch_error.value.code == "policy_violation"


@pytest.mark.parametrize("status", ["cancelling", "cancelled"])
def test_a_cancelled_batch_is_refused(status):
    # Given a batch being cancelled, when a line is routed, then it is refused
    with pytest.raises(BatchCancelledError) as refused:
        make_task(batches=FakeBatchStore(status=status)).run(route_event())
    assert refused.value.code == "batch_cancelled"


def test_an_expired_batch_is_refused_by_status_or_by_its_window():
    # Given a batch already marked expired, or one whose window has just passed
    for store in (FakeBatchStore(status="expired"), FakeBatchStore(expires_at=int(NOW))):
        # When a line is routed, then it is refused as expired
        with pytest.raises(BatchExpiredError):
            make_task(batches=store).run(route_event())


def test_an_exhausted_monthly_budget_is_insufficient_quota():
    # Given a tenant with a 10 USD budget that has spent 10 USD this month
    tenants = FakeTenantStore(limits=Limits(monthly_budget_usd=Decimal("10")))
    counters = FakeCounterTable(month_item("10.0"))
    # When a line is routed, then it gets OpenAI's 429 insufficient_quota
    with pytest.raises(QuotaExceededError) as refused:
        make_task(tenants, counters=counters).run(route_event())
    assert refused.value.status == 429 and refused.value.code == "insufficient_quota"
    assert "tenant's monthly budget" in refused.value.message


def test_a_keys_exhausted_budget_refuses_too_and_last_months_spend_does_not():
    # Given a key with a 1 USD budget of its own, spent
    tenants = FakeTenantStore(key_limits=Limits(monthly_budget_usd=Decimal("1")))
    spent = {f"k_{PRINCIPAL.key_id}_cost": "1.5"}
    with pytest.raises(QuotaExceededError) as refused:
        make_task(tenants, counters=FakeCounterTable(month_item("1.5", **spent))).run(route_event())
    assert "key's monthly budget" in refused.value.message
    # When the spend is last month's, then the line is routed
    old = FakeCounterTable(month_item("1.5", month="1999-01", **spent))
    assert make_task(tenants, counters=old).run(route_event())["model"] == "deepseek-chat"


def test_without_a_budget_the_counters_are_not_read():
    counters = FakeCounterTable(month_item("999"))
    make_task(counters=counters).run(route_event())
    assert counters.reads == 0


def test_fallbacks_lacking_a_capability_the_body_uses_are_left_out():
    # Given n=2, which Claude cannot answer; when routed, then only OpenAI remains as a fallback
    route = make_task().run(route_event(body(n=2)))
    assert [r["model"] for r in route["remaining"]] == ["gpt-4.1-mini"]


def test_the_requested_model_lacking_a_capability_is_a_400_as_in_the_sync_path():
    vision = body(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    with pytest.raises(InvalidRequestError) as refused:
        make_task().run(route_event(vision))
    assert refused.value.code == "unsupported_feature"


def test_unconfigured_and_open_circuit_providers_are_skipped():
    # Given no DeepSeek key and OpenAI's breaker open
    clock = FakeClock()
    store = InMemoryBreakerStore()
    store.add_failure("openai", clock.now, threshold=1, cooldown_s=30)
    keys = {"deepseek": Keys(False), "openai": Keys(), "anthropic": Keys()}
    # When routed, then Claude is the only candidate
    route = make_task(keys=keys, the_breaker=breaker(clock, store)).run(route_event())
    assert (route["provider"], route["model"], route["remaining"]) == ("anthropic", "claude-haiku-4-5", [])


def test_no_available_provider_is_service_unavailable_naming_each_reason():
    keys = {name: Keys(False) for name in ("deepseek", "openai", "anthropic")}
    with pytest.raises(ServiceUnavailableError) as refused:
        make_task(keys=keys).run(route_event())
    assert "deepseek-chat: provider not configured" in refused.value.message
    assert "claude-haiku-4-5: provider not configured" in refused.value.message


def test_a_disabled_tenant_and_a_principal_of_another_tenant_are_refused():
    with pytest.raises(PermissionDeniedError):
        make_task(FakeTenantStore(status="disabled")).run(route_event())
    with pytest.raises(PermissionDeniedError):
        make_task().run(route_event(tenant_id="other"))


def test_an_unknown_model_and_a_malformed_event_are_client_errors():
    with pytest.raises(GatewayError) as unknown:
        make_task().run(route_event(body(model="gpt-nope")))
    assert unknown.value.code == "model_not_found"
    with pytest.raises(InvalidRequestError):
        make_task().run({"action": "route", "tenant_id": "acme"})
    with pytest.raises(InvalidRequestError):
        make_task().run({"action": "sideways"})


# --- next ----------------------------------------------------------------------------------------


def first_route() -> dict[str, Any]:
    return make_task().run(route_event())


def test_next_puts_the_next_candidate_in_front_and_records_the_failure():
    # Given a route whose first candidate failed with a retryable error after its retries
    task = make_task()
    # When the next candidate is asked for
    route = task.run({"action": "next", "route": first_route(),
                      "error": caught("ProviderRetryableError", "status 503")})
    # Then OpenAI is in front, Claude remains, and the failure reads as the sync router's
    assert route == {"provider": "openai", "model": "gpt-4.1-mini",
                     "remaining": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                     "failures": ["deepseek-chat: status 503"]}


def test_next_names_an_unknown_error_by_its_type_only():
    route = make_task().run({"action": "next", "route": first_route(),
                             "error": caught("KeyError", "'secret internal detail'")})
    assert route["failures"] == ["deepseek-chat: KeyError"]
    timeout = make_task().run({"action": "next", "route": first_route(),
                               "error": {"Error": "States.Timeout", "Cause": ""}})
    assert timeout["failures"] == ["deepseek-chat: States.Timeout"]


def test_next_skips_a_candidate_whose_breaker_opened_meanwhile():
    # Given OpenAI's breaker opened after the line was routed
    clock = FakeClock()
    store = InMemoryBreakerStore()
    route = make_task(the_breaker=breaker(clock, store)).run(route_event())
    store.add_failure("openai", clock.now, threshold=1, cooldown_s=30)
    # When DeepSeek fails, then Claude is next and OpenAI is listed as skipped
    nxt = make_task(the_breaker=breaker(clock, store)).run(
        {"action": "next", "route": route, "error": caught("ProviderRetryableError", "timeout")})
    assert nxt["model"] == "claude-haiku-4-5" and nxt["remaining"] == []
    assert nxt["failures"] == ["deepseek-chat: timeout", "gpt-4.1-mini: circuit open"]


def test_next_after_the_last_candidate_is_an_upstream_error_naming_every_failure():
    task = make_task()
    route = first_route()
    for error in ("status 503", "status 500"):
        route = task.run({"action": "next", "route": route, "error": caught("ProviderRetryableError", error)})
    with pytest.raises(UpstreamError) as exhausted:
        task.run({"action": "next", "route": route, "error": caught("ServiceUnavailableError", "circuit open")})
    assert type(exhausted.value) is UpstreamError
    assert exhausted.value.message == ("Every provider failed for this request (deepseek-chat: status 503; "
                                       "gpt-4.1-mini: status 500; claude-haiku-4-5: circuit open).")


# --- the body, as the sync path reads it -----------------------------------------------------------


def test_a_dumped_body_with_nested_extensions_and_nulls_sends_what_the_sync_path_sends():
    # Given a body with a DeepSeek extension, and the same request as a dump would carry it
    original = body(thinking={"type": "enabled"}, max_tokens=64)
    dumped = {**body(max_tokens=64), "temperature": None, "tools": None,
              "extensions": {"thinking": {"type": "enabled"}}}
    entry = load_catalogue().resolve("gpt-4.1-mini")
    # When both are read, then the provider would get the same upstream body
    sync = parse_request(original, load_catalogue())
    assert request_from_body(dumped, load_catalogue()).to_upstream(entry.upstream) == sync.to_upstream(entry.upstream)
    assert request_from_body(original, load_catalogue()).extensions == {"thinking": {"type": "enabled"}}


def test_a_body_with_a_field_the_sync_path_refuses_is_refused():
    with pytest.raises(InvalidRequestError) as refused:
        request_from_body(body(tenant_id="other"), load_catalogue())
    assert refused.value.code == "unrecognized_argument"


# --- the backend's classification, with a fake provider --------------------------------------------


def backend(provider: FakeProvider, the_breaker: CircuitBreaker | None = None) -> BackendTask:
    return BackendTask(provider_name=provider.name, catalogue=load_catalogue(), provider=provider,  # type: ignore[arg-type]
                       breaker=the_breaker or breaker(), policy=POLICY)


def call(model: str = "deepseek-chat") -> dict[str, Any]:
    return {"request": body(), "model": model, "idempotency_key": f"{BATCH_ID}:3:{model}"}


def test_backend_calls_once_with_the_attempt_timeout_and_returns_the_completion():
    provider = FakeProvider("deepseek")
    completion = backend(provider).run(call())
    assert provider.calls == [7.0]
    assert completion["choices"][0]["message"]["content"] == "[deepseek-chat] hello"


@pytest.mark.parametrize(("failure", "error"), [
    (ProviderFailure("deepseek", "status", "overloaded", status=503), ProviderRetryableError),
    (ProviderFailure("deepseek", "timeout", "slow"), ProviderRetryableError),
    (ProviderFailure("deepseek", "status", "bad", status=400), ProviderClientError),
    (ProviderFailure("deepseek", "status", "too big", status=413), ProviderClientError),
    (ProviderFailure("deepseek", "status", "who are you", status=401), UpstreamAuthError),
    (ProviderFailure("deepseek", "status", "unusable", status=418), UpstreamError),
])
def test_backend_failures_leave_as_the_error_the_state_machine_matches(failure, error):
    provider = FakeProvider("deepseek", script=[failure])
    with pytest.raises(error) as raised:
        backend(provider).run(call())
    assert type(raised.value) is error


def test_backend_retryable_failures_open_the_breaker_and_an_open_breaker_is_not_called():
    # Given a threshold of two and two retryable failures
    shared = breaker()
    provider = FakeProvider("deepseek", script=[ProviderFailure("deepseek", "status", "x", status=500)] * 2)
    for _ in range(2):
        with pytest.raises(ProviderRetryableError):
            backend(provider, shared).run(call())
    # When the line is retried, then the provider is not called: the state machine moves on
    with pytest.raises(ServiceUnavailableError, match="circuit open"):
        backend(provider, shared).run(call())
    assert len(provider.calls) == 2


def test_backend_refuses_a_model_of_another_provider():
    with pytest.raises(GatewayError, match="does not serve"):
        backend(FakeProvider("deepseek")).run(call("gpt-4.1-mini"))
