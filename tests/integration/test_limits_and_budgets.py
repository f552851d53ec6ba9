"""Exact limits and budgets across instances, settlement, and usage records — against moto.

Concurrency is real: threads stand for Lambda instances, all racing for the same DynamoDB item.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from decimal import Decimal

import boto3
import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.errors import RateLimitError
from deepseek_gateway.limits.counters import CounterStore
from deepseek_gateway.limits.service import LimitService, QuotaExceededError
from deepseek_gateway.limits.usage import UsageLedger, UsageRecord
from deepseek_gateway.tenancy.models import Limits

from tests.fakes import FakeClock
from tests.helpers import ADMIN_PRINCIPAL, FakeLambdaContext, api_event, load_handler

ACME = Principal(tenant_id="acme", principal_id="k1", kind="api_key", scopes=frozenset({"chat"}), key_id="k1")
CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello limits"}], "max_tokens": 50}


def service(clock=None, notify=None) -> LimitService:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return LimitService(CounterStore("usage", client), UsageLedger("usage", client), client, notify=notify,
                        clock=clock or FakeClock(now=1_796_000_000.0))


def state(pk: str) -> dict:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return client.get_item(TableName="usage", Key={"pk": {"S": pk}, "sk": {"S": "STATE"}}).get("Item", {})


def race(n: int, attempt) -> tuple[list, list]:
    admitted, refused, crashed = [], [], []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            result = attempt(i)
            with lock:
                admitted.append(result)
        except RateLimitError as error:
            with lock:
                refused.append(error)
        except Exception:  # noqa: BLE001 - any other outcome is a bug the assertion below shows
            with lock:
                crashed.append(traceback.format_exc())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crashed == [], crashed[0] if crashed else ""
    return admitted, refused


def test_50_concurrent_requests_against_10_per_minute_admit_exactly_10(tenants_table):
    limits = service()
    admitted, refused = race(50, lambda i: limits.admit(ACME, Limits(requests_per_minute=10), None, f"r{i}", 10,
                                                           Decimal("0.001")))
    assert len(admitted) == 10 and len(refused) == 40
    assert all(e.status == 429 and int(e.headers["retry-after"]) >= 1 for e in refused)
    assert all(e.headers["x-ratelimit-remaining-requests"] == "0" for e in refused)
    assert state("LIMITS#T#acme")["req"]["N"] == "10"


def test_concurrent_requests_never_overspend_the_budget(tenants_table):
    limits = service()
    budget = Limits(monthly_budget_usd=Decimal("1.00"))
    admitted, refused = race(30, lambda i: limits.admit(ACME, budget, None, f"r{i}", 100, Decimal("0.10")))
    assert len(admitted) == 10
    assert all(isinstance(e, QuotaExceededError) and e.code == "insufficient_quota" for e in refused)
    assert Decimal(state("LIMITS#T#acme")["committed"]["N"]) <= Decimal("1.00")


def settle(limits, admission, tokens=0, cost="0", status=200):
    limits.settle(admission, UsageRecord(tenant_id="acme", key_id="k1", request_id=admission.request_id,
                                         model="deepseek-chat", served_by="deepseek-chat", provider="deepseek",
                                         prompt_tokens=tokens, completion_tokens=0, cost_usd=Decimal(cost),
                                         status=status), retention_days=30)


def test_settlement_replaces_the_reserved_tokens_and_cost_with_the_actual_ones(tenants_table):
    limits = service()
    tenant = Limits(tokens_per_minute=10_000, monthly_budget_usd=Decimal("5"), concurrent_requests=2)
    admission = limits.admit(ACME, tenant, None, "r1", 1000, Decimal("0.50"))
    assert state("LIMITS#T#acme")["tok"]["N"] == "1000"
    settle(limits, admission, tokens=120, cost="0.02")
    item = state("LIMITS#T#acme")
    assert item["tok"]["N"] == "120"
    assert Decimal(item["committed"]["N"]) == Decimal("0.02")
    assert item["leases"]["M"] == {}


def test_a_failed_call_gives_its_whole_reservation_back(tenants_table):
    limits = service()
    admission = limits.admit(ACME, Limits(tokens_per_minute=5000, monthly_budget_usd=Decimal("1")), None, "r1",
                             4000, Decimal("0.9"))
    settle(limits, admission, status=502)
    item = state("LIMITS#T#acme")
    assert item["tok"]["N"] == "0" and Decimal(item["committed"]["N"]) == 0
    limits.admit(ACME, Limits(tokens_per_minute=5000, monthly_budget_usd=Decimal("1")), None, "r2", 4000,
                 Decimal("0.9"))  # the room is there again


def test_the_window_rolls_over_each_minute_and_the_budget_each_month(tenants_table):
    clock = FakeClock(now=1_796_000_000.0 - 1_796_000_000.0 % 60)
    limits = service(clock)
    rpm = Limits(requests_per_minute=2, monthly_budget_usd=Decimal("1"))
    for i in range(2):
        limits.admit(ACME, rpm, None, f"a{i}", 1, Decimal("0.4"))
    with pytest.raises(RateLimitError):
        limits.admit(ACME, rpm, None, "a3", 1, Decimal("0.1"))
    clock.advance(60)
    limits.admit(ACME, rpm, None, "b1", 1, Decimal("0.1"))  # new minute, same month: 0.9 committed
    with pytest.raises(QuotaExceededError):
        limits.admit(ACME, rpm, None, "b2", 1, Decimal("0.4"))
    clock.advance(40 * 86400)  # next month
    limits.admit(ACME, rpm, None, "c1", 1, Decimal("0.9"))


def test_key_limits_apply_inside_the_tenants_in_the_same_single_write(tenants_table):
    limits = service()
    other_key = ACME.model_copy(update={"key_id": "k2", "principal_id": "k2"})
    tenant, key = Limits(requests_per_minute=3), Limits(requests_per_minute=2)
    limits.admit(ACME, tenant, key, "r1", 1, Decimal(0))
    limits.admit(ACME, tenant, key, "r2", 1, Decimal(0))
    with pytest.raises(RateLimitError, match="key"):
        limits.admit(ACME, tenant, key, "r3", 1, Decimal(0))
    limits.admit(other_key, tenant, key, "r4", 1, Decimal(0))  # the tenant's third request
    with pytest.raises(RateLimitError, match="tenant"):
        limits.admit(other_key, tenant, key, "r5", 1, Decimal(0))
    item = state("LIMITS#T#acme")
    assert (item["req"]["N"], item["k_k1_req"]["N"], item["k_k2_req"]["N"]) == ("3", "2", "1")


def test_concurrent_requests_never_overspend_a_keys_budget_inside_a_larger_tenant_budget(tenants_table):
    limits = service()
    tenant, key = Limits(monthly_budget_usd=Decimal("100")), Limits(monthly_budget_usd=Decimal("0.50"))
    admitted, refused = race(20, lambda i: limits.admit(ACME, tenant, key, f"r{i}", 10, Decimal("0.10")))
    assert len(admitted) == 5 and all(isinstance(e, QuotaExceededError) for e in refused)
    item = state("LIMITS#T#acme")
    assert Decimal(item["k_k1_cost"]["N"]) == Decimal("0.50") and Decimal(item["committed"]["N"]) == Decimal("0.50")


def test_a_keys_counters_restart_with_the_minute(tenants_table):
    clock = FakeClock(now=1_796_000_000.0 - 1_796_000_000.0 % 60)
    limits = service(clock)
    key = Limits(requests_per_minute=1, concurrent_requests=5)
    limits.admit(ACME, None, key, "a", 1, Decimal(0))
    with pytest.raises(RateLimitError, match="key"):
        limits.admit(ACME, None, key, "b", 1, Decimal(0))
    clock.advance(60)
    limits.admit(ACME, None, key, "c", 1, Decimal(0))


def test_concurrency_limit_counts_requests_in_flight_and_expired_leases_free_their_slot(tenants_table):
    clock = FakeClock(now=1_796_000_000.0 - 1_796_000_000.0 % 60)
    limits = service(clock)
    one = Limits(concurrent_requests=1)
    first = limits.admit(ACME, one, None, "r1", 1, Decimal(0))
    with pytest.raises(RateLimitError, match="concurrent"):
        limits.admit(ACME, one, None, "r2", 1, Decimal(0))
    settle(limits, first)
    second = limits.admit(ACME, one, None, "r3", 1, Decimal(0))
    assert second.request_id == "r3"
    clock.advance(121)  # r3's instance "died" without settling: its lease (120 s) expires
    limits.admit(ACME, one, None, "r4", 1, Decimal(0))


def test_budget_thresholds_notify_once_each(tenants_table):
    events = []
    limits = service(notify=events.append)
    budget = Limits(monthly_budget_usd=Decimal("10"))
    for i, cost in enumerate(["4", "1.5", "2", "0.5", "1", "1"]):
        limits.admit(ACME, budget, None, f"r{i}", 1, Decimal(cost))
    assert [e["threshold_percent"] for e in events] == [50, 80, 100]
    assert all(e["type"] == "budget.threshold" and e["tenant_id"] == "acme" for e in events)


# --- through the api handler -----------------------------------------------------------------------


@pytest.fixture
def api(tenants_table, gateway_env):
    handler = load_handler("api")
    return handler


def call(api, method, path, body=None, principal=ACME, query=None):
    event = api_event(method, path, body, principal=principal)
    event["queryStringParameters"] = query
    response = api.lambda_handler(event, FakeLambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = values[-1]
    return response["statusCode"], headers, json.loads(response["body"])


def tenant(api, **fields):
    status, _, body = call(api, "POST", "/admin/tenants", {"tenant_id": "acme", "name": "Acme", **fields},
                           principal=ADMIN_PRINCIPAL)
    assert status == 201, body


def test_answers_carry_openai_rate_limit_headers_and_the_11th_request_is_a_429(api):
    from deepseek_gateway.web.services import get_services

    tenant(api, limits={"requests_per_minute": 10, "tokens_per_minute": 100_000})
    now = time.time()
    get_services().chat._limits._clock = FakeClock(now=now - now % 60 + 1)  # all eleven in one minute
    remaining = []
    for _ in range(10):
        status, headers, _ = call(api, "POST", "/v1/chat/completions", CHAT)
        assert status == 200
        assert headers["x-ratelimit-limit-requests"] == "10"
        assert headers["x-ratelimit-limit-tokens"] == "100000"
        remaining.append(int(headers["x-ratelimit-remaining-requests"]))
    assert remaining == list(range(9, -1, -1))
    status, headers, body = call(api, "POST", "/v1/chat/completions", CHAT)
    assert status == 429
    assert body["error"]["code"] == "rate_limit_exceeded" and int(headers["retry-after"]) >= 1


def test_exhausted_budget_is_insufficient_quota(api):
    tenant(api, limits={"monthly_budget_usd": "0.000001"})
    status, _, body = call(api, "POST", "/v1/chat/completions", CHAT)
    assert status == 429
    assert body["error"] == {"message": body["error"]["message"], "type": "insufficient_quota", "param": None,
                             "code": "insufficient_quota"}


def test_every_request_leaves_a_usage_record_and_the_totals_add_up(api, local_provider):
    tenant(api)
    _, _, key = call(api, "POST", "/admin/tenants/acme/keys", {"scopes": ["chat"]}, principal=ADMIN_PRINCIPAL)
    me = ACME.model_copy(update={"key_id": key["key_id"], "principal_id": key["key_id"]})
    for _ in range(3):
        assert call(api, "POST", "/v1/chat/completions", CHAT, principal=me)[0] == 200
    local_provider.set_fault("deepseek", status=500)
    local_provider.set_fault("openai", status=500)
    local_provider.set_fault("anthropic", status=500)
    assert call(api, "POST", "/v1/chat/completions", CHAT, principal=me)[0] == 502
    status, _, usage = call(api, "GET", "/v1/usage", principal=me)
    assert status == 200
    (today,) = usage["data"]
    assert today["requests"] == 4 and today["errors"] == 1
    assert today["prompt_tokens"] > 0 and Decimal(today["cost_usd"]) > 0
    records = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName="usage", KeyConditionExpression="pk = :pk AND begins_with(sk, :req)",
        ExpressionAttributeValues={":pk": {"S": "TENANT#acme"}, ":req": {"S": "REQ#"}})["Items"]
    assert len(records) == 4
    fields = set(records[0])
    assert {"tenant_id", "key_id", "model", "provider", "prompt_tokens", "cached_tokens", "completion_tokens",
            "cost_usd", "latency_ms", "status", "fallbacks", "cache_hit", "expires_at"} <= fields
    assert "Hello limits" not in json.dumps(records)  # no prompt text unless the policy says so
    status, _, by_key = call(api, "GET", "/v1/usage", principal=me,
                             query={"key_id": key["key_id"], "granularity": "month"})
    assert status == 200 and by_key["data"][0]["requests"] == 4
    status, _, operator_view = call(api, "GET", "/admin/usage", principal=ADMIN_PRINCIPAL,
                                    query={"tenant_id": "acme"})
    assert status == 200 and operator_view["data"][0]["requests"] == 4


def test_usage_of_another_tenants_key_is_404(api):
    tenant(api)
    call(api, "POST", "/admin/tenants", {"tenant_id": "globex", "name": "Globex"}, principal=ADMIN_PRINCIPAL)
    _, _, created = call(api, "POST", "/admin/tenants/globex/keys", {"scopes": ["chat"]}, principal=ADMIN_PRINCIPAL)
    status, _, body = call(api, "GET", "/v1/usage", query={"key_id": created["key_id"]})
    assert status == 404 and body["error"]["code"] == "key_not_found"


def test_bad_usage_query_is_a_400_naming_the_parameter(api):
    tenant(api)
    status, _, body = call(api, "GET", "/v1/usage", query={"start": "yesterday"})
    assert status == 400 and body["error"]["param"] == "start"


def test_hot_path_makes_at_most_two_dynamodb_calls_per_request(api):
    tenant(api, limits={"requests_per_minute": 100, "monthly_budget_usd": "100"})
    from deepseek_gateway.web.services import get_services

    call(api, "POST", "/v1/chat/completions", CHAT)  # warm: tenant config cached, window created
    calls = []
    client = get_services().tenants._db  # the one DynamoDB client the api function's services share
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    get_services().chat._directory._ttl_s = 60  # the deployed cache TTL; the tests' default is 0
    # Inside one minute: the once-a-minute window rollover (two more calls) is not the hot path.
    import time

    now = time.time()
    get_services().chat._limits._clock = FakeClock(now=now - now % 60 + 59)
    call(api, "POST", "/v1/chat/completions", CHAT)
    calls.clear()
    for _ in range(5):
        call(api, "POST", "/v1/chat/completions", CHAT)
    assert calls == ["UpdateItem", "TransactWriteItems"] * 5


def test_a_key_with_limits_of_its_own_costs_no_extra_write(api):
    tenant(api, limits={"requests_per_minute": 100})
    key_body = {"scopes": ["chat"], "limits": {"requests_per_minute": 50}}
    _, _, key = call(api, "POST", "/admin/tenants/acme/keys", key_body, principal=ADMIN_PRINCIPAL)
    me = ACME.model_copy(update={"key_id": key["key_id"], "principal_id": key["key_id"]})
    from deepseek_gateway.web.services import get_services

    call(api, "POST", "/v1/chat/completions", CHAT, principal=me)
    import time

    now = time.time()
    get_services().chat._directory._ttl_s = 60
    get_services().chat._limits._clock = FakeClock(now=now - now % 60 + 59)
    call(api, "POST", "/v1/chat/completions", CHAT, principal=me)
    calls = []
    get_services().tenants._db.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    for _ in range(3):
        assert call(api, "POST", "/v1/chat/completions", CHAT, principal=me)[0] == 200
    assert calls == ["UpdateItem", "TransactWriteItems"] * 3
