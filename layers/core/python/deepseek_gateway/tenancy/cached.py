"""A per-tenant value read from the tenants table and kept for a short time, as the tenant directory keeps its
contexts: a change through the admin API takes effect within `ttl_s`, and a warm instance reads nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cached_per_tenant(fetch: Callable[[str], T], ttl_s: float,
                      clock: Callable[[], float] = time.monotonic) -> Callable[[str], T]:
    """`fetch(tenant_id)` at most once per tenant per `ttl_s`."""
    cache: dict[str, tuple[float, T]] = {}
    lock = threading.Lock()

    def lookup(tenant_id: str) -> T:
        now = clock()
        hit = cache.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = fetch(tenant_id)
        with lock:
            cache[tenant_id] = (now + ttl_s, value)
        return value

    return lookup
