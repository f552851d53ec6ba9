"""A circuit breaker per provider whose state all instances share, read through a short cache.

State lives in the DynamoDB breaker table (one item per provider) so that every Lambda instance
skips a failing provider, not only the one that saw the failures. Each instance keeps a copy for
`cache_ttl_s`, so a healthy hot path makes no DynamoDB call per request; writes happen only when a
call fails, or succeeds after failures.

Half-open without extra state: opening sets `failures` to threshold - 1, so after the cool-down a
single trial failure re-opens the breaker and a success resets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class BreakerState:
    failures: int = 0
    open_until: float = 0.0  # epoch seconds

    def is_open(self, now: float) -> bool:
        return self.open_until > now


class BreakerStore(Protocol):
    def read(self, provider: str) -> BreakerState: ...

    def add_failure(self, provider: str, now: float, threshold: int, cooldown_s: float) -> BreakerState: ...

    def reset(self, provider: str) -> None: ...


class InMemoryBreakerStore:
    """For a single process (tests, or a deployment without a breaker table)."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}

    def read(self, provider: str) -> BreakerState:
        return self._states.get(provider, BreakerState())

    def add_failure(self, provider: str, now: float, threshold: int, cooldown_s: float) -> BreakerState:
        failures = self.read(provider).failures + 1
        state = (
            BreakerState(threshold - 1, now + cooldown_s)
            if failures >= threshold
            else BreakerState(failures, self.read(provider).open_until)
        )
        self._states[provider] = state
        return state

    def reset(self, provider: str) -> None:
        self._states.pop(provider, None)


class DynamoBreakerStore:
    """The breaker table: key `provider`, attributes `failures` and `open_until`."""

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def read(self, provider: str) -> BreakerState:
        item = self._client.get_item(TableName=self._table, Key={"provider": {"S": provider}}).get("Item")
        return _state(item)

    def add_failure(self, provider: str, now: float, threshold: int, cooldown_s: float) -> BreakerState:
        # An atomic counter, so concurrent failures on many instances are all counted.
        item = self._client.update_item(
            TableName=self._table,
            Key={"provider": {"S": provider}},
            UpdateExpression="SET failures = if_not_exists(failures, :zero) + :one",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        state = _state(item)
        if state.failures < threshold:
            return state
        opened = BreakerState(threshold - 1, now + cooldown_s)
        self._client.update_item(
            TableName=self._table,
            Key={"provider": {"S": provider}},
            UpdateExpression="SET failures = :f, open_until = :u",
            ExpressionAttributeValues={":f": {"N": str(opened.failures)}, ":u": {"N": repr(opened.open_until)}},
        )
        return opened

    def reset(self, provider: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"provider": {"S": provider}},
            UpdateExpression="SET failures = :zero, open_until = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )


def _state(item: dict[str, Any] | None) -> BreakerState:
    if not item:
        return BreakerState()
    return BreakerState(
        failures=int(item.get("failures", {}).get("N", "0")),
        open_until=float(item.get("open_until", {}).get("N", "0")),
    )


class CircuitBreaker:
    def __init__(
        self,
        store: BreakerStore,
        *,
        threshold: int,
        cooldown_s: float,
        cache_ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, BreakerState]] = {}

    def _state(self, provider: str) -> BreakerState:
        now = self._clock()
        cached = self._cache.get(provider)
        if cached is not None and cached[0] > now:
            return cached[1]
        state = self._store.read(provider)
        self._cache[provider] = (now + self._cache_ttl_s, state)
        return state

    def _remember(self, provider: str, state: BreakerState) -> None:
        self._cache[provider] = (self._clock() + self._cache_ttl_s, state)

    def allow(self, provider: str) -> bool:
        return not self._state(provider).is_open(self._clock())

    def record_failure(self, provider: str) -> None:
        state = self._store.add_failure(provider, self._clock(), self._threshold, self._cooldown_s)
        self._remember(provider, state)

    def record_success(self, provider: str) -> None:
        if self._state(provider) != BreakerState():
            self._store.reset(provider)
            self._remember(provider, BreakerState())
