"""The billing of an answered batch line, as transaction items written with its line result.

    usage table  TENANT#<t> / REQ#…, the tenant's and the key's DAY totals     (UsageLedger.items)
    usage table  LIMITS#T#<t> / STATE: `committed` (and the key's `k_<key>_cost`) ADDed for the month

The month spend goes into the same counter item the synchronous path reserves against (see
limits/counters.py), so a tenant's budget covers both paths. The counter's `month` must be the
current one: the ADD is conditional on it, and when it fails (the first spend of a new month) the
counter is rolled over to the new month exactly as the synchronous path rolls it, then written again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.dynamo_types import serialize as _serialize
from deepseek_gateway.limits.counters import CounterStore, Window
from deepseek_gateway.limits.service import announce_budget_thresholds
from deepseek_gateway.limits.usage import UsageLedger, UsageRecord


def counter_key(tenant_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"LIMITS#T#{tenant_id}"}, "sk": {"S": "STATE"}}


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


class Billing:
    def __init__(self, usage_table: str, dynamodb: Any, *, clock: Callable[[], float] = time.time) -> None:
        self._table = usage_table
        self._db = dynamodb
        self._ledger = UsageLedger(usage_table, dynamodb)
        self._counters = CounterStore(usage_table, dynamodb)
        self._clock = clock

    def items(self, record: UsageRecord, retention_days: int) -> list[dict[str, Any]]:
        """The usage record, its day totals and the month spend; only the last item carries a condition."""
        return [*self._ledger.items(record, retention_days), self.month_spend_item(record)]

    def month_spend_item(self, record: UsageRecord) -> dict[str, Any]:
        """ADD the cost to the tenant's (and the key's) month spend, if the counter is in this month or later.

        A counter a month ahead (another instance's clock) takes the cost as it is: the spend is current.
        """
        names = {"#month": "month"}
        adds = ["committed :cost"]
        if record.key_id:
            names["#kcost"] = f"k_{record.key_id}_cost"
            adds.append("#kcost :cost")
        return {"Update": {
            "TableName": self._table, "Key": counter_key(record.tenant_id),
            "UpdateExpression": f"ADD {', '.join(adds)} SET #month = if_not_exists(#month, :month)",
            "ConditionExpression": "attribute_not_exists(#month) OR #month >= :month",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":cost": _serialize(Decimal(record.cost_usd)),
                                          ":month": {"S": month_of(record.at)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def open_month(self, tenant_id: str, at: float, old: dict[str, Any] | None) -> None:
        """Roll the tenant's counter over to the month of `at` (old spend cleared), as the sync path does.

        `old` is the counter item as the failed condition saw it; without it the item is read.
        """
        if old is None:
            old = self._db.get_item(TableName=self._table, Key=counter_key(tenant_id), ConsistentRead=True).get("Item")
        window = Window(minute=int(at // 60), month=month_of(at), now=at)
        # CounterStore's own roll-over, so the sync and batch paths can never disagree on what a new month clears.
        self._counters._roll_over(f"LIMITS#T#{tenant_id}", window, old)

    def announce_thresholds(self, tenant_id: str, budget: Decimal, correlation_id: str,
                            notify: Callable[[dict[str, Any]], None]) -> None:
        """After a billed line: `budget.threshold` for what the month's spend has now reached, once each per
        month across both paths (the markers live in the same counter item the sync path marks)."""
        item = self._db.get_item(TableName=self._table, Key=counter_key(tenant_id), ConsistentRead=True).get("Item")
        if not item or "month" not in item:
            return
        committed = Decimal(str(_deserialize(item["committed"]))) if "committed" in item else Decimal(0)
        announce_budget_thresholds(self._db, self._table, tenant_id, budget, committed,
                                   str(_deserialize(item["month"])), correlation_id, notify)
