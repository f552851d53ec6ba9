"""Admission and settlement of one request: limits and budget reserved before, usage recorded after.

Hot-path cost: one conditional UpdateItem to admit (the tenant's and the key's limits together;
skipped when neither has a limit), one TransactWriteItems to settle them and write the usage record
with its aggregates. Threshold notifications cost extra calls only when a threshold is crossed,
once per threshold and month.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.errors import RateLimitError
from deepseek_gateway.limits.counters import Ask, Counters, CounterStore, LimitExceeded, Window
from deepseek_gateway.limits.usage import UsageLedger, UsageRecord
from deepseek_gateway.observability import logger
from deepseek_gateway.tenancy.models import Limits

BUDGET_THRESHOLDS = (50, 80, 100)


class QuotaExceededError(RateLimitError):
    """OpenAI's answer when the money runs out: 429 with type and code `insufficient_quota`."""

    type = "insufficient_quota"
    code = "insufficient_quota"


def _has_any(limits: Limits | None) -> bool:
    return limits is not None and any(v is not None for v in limits.model_dump().values())


@dataclass
class Admission:
    request_id: str
    ask: Ask
    window: Window
    tenant_pk: str | None  # the counter item, when the tenant or the key has limits
    limits: Limits | None  # the tenant's limits, for the headers
    counters: Counters | None

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers, from the tenant's counters right after this admission."""
        if self.limits is None or self.counters is None:
            return {}
        return ratelimit_headers(self.limits, self.counters, self.window)


def ratelimit_headers(limits: Limits, counters: Counters, window: Window) -> dict[str, str]:
    headers: dict[str, str] = {}
    reset = f"{max(window.reset_s, 0):.0f}s"
    for kind, limit, used in (("requests", limits.requests_per_minute, counters.requests),
                              ("tokens", limits.tokens_per_minute, counters.tokens)):
        if limit is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(limit - used, 0))
            headers[f"x-ratelimit-reset-{kind}"] = reset
    return headers


class LimitService:
    def __init__(self, counters: CounterStore, ledger: UsageLedger, client: Any, *,
                 notify: Callable[[dict[str, Any]], None] | None = None, clock: Callable[[], float] = time.time,
                 lease_s: int = 120) -> None:
        self._counters = counters
        self._ledger = ledger
        self._db = client
        self._notify = notify
        self._clock = clock
        self._lease_s = lease_s

    def window(self) -> Window:
        now = self._clock()
        return Window(minute=int(now // 60), month=time.strftime("%Y-%m", time.gmtime(now)), now=now)

    def admit(self, principal: Principal, tenant_limits: Limits | None, key_limits: Limits | None,
              request_id: str, tokens: int, cost: Decimal) -> Admission:
        window = self.window()
        key_has_limits = bool(principal.key_id) and _has_any(key_limits)
        ask = Ask(request_id, tokens, cost, int(window.now) + self._lease_s,
                  key_id=principal.key_id if key_has_limits else None)
        if not _has_any(tenant_limits) and not key_has_limits:
            return Admission(request_id, ask, window, None, None, None)
        pk = f"LIMITS#T#{principal.tenant_id}"
        tenant = tenant_limits or Limits()
        try:
            counters = self._counters.reserve(pk, tenant, key_limits if key_has_limits else None, ask, window)
        except LimitExceeded as exceeded:
            raise self._refusal(exceeded, tenant if exceeded.level == "tenant" else key_limits or Limits(),
                                window) from None
        self._budget_thresholds(principal.tenant_id, tenant, counters, window, request_id)
        return Admission(request_id, ask, window, pk, tenant if _has_any(tenant_limits) else None, counters)

    def settle(self, admission: Admission, record: UsageRecord, retention_days: int) -> None:
        """Actual tokens and cost replace the reservation (all of it given back on failure); usage recorded."""
        used_tokens = record.prompt_tokens + record.completion_tokens
        items = []
        if admission.tenant_pk is not None:
            items.append(self._counters.settle_item(admission.tenant_pk, admission.ask,
                                                    used_tokens - admission.ask.tokens,
                                                    record.cost_usd - admission.ask.cost))
        items += self._ledger.items(record, retention_days)
        try:
            self._db.transact_write_items(TransactItems=items)
        except Exception:  # the answer is already computed: never fail the request over bookkeeping
            logger.exception("usage settlement failed", extra={"request_id": admission.request_id})

    def _refusal(self, exceeded: LimitExceeded, limits: Limits, window: Window) -> RateLimitError:
        level = exceeded.level
        retry_after = max(1, math.ceil(window.reset_s)) if exceeded.which in {"requests", "tokens"} else 1
        headers = {"retry-after": str(retry_after)}
        if exceeded.counters is not None:
            headers.update(ratelimit_headers(limits, exceeded.counters, window))
        if exceeded.which == "budget":
            return QuotaExceededError(
                f"The {level}'s monthly budget is used up; it renews at the start of next month (UTC).",
                headers={k: v for k, v in headers.items() if k != "retry-after"})
        what = {"requests": "requests per minute", "tokens": "tokens per minute",
                "concurrency": "concurrent requests"}[exceeded.which]
        return RateLimitError(f"Rate limit reached for the {level}'s {what}. Retry after {retry_after} s.",
                              headers=headers)

    def _budget_thresholds(self, tenant_id: str, limits: Limits, counters: Counters, window: Window,
                           request_id: str) -> None:
        if limits.monthly_budget_usd and self._notify is not None:
            announce_budget_thresholds(self._db, self._counters.table, tenant_id, limits.monthly_budget_usd,
                                       counters.committed, window.month, request_id, self._notify)


def announce_budget_thresholds(db: Any, table: str, tenant_id: str, budget: Decimal, committed: Decimal, month: str,
                               correlation_id: str | None, notify: Callable[[dict[str, Any]], None]) -> None:
    """`budget.threshold` for each of 50/80/100 % the month's spend has reached, once per threshold and month
    whichever instance or path (a chat request's admission, a batch line's billing) crosses it first."""
    if not budget:
        return
    used = committed / budget * 100
    for threshold in BUDGET_THRESHOLDS:
        if used < threshold:
            break
        marker = f"{month}:{threshold}"
        try:
            db.update_item(
                TableName=table, Key={"pk": {"S": f"LIMITS#T#{tenant_id}"}, "sk": {"S": "STATE"}},
                UpdateExpression="ADD alerts :marker", ConditionExpression="NOT contains(alerts, :m)",
                ExpressionAttributeValues={":marker": {"SS": [marker]}, ":m": {"S": marker}},
            )
        except Exception as exc:
            if not condition_failed(exc):
                raise
            continue
        notify({"type": "budget.threshold", "tenant_id": tenant_id, "threshold_percent": threshold,
                "month": month, "committed_usd": str(committed), "budget_usd": str(budget),
                "correlation_id": correlation_id or None})


def sqs_notifier(queue_url: str, client: Any) -> Callable[[dict[str, Any]], None]:
    def send(event: dict[str, Any]) -> None:
        client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))

    return send
