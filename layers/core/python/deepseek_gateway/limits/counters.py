"""Limit counters in DynamoDB: one item per tenant (and per key with its own limits), updated atomically.

    pk = LIMITS#T#<tenant> | LIMITS#K#<key id>    sk = STATE
    win, req, tok       the current minute and its requests and tokens
    month, committed    the current month and its spend, settled plus still reserved (USD)
    leases              request id → deadline: the requests in flight (concurrency)

A reservation is ONE conditional UpdateItem: it succeeds only if every limit still holds, so two
instances can never both take the last slot. Arithmetic is not allowed in DynamoDB conditions,
so the bounds are computed here (e.g. `tok <= tpm - tokens`). A lease carries a deadline, so a
request whose instance died never holds a concurrency slot for longer than the function timeout.
The minute and month roll over with one extra conditional write when the first request of a new
window finds the old one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from deepseek_gateway.tenancy.models import Limits

_deserialize = TypeDeserializer().deserialize


@dataclass(frozen=True)
class Window:
    minute: int  # epoch minute
    month: str  # YYYY-MM
    now: float

    @property
    def reset_s(self) -> float:
        return (self.minute + 1) * 60 - self.now


@dataclass(frozen=True)
class Ask:
    request_id: str
    tokens: int
    cost: Decimal
    lease_deadline: int


@dataclass(frozen=True)
class Counters:
    requests: int
    tokens: int
    committed: Decimal
    in_flight: int


class LimitExceeded(Exception):
    def __init__(self, which: str, counters: Counters | None) -> None:
        super().__init__(which)
        self.which = which  # requests | tokens | concurrency | budget
        self.counters = counters


def _n(value: Any) -> dict[str, str]:
    return {"N": str(value)}


def _counters(item: dict[str, Any]) -> Counters:
    plain = {k: _deserialize(v) for k, v in item.items()}
    return Counters(
        requests=int(plain.get("req", 0)), tokens=int(plain.get("tok", 0)),
        committed=Decimal(plain.get("committed", 0)), in_flight=len(plain.get("leases") or {}),
    )


class CounterStore:
    def __init__(self, table: str, client: Any) -> None:
        self.table = table
        self._db = client

    def reserve(self, pk: str, limits: Limits, ask: Ask, window: Window) -> Counters:
        """Take one request, its tokens, its cost and a concurrency lease, or raise LimitExceeded."""
        for attempt in range(3):
            conditions = ["win = :win", "#month = :month"]
            values: dict[str, Any] = {
                ":win": _n(window.minute), ":month": {"S": window.month}, ":one": _n(1),
                ":tok": _n(ask.tokens), ":cost": _n(ask.cost), ":deadline": _n(ask.lease_deadline),
            }
            if limits.requests_per_minute is not None:
                conditions.append("req < :rpm")
                values[":rpm"] = _n(limits.requests_per_minute)
            if limits.tokens_per_minute is not None:
                conditions.append("tok <= :tok_room")
                values[":tok_room"] = _n(limits.tokens_per_minute - ask.tokens)
            if limits.concurrent_requests is not None:
                conditions.append("size(leases) < :conc")
                values[":conc"] = _n(limits.concurrent_requests)
            if limits.monthly_budget_usd is not None:
                conditions.append("committed <= :budget_room")
                values[":budget_room"] = _n(limits.monthly_budget_usd - ask.cost)
            try:
                item = self._db.update_item(
                    TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                    UpdateExpression="SET leases.#rid = :deadline ADD req :one, tok :tok, committed :cost",
                    ConditionExpression=" AND ".join(conditions),
                    ExpressionAttributeNames={"#rid": ask.request_id, "#month": "month"},
                    ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
                return _counters(item)
            except self._db.exceptions.ConditionalCheckFailedException as exc:
                old = exc.response.get("Item")
                if old and "win" in old and int(old["win"]["N"]) > window.minute:
                    # Another instance already opened the next minute: count this request there.
                    window = Window(int(old["win"]["N"]), old["month"]["S"], window.now)
                    continue
                stale = not old or "win" not in old or int(old["win"]["N"]) != window.minute
                if stale or old.get("month", {}).get("S") != window.month:
                    self._roll_over(pk, window, old)
                    continue
                counters = _counters(old)
                which = _which(limits, ask, counters)
                if which == "concurrency" and attempt < 2 and self._expire_leases(pk, old, window.now):
                    continue
                raise LimitExceeded(which, counters) from None
        raise LimitExceeded("concurrency", None)

    def _roll_over(self, pk: str, window: Window, old: dict[str, Any] | None) -> None:
        """Start a new minute (and month) window; whoever does it first wins, the others just retry."""
        new_month = old is None or old.get("month", {}).get("S") != window.month
        expression = "SET win = :win, req = :zero, tok = :zero, #month = :month"
        if new_month:
            expression += ", committed = :zero"
        if old is None or "leases" not in old:
            expression += ", leases = :empty"
        # Whoever rolls the window over first wins; the others' condition fails and they just retry.
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(win) OR win < :win OR #month <> :month",
                ExpressionAttributeNames={"#month": "month"},
                ExpressionAttributeValues={":win": _n(window.minute), ":zero": _n(0), ":month": {"S": window.month},
                                           **({":empty": {"M": {}}} if ":empty" in expression else {})},
            )

    def _expire_leases(self, pk: str, old: dict[str, Any], now: float) -> bool:
        leases = {k: int(v["N"]) for k, v in (old.get("leases", {}).get("M") or {}).items()}
        expired = [rid for rid, deadline in leases.items() if deadline < now]
        if not expired:
            return False
        names = {f"#e{i}": rid for i, rid in enumerate(expired[:50])}
        self._db.update_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                             UpdateExpression="REMOVE " + ", ".join(f"leases.{n}" for n in names),
                             ExpressionAttributeNames=names)
        return True

    def release(self, pk: str, ask: Ask) -> None:
        """Undo a reservation entirely (the request was refused at another level, so never ran)."""
        self._db.update_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
            UpdateExpression="ADD req :minus_one, tok :tok, committed :cost REMOVE leases.#rid",
            ExpressionAttributeNames={"#rid": ask.request_id},
            ExpressionAttributeValues={":minus_one": _n(-1), ":tok": _n(-ask.tokens), ":cost": _n(-ask.cost)},
        )

    def settle_item(self, pk: str, request_id: str, token_delta: int, cost_delta: Decimal) -> dict[str, Any]:
        """The transaction item that settles a reservation: actual tokens and cost, lease released."""
        return {"Update": {
            "TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": "STATE"}},
            "UpdateExpression": "ADD tok :tok, committed :cost REMOVE leases.#rid",
            "ExpressionAttributeNames": {"#rid": request_id},
            "ExpressionAttributeValues": {":tok": _n(token_delta), ":cost": _n(cost_delta)},
        }}


def _which(limits: Limits, ask: Ask, counters: Counters) -> str:
    if limits.requests_per_minute is not None and counters.requests >= limits.requests_per_minute:
        return "requests"
    if limits.tokens_per_minute is not None and counters.tokens > limits.tokens_per_minute - ask.tokens:
        return "tokens"
    if limits.monthly_budget_usd is not None and counters.committed > limits.monthly_budget_usd - ask.cost:
        return "budget"
    return "concurrency"
