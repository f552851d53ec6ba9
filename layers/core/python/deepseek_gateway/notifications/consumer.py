"""One message from the notifications queue: parse it, deliver it, or send it back with a backoff.

A failed message is reported in the batch response and stays in the queue. With the queue's fixed
visibility timeout every retry would come after the same delay; `QueueBackoff` instead sets the
message's visibility from its receive count (1 min, 4 min, 16 min, 1 h by default), so a webhook
down for an hour is still reached before the message lands in the DLQ after maxReceiveCount.

A malformed message (not JSON, not an event) is logged and reported failed too, never dropped: it
can never succeed, but after maxReceiveCount it waits in the DLQ, with its alarm, for someone to
see which producer sent it. It keeps the queue's visibility timeout (no backoff, no AWS call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from deepseek_gateway.notifications.channels import RetryableDeliveryError
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.notifications.service import NotificationService, Outcome
from deepseek_gateway.observability import logger, metrics


class MalformedNotification(ValueError):  # noqa: N818 - the message is what is malformed
    """The queue message is not a notification event; it goes to the DLQ after its retries."""


class QueueMessage(BaseModel):
    """The fields of an SQS record the notifier uses (the Lambda event shape stays in the handler)."""

    message_id: str
    body: str
    receipt_handle: str | None = None
    receive_count: int = 1
    sent_timestamp_ms: int | None = None
    queue_arn: str | None = None

    @classmethod
    def from_sqs_record(cls, record: Mapping[str, Any]) -> QueueMessage:
        attributes = record.get("attributes") or {}
        sent = attributes.get("SentTimestamp")
        return cls(message_id=record["messageId"], body=record.get("body") or "",
                   receipt_handle=record.get("receiptHandle"),
                   receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
                   sent_timestamp_ms=int(sent) if sent else None, queue_arn=record.get("eventSourceARN"))


def retry_delay_s(receive_count: int, base_s: int = 60, cap_s: int = 3600) -> int:
    """Exponential (x4) in the number of receives so far, capped (SQS allows at most 12 h)."""
    return int(min(cap_s, base_s * 4 ** max(0, receive_count - 1), 43_200))


class QueueBackoff:
    """Sets a failed message's visibility timeout (the event source mapping may change visibility)."""

    def __init__(self, client_factory: Callable[[], Any], base_s: int = 60, cap_s: int = 3600) -> None:
        self._client_factory = client_factory
        self._base_s, self._cap_s = base_s, cap_s
        self._urls: dict[str, str] = {}

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def _url(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._urls[queue_arn] = self._client.get_queue_url(QueueName=name,
                                                               QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._urls[queue_arn]

    def defer(self, message: QueueMessage) -> int | None:
        """The delay set, or None when it could not be (the queue's own visibility timeout applies)."""
        if not message.queue_arn or not message.receipt_handle:
            return None
        delay = retry_delay_s(message.receive_count, self._base_s, self._cap_s)
        try:
            self._client.change_message_visibility(QueueUrl=self._url(message.queue_arn),
                                                   ReceiptHandle=message.receipt_handle, VisibilityTimeout=delay)
        except Exception as exc:  # best effort: the message is retried either way
            logger.warning("could not set the retry backoff", extra={"message_id": message.message_id,
                                                                      "error": type(exc).__name__})
            return None
        return delay


def _problems(exc: ValueError) -> list[str]:
    """Where the message is wrong, without echoing its content into the log."""
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['type']}" for e in exc.errors()]
    return [type(exc).__name__]


class NotificationConsumer:
    def __init__(self, service: NotificationService, backoff: QueueBackoff | None = None,
                 min_time_left_s: float = 0.0) -> None:
        self._service = service
        self._backoff = backoff
        self._min_time_left_s = min_time_left_s

    def consume(self, message: QueueMessage, time_left_s: float | None = None) -> dict[str, Outcome]:
        """Delivers the message's event; raises (so the record is reported failed) when it must come back.

        `time_left_s` is what remains of the invocation: with less than one worst-case delivery
        left, the message is sent back at once rather than cut off by the function's timeout, which
        would fail the whole batch, delivered records included.
        """
        try:
            event = NotificationEvent.from_message(message.body, message.sent_timestamp_ms)
        except ValueError as exc:  # JSON and validation errors alike
            logger.error("malformed notification message", extra={
                "message_id": message.message_id, "receive_count": message.receive_count,
                "problems": _problems(exc)})
            metrics.add_metric(name="NotificationsMalformed", unit=MetricUnit.Count, value=1)
            raise MalformedNotification(f"message {message.message_id} is not a notification event") from None
        try:
            if time_left_s is not None and time_left_s < self._min_time_left_s:
                raise RetryableDeliveryError("not enough time left in this invocation", time_left_s=time_left_s)
            return self._service.notify(event)
        except Exception as exc:
            delay = self._backoff.defer(message) if self._backoff else None
            logger.info("notification message returned to the queue", extra={
                "message_id": message.message_id, "event_id": event.id, "receive_count": message.receive_count,
                "retry_in_s": delay, "reason": getattr(exc, "reason", type(exc).__name__)})
            raise
