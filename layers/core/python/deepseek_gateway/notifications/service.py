"""One event to each of the tenant's channels, each delivery logged, counted and remembered.

Every configured channel is tried even when an earlier one fails, so a webhook that is down does
not hold back the email. When any channel failed in a way worth retrying, `notify` raises at the
end and the queue message comes back; the delivery ledger then skips the channels that already
succeeded (or failed for good), so a retry does not email or text the tenant twice. The ledger is
check-then-record, not a lock: two instances handling the same message at the same moment (an
SQS duplicate) could both deliver; webhook receivers drop the duplicate by `webhook-id`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from deepseek_gateway.notifications.channels import Channel, PermanentDeliveryError, RetryableDeliveryError
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.observability import NAMESPACE, logger, metrics
from deepseek_gateway.tenancy.models import Tenant

Outcome = Literal["delivered", "duplicate", "failed", "retry"]


class DeliveryLedger(Protocol):
    def done(self, key: str) -> bool: ...

    def record(self, key: str, outcome: str) -> None: ...


class MemoryLedger:
    """The ledger of one process: enough for tests and for a deployment without the table."""

    def __init__(self) -> None:
        self._done: set[str] = set()

    def done(self, key: str) -> bool:
        return key in self._done

    def record(self, key: str, outcome: str) -> None:
        self._done.add(key)


class DynamoLedger:
    """Items `{id, outcome, expiration}` in the idempotency table (key `id`, TTL `expiration`).

    Keys start with `notification#`, apart from Powertools' own records (`<function>#<hash>`).
    """

    def __init__(self, table: str, client: Any, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._table, self._db, self._ttl_s, self._clock = table, client, ttl_s, clock

    def done(self, key: str) -> bool:
        item = self._db.get_item(TableName=self._table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
        return bool(item) and int(item["expiration"]["N"]) > self._clock()  # TTL deletion lags expiry

    def record(self, key: str, outcome: str) -> None:
        self._db.put_item(TableName=self._table, Item={
            "id": {"S": key}, "outcome": {"S": outcome},
            "expiration": {"N": str(int(self._clock()) + self._ttl_s)}})


class TenantCache:
    """Tenants by id for `ttl_s` per instance: a burst of events for one tenant reads it once."""

    def __init__(self, load: Callable[[str], Tenant | None], ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load, self._ttl_s, self._clock = load, ttl_s, clock
        self._cache: dict[str, tuple[float, Tenant | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant_id: str) -> Tenant | None:
        now = self._clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant = self._load(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (now + self._ttl_s, tenant)
        return tenant


def _count(name: str, channel: str) -> None:
    from aws_lambda_powertools.metrics import single_metric  # its own EMF line, with the channel dimension

    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
                       default_dimensions=metrics.default_dimensions) as metric:
        metric.add_dimension(name="channel", value=channel)


class NotificationService:
    def __init__(self, tenants: Callable[[str], Tenant | None], channels: Sequence[Channel],
                 ledger: DeliveryLedger | None = None) -> None:
        self._tenants = tenants
        self._channels = channels
        self._ledger = ledger if ledger is not None else MemoryLedger()

    def notify(self, event: NotificationEvent) -> dict[str, Outcome]:
        """Each configured channel's outcome; raises `RetryableDeliveryError` if any should be retried."""
        about = {"event_id": event.id, "event_type": event.type, "tenant_id": event.tenant_id,
                 "correlation_id": event.correlation_id}
        tenant = self._tenants(event.tenant_id)
        skipped = ("unknown tenant" if tenant is None else "tenant disabled" if tenant.status != "active"
                   else "not subscribed" if event.type not in tenant.notifications.events else None)
        if tenant is None or skipped:
            logger.info("notification skipped", extra={**about, "reason": skipped})
            metrics.add_metric(name="NotificationsSkipped", unit=MetricUnit.Count, value=1)
            return {}
        outcomes: dict[str, Outcome] = {}
        for channel in self._channels:
            if channel.configured(tenant):
                outcomes[channel.name] = self._deliver(channel, event, tenant, {**about, "channel": channel.name})
        retry = sorted(name for name, outcome in outcomes.items() if outcome == "retry")
        if retry:
            raise RetryableDeliveryError(f"delivery to {', '.join(retry)} will be retried", channels=retry)
        if not outcomes:
            logger.info("notification skipped", extra={**about, "reason": "no channel configured"})
        return outcomes

    def _deliver(self, channel: Channel, event: NotificationEvent, tenant: Tenant, about: dict[str, Any]) -> Outcome:
        key = f"notification#{event.id}#{channel.name}"
        if self._ledger.done(key):
            logger.info("notification already handled", extra=about)
            return "duplicate"
        try:
            details = channel.deliver(event, tenant)
        except PermanentDeliveryError as exc:
            logger.warning("notification failed permanently",
                           extra={**about, **exc.details, "reason": exc.reason, "retry": False})
            _count("NotificationsFailed", channel.name)
            self._remember(key, "failed", about)
            return "failed"
        except RetryableDeliveryError as exc:
            logger.warning("notification failed, will retry",
                           extra={**about, **exc.details, "reason": exc.reason, "retry": True})
            _count("NotificationsFailed", channel.name)
            return "retry"
        except Exception:  # a bug, not an answer from the channel: with its traceback, and retried
            logger.exception("notification failed unexpectedly, will retry", extra={**about, "retry": True})
            _count("NotificationsFailed", channel.name)
            return "retry"
        logger.info("notification delivered", extra={**about, **details})
        _count("NotificationsDelivered", channel.name)
        self._remember(key, "delivered", about)
        return "delivered"

    def _remember(self, key: str, outcome: str, about: dict[str, Any]) -> None:
        try:
            self._ledger.record(key, outcome)
        except Exception as exc:  # the delivery happened; the worst case is a duplicate on a retry
            logger.warning("delivery ledger write failed", extra={**about, "error": type(exc).__name__})
