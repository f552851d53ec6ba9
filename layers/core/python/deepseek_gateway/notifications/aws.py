"""Email through SES (v2 `SendEmail`) and SMS through SNS (`Publish` to a phone number).

Clients come from factories called on first delivery, so nothing is created at import and a
deployment without email or SMS tenants never builds those clients. An AWS error about the
message or its recipient (an unverified address in the SES sandbox, an invalid number) is
permanent; throttling, service errors and network errors are retried through the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from deepseek_gateway.notifications.channels import PermanentDeliveryError, RetryableDeliveryError
from deepseek_gateway.notifications.render import render

if TYPE_CHECKING:
    from deepseek_gateway.notifications.events import NotificationEvent
    from deepseek_gateway.tenancy.models import Tenant

# Error codes that no retry can fix: the message, the sender's identity or the recipient is refused.
PERMANENT_CODES = frozenset({
    "MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException",
    "InvalidParameter", "InvalidParameterValue", "InvalidParameterException", "ValidationError",
})


def _classify(exc: Exception, channel: str) -> Exception:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    if code in PERMANENT_CODES:
        return PermanentDeliveryError(f"{channel} refused by AWS ({code})", aws_error=code)
    return RetryableDeliveryError(f"{channel} failed ({code or type(exc).__name__})", aws_error=code)


class EmailChannel:
    name = "email"

    def __init__(self, client_factory: Callable[[], Any], sender: str | None) -> None:
        self._client_factory = client_factory
        self._sender = sender

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def configured(self, tenant: Tenant) -> bool:
        return tenant.notifications.email is not None

    def deliver(self, event: NotificationEvent, tenant: Tenant) -> dict[str, Any]:
        if not self._sender:
            raise PermanentDeliveryError("email is not configured for this deployment (SES_SENDER)")
        message = render(event)
        try:
            sent = self._client.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [tenant.notifications.email]},
                Content={"Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                }},
            )
        except Exception as exc:
            raise _classify(exc, "email") from None
        return {"message_id": sent.get("MessageId")}


class SmsChannel:
    name = "sms"

    def __init__(self, client_factory: Callable[[], Any], sms_type: str = "Transactional") -> None:
        self._client_factory = client_factory
        self._sms_type = sms_type

    @cached_property
    def _client(self) -> Any:
        return self._client_factory()

    def configured(self, tenant: Tenant) -> bool:
        return tenant.notifications.sms is not None

    def deliver(self, event: NotificationEvent, tenant: Tenant) -> dict[str, Any]:
        try:
            sent = self._client.publish(
                PhoneNumber=tenant.notifications.sms,
                Message=render(event).sms,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": self._sms_type}},
            )
        except Exception as exc:
            raise _classify(exc, "sms") from None
        return {"message_id": sent.get("MessageId")}
