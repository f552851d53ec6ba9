"""Reading usage totals for a tenant or one of its keys, shared by /v1/usage and the admin API."""

from __future__ import annotations

import re
import time
from typing import Any

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.limits.usage import UsageLedger
from deepseek_gateway.tenancy.store import KeyNotFoundError, TenantStore

_FORMATS = {"day": (re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), "%Y-%m-%d", "YYYY-MM-DD"),
            "month": (re.compile(r"^[0-9]{4}-[0-9]{2}$"), "%Y-%m", "YYYY-MM")}


def usage_totals(ledger: UsageLedger, store: TenantStore, tenant_id: str, query: dict[str, str]) -> dict[str, Any]:
    """Daily or monthly totals between `start` and `end` (default: this month so far)."""
    granularity = query.get("granularity", "day")
    if granularity not in _FORMATS:
        raise InvalidRequestError("granularity must be `day` or `month`.", param="granularity")
    pattern, fmt, shown = _FORMATS[granularity]
    now = time.gmtime()
    default_start = time.strftime("%Y-%m-01" if granularity == "day" else "%Y-01", now)
    start, end = query.get("start", default_start), query.get("end", time.strftime(fmt, now))
    for name, value in (("start", start), ("end", end)):
        if not pattern.match(value):
            raise InvalidRequestError(f"`{name}` must look like {shown}.", param=name)
        try:
            time.strptime(value, fmt)
        except ValueError:
            raise InvalidRequestError(f"`{name}` is not a calendar date: {value}.", param=name) from None
    if start > end:  # same fixed-width format: the text orders as the dates do
        raise InvalidRequestError(f"`start` ({start}) is after `end` ({end}).", param="start")
    key_id = query.get("key_id")
    if key_id and not store.has_key(tenant_id, key_id):
        raise KeyNotFoundError(key_id)  # another tenant's key looks exactly like no key
    owner = f"KEY#{key_id}" if key_id else f"TENANT#{tenant_id}"
    totals = ledger.totals(owner, granularity, start, end, tenant_id)  # type: ignore[arg-type]
    return {"object": "list", "tenant_id": tenant_id, "key_id": key_id, "granularity": granularity,
            "start": start, "end": end, "data": [t.model_dump(mode="json") for t in totals]}
