"""What a delivery channel is, and the two ways a delivery fails.

A channel raises `PermanentDeliveryError` when trying again cannot help (a 4xx from the endpoint,
a refused address, an SES rejection): it is logged and counted, never retried. Anything else it
raises (`RetryableDeliveryError`, timeouts, AWS throttling) makes the queue message fail, so SQS
delivers it again later and, after maxReceiveCount, moves it to the DLQ.

Messages (`reason`, `details`) are written to logs: they never carry a secret, an address, a
phone number or the event's payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from deepseek_gateway.notifications.events import NotificationEvent
    from deepseek_gateway.tenancy.models import Tenant

ChannelName = Literal["webhook", "email", "sms"]


class DeliveryError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot succeed."""


class RetryableDeliveryError(DeliveryError):
    """May succeed later: the message goes back to the queue."""


class Channel(Protocol):
    name: ChannelName

    def configured(self, tenant: Tenant) -> bool:
        """Whether the tenant has an address on this channel."""
        ...

    def deliver(self, event: NotificationEvent, tenant: Tenant) -> dict[str, Any]:
        """Delivers or raises; returns details for the log line (a status code, a host)."""
        ...
