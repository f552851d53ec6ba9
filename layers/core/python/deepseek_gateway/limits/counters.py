"""Limit counters in DynamoDB: one item per tenant, holding its keys' counters too, updated atomically.

    pk = LIMITS#T#<tenant>    sk = STATE
    win, req, tok             the current minute and the tenant's requests and tokens in it
    month, committed          the current month and the tenant's spend, settled plus reserved (USD)
    leases                    request id → deadline: the tenant's requests in flight (concurrency)
    k_<key>_req, k_<key>_tok, k_<key>_cost, k_<key>_leases    the same for a key with limits of its own

A reservation is ONE conditional UpdateItem covering the tenant's limits and the key's: it
succeeds only if every limit still holds, so two instances can never both take the last slot, and a
key's limits cost no extra write. Arithmetic is not allowed in DynamoDB conditions, so the bounds are
computed here (e.g. `tok <= tpm - tokens`). Leases carry a deadline, so a request whose instance died
never holds a concurrency slot for longer than the function timeout. The minute and month roll over
with one extra conditional write when the first request of a new window finds the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.tenancy.models import Limits

_KEY_WINDOW_SUFFIXES = ("_req", "_tok")


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
    key_id: str | None = None  # set when the key has limits of its own


@dataclass(frozen=True)
class Counters:
    requests: int
    tokens: int
    committed: Decimal
    in_flight: int


class LimitExceeded(Exception):
    def __init__(self, which: str, level: str, counters: Counters | None) -> None:
        super().__init__(which)
        self.which = which  # requests | tokens | concurrency | budget
        self.level = level  # tenant | key
        self.counters = counters


def _n(value: Any) -> dict[str, str]:
    return {"N": str(value)}


def _names(key_id: str) -> dict[str, str]:
    return {"#kreq": f"k_{key_id}_req", "#ktok": f"k_{key_id}_tok", "#kcost": f"k_{key_id}_cost",
            "#kleases": f"k_{key_id}_leases"}


def counters_of(item: dict[str, Any], key_id: str | None = None) -> Counters:
    plain = {k: _deserialize(v) for k, v in item.items()}
    prefix = f"k_{key_id}_" if key_id else ""
    return Counters(
        requests=int(plain.get(f"{prefix}req", 0)), tokens=int(plain.get(f"{prefix}tok", 0)),
        committed=Decimal(plain.get(f"{prefix}cost" if key_id else "committed", 0)),
        in_flight=len(plain.get(f"{prefix}leases") or {}),
    )


class CounterStore:
    def __init__(self, table: str, client: Any) -> None:
        self.table = table
        self._db = client

    def reserve(self, pk: str, tenant: Limits, key: Limits | None, ask: Ask, window: Window) -> Counters:
        """Take one request, its tokens, its cost and a lease for the tenant (and key), or raise LimitExceeded."""
        for attempt in range(6):
            names: dict[str, str] = {"#rid": ask.request_id, "#month": "month"}
            values: dict[str, Any] = {
                ":win": _n(window.minute), ":month": {"S": window.month}, ":one": _n(1),
                ":tok": _n(ask.tokens), ":cost": _n(ask.cost), ":deadline": _n(ask.lease_deadline),
            }
            conditions = ["win = :win", "#month = :month", *_bounds(tenant, ask, values, "", "req", "tok",
                                                                   "committed", "leases")]
            sets, adds = ["leases.#rid = :deadline"], ["req :one", "tok :tok", "committed :cost"]
            if key is not None and ask.key_id:
                names |= _names(ask.key_id)
                conditions.append("attribute_exists(#kleases)")  # created by the key's first request
                conditions += _bounds(key, ask, values, "k", "#kreq", "#ktok", "#kcost", "#kleases", optional=True)
                adds += ["#kreq :one", "#ktok :tok", "#kcost :cost"]
                sets.append("#kleases.#rid = :deadline")
            try:
                item = self._db.update_item(
                    TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                    UpdateExpression=f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                    ConditionExpression=" AND ".join(conditions),
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
                return counters_of(item)
            except Exception as exc:
                if not condition_failed(exc):
                    raise
                old = exc.response.get("Item")  # type: ignore[attr-defined]
                if old and "win" in old and int(old["win"]["N"]) > window.minute:
                    # Another instance already opened the next minute: count this request there.
                    window = Window(int(old["win"]["N"]), old.get("month", {}).get("S", window.month), window.now)
                    continue
                stale = not old or "win" not in old or int(old["win"]["N"]) != window.minute
                if stale or old.get("month", {}).get("S") != window.month:
                    self._roll_over(pk, window, old)
                    continue
                if key is not None and ask.key_id and f"k_{ask.key_id}_leases" not in old:
                    self._open_key(pk, ask.key_id)  # the key's first request: create its lease map
                    continue
                found = _which(tenant, key, ask, old)
                if found is None:
                    continue  # the item changed between the check and its copy: check again
                level, which = found
                if which == "concurrency" and attempt < 3 and self._expire_leases(pk, old, window.now):
                    continue
                raise LimitExceeded(which, level, counters_of(old, ask.key_id if level == "key" else None)) from None
        raise LimitExceeded("concurrency", "tenant", None)

    def _roll_over(self, pk: str, window: Window, old: dict[str, Any] | None) -> None:
        """Start a new minute (and month) window; whoever does it first wins, the others just retry."""
        new_month = old is None or old.get("month", {}).get("S") != window.month
        sets = ["win = :win", "req = :zero", "tok = :zero", "#month = :month"]
        if new_month:
            sets.append("committed = :zero")
        if old is None or "leases" not in old:
            sets.append("leases = :empty")
        stale_keys = [name for name in (old or {}) if name.startswith("k_") and (
            name.endswith(_KEY_WINDOW_SUFFIXES) or (new_month and name.endswith("_cost")))]
        names = {"#month": "month", **{f"#s{i}": name for i, name in enumerate(stale_keys)}}
        expression = "SET " + ", ".join(sets)
        if stale_keys:
            expression += " REMOVE " + ", ".join(f"#s{i}" for i in range(len(stale_keys)))
        values = {":win": _n(window.minute), ":zero": _n(0), ":month": {"S": window.month}}
        if "leases = :empty" in sets:
            values[":empty"] = {"M": {}}
        try:
            self._db.update_item(
                TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}}, UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(win) OR win < :win OR #month <> :month",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not condition_failed(exc):
                raise

    def _open_key(self, pk: str, key_id: str) -> None:
        self._db.update_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
            UpdateExpression="SET #kleases = if_not_exists(#kleases, :empty)",
            ExpressionAttributeNames={"#kleases": f"k_{key_id}_leases"},
            ExpressionAttributeValues={":empty": {"M": {}}},
        )

    def _expire_leases(self, pk: str, old: dict[str, Any], now: float) -> bool:
        paths, names = [], {}
        for attribute, value in old.items():
            if attribute != "leases" and not (attribute.startswith("k_") and attribute.endswith("_leases")):
                continue
            for rid, deadline in (value.get("M") or {}).items():
                if int(deadline["N"]) < now and len(paths) < 50:
                    names[f"#m{len(paths)}"], names[f"#e{len(paths)}"] = attribute, rid
                    paths.append(f"#m{len(paths)}.#e{len(paths)}")
        if not paths:
            return False
        self._db.update_item(TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "STATE"}},
                             UpdateExpression="REMOVE " + ", ".join(paths), ExpressionAttributeNames=names)
        return True

    def settle_item(self, pk: str, ask: Ask, token_delta: int, cost_delta: Decimal) -> dict[str, Any]:
        """The transaction item that settles a reservation: actual tokens and cost, leases released."""
        names = {"#rid": ask.request_id}
        adds, removes = ["tok :tok", "committed :cost"], ["leases.#rid"]
        if ask.key_id:
            names |= {k: v for k, v in _names(ask.key_id).items() if k != "#kreq"}
            adds += ["#ktok :tok", "#kcost :cost"]
            removes.append("#kleases.#rid")
        return {"Update": {
            "TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": "STATE"}},
            "UpdateExpression": f"ADD {', '.join(adds)} REMOVE {', '.join(removes)}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":tok": _n(token_delta), ":cost": _n(cost_delta)},
        }}


def _bounds(limits: Limits, ask: Ask, values: dict[str, Any], prefix: str, req: str, tok: str, cost: str,
            leases: str, *, optional: bool = False) -> list[str]:
    """Conditions for one level's limits; a key's counters may not exist yet (`optional`)."""
    conditions = []
    for limit, attribute, name, bound in (
        (limits.requests_per_minute, req, "rpm", lambda v: v),
        (limits.tokens_per_minute, tok, "tok_room", lambda v: v - ask.tokens),
        (limits.monthly_budget_usd, cost, "budget_room", lambda v: v - ask.cost),
    ):
        if limit is None:
            continue
        operator = "<" if name == "rpm" else "<="
        values[f":{prefix}{name}"] = _n(bound(limit))
        check = f"{attribute} {operator} :{prefix}{name}"
        conditions.append(f"(attribute_not_exists({attribute}) OR {check})" if optional else check)
    if limits.concurrent_requests is not None:
        values[f":{prefix}conc"] = _n(limits.concurrent_requests)
        conditions.append(f"size({leases}) < :{prefix}conc")
    return conditions


def _which(tenant: Limits, key: Limits | None, ask: Ask, old: dict[str, Any]) -> tuple[str, str] | None:
    """Which limit refused the request, tenant's or key's, from the item as the condition saw it."""
    levels = [("tenant", tenant, counters_of(old))]
    if key is not None and ask.key_id:
        levels.insert(0, ("key", key, counters_of(old, ask.key_id)))
    for level, limits, counters in levels:
        if limits.requests_per_minute is not None and counters.requests >= limits.requests_per_minute:
            return level, "requests"
        if limits.tokens_per_minute is not None and counters.tokens > limits.tokens_per_minute - ask.tokens:
            return level, "tokens"
        if limits.monthly_budget_usd is not None and counters.committed > limits.monthly_budget_usd - ask.cost:
            return level, "budget"
        if limits.concurrent_requests is not None and counters.in_flight >= limits.concurrent_requests:
            return level, "concurrency"
    return None
