"""Usage records and their daily and monthly aggregates, per tenant and per key, in the usage table.

    pk = TENANT#<t>  sk = REQ#<iso time>#<request id>   one record per request (expires with retention)
    pk = TENANT#<t>  sk = DAY#<YYYY-MM-DD>    daily totals (months are summed from them when read)
    pk = KEY#<k>     sk = DAY#<YYYY-MM-DD>    daily totals per key (carry tenant_id)

They are written as items of the same transaction that settles the request's limits, so recording
usage adds no DynamoDB call of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.dynamo_types import serialize as _serialize

AGGREGATE_TTL_DAYS = 400


@dataclass
class UsageRecord:
    tenant_id: str
    key_id: str | None
    request_id: str
    model: str  # what the client asked for
    served_by: str | None  # the model that answered
    provider: str | None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    status: int = 200
    fallbacks: int = 0
    cache_hit: bool = False
    at: float = field(default_factory=time.time)


class UsageTotals(BaseModel):
    period: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    fallbacks: int = 0
    cache_hits: int = 0


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class UsageLedger:
    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._db = client

    def items(self, record: UsageRecord, retention_days: int) -> list[dict[str, Any]]:
        """Transaction items: the record, and ADDs to the tenant's and the key's day totals.

        Month totals are summed from the days when read: reads are rare, and every item in the
        hot-path transaction costs a write.
        """
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.at)) + f".{int(record.at * 1000) % 1000:03d}Z"
        fields = {k: v for k, v in record.__dict__.items() if v is not None and k != "at"}
        put = {"Put": {"TableName": self._table, "Item": {
            "pk": {"S": f"TENANT#{record.tenant_id}"}, "sk": {"S": f"REQ#{iso}#{record.request_id}"},
            **{k: _serialize(v) for k, v in fields.items()}, "at": {"S": iso},
            "expires_at": {"N": str(int(record.at) + retention_days * 86400)},
        }}}
        adds = {
            ":requests": 1, ":errors": int(record.status >= 400), ":prompt": record.prompt_tokens,
            ":cached": record.cached_tokens, ":completion": record.completion_tokens, ":cost": record.cost_usd,
            ":fallbacks": record.fallbacks, ":hits": int(record.cache_hit),
        }
        expression = ("ADD requests :requests, errors :errors, prompt_tokens :prompt, cached_tokens :cached, "
                      "completion_tokens :completion, cost_usd :cost, fallbacks :fallbacks, cache_hits :hits "
                      "SET tenant_id = :tenant, expires_at = :expires")
        values = {**{k: {"N": str(v)} for k, v in adds.items()}, ":tenant": {"S": record.tenant_id},
                  ":expires": {"N": str(int(record.at) + AGGREGATE_TTL_DAYS * 86400)}}
        owners = [f"TENANT#{record.tenant_id}"] + ([f"KEY#{record.key_id}"] if record.key_id else [])
        updates = [
            {"Update": {"TableName": self._table, "Key": {"pk": {"S": owner}, "sk": {"S": period}},
                        "UpdateExpression": expression, "ExpressionAttributeValues": values}}
            for owner in owners for period in (f"DAY#{_day(record.at)}",)
        ]
        return [put, *updates]

    def totals(self, owner: str, granularity: Literal["day", "month"], start: str, end: str,
               tenant_id: str) -> list[UsageTotals]:
        """Day totals of one tenant or key between two periods (inclusive), or their sums per month.

        Only totals carrying the tenant's id count, so another tenant's key simply has none.
        """
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
            "FilterExpression": "tenant_id = :tenant",
            "ExpressionAttributeValues": {":pk": {"S": owner}, ":start": {"S": f"DAY#{start}"},
                                          ":end": {"S": f"DAY#{end}~"}, ":tenant": {"S": tenant_id}},
        }
        by_period: dict[str, UsageTotals] = {}
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                plain = {k: _deserialize(v) for k, v in item.items()}
                day = plain["sk"].split("#", 1)[1]
                period = day if granularity == "day" else day[:7]
                current = by_period.setdefault(period, UsageTotals(period=period))
                for name in UsageTotals.model_fields:
                    if name != "period" and name in plain:
                        value = getattr(current, name)
                        setattr(current, name, value + type(value)(plain[name]))
            if "LastEvaluatedKey" not in page:
                return [by_period[p] for p in sorted(by_period)]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
