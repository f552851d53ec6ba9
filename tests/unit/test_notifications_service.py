"""Delivering one event: subscriptions, every channel tried, retries without duplicates, the queue consumer's
malformed-message, backoff and time-left rules, and the plain-text renderings."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from deepseek_gateway.notifications.channels import PermanentDeliveryError, RetryableDeliveryError
from deepseek_gateway.notifications.consumer import (
    MalformedNotification,
    NotificationConsumer,
    QueueBackoff,
    QueueMessage,
    retry_delay_s,
)
from deepseek_gateway.notifications.events import EVENT_TYPES, NotificationEvent
from deepseek_gateway.notifications.render import SMS_MAX, render
from deepseek_gateway.notifications.service import MemoryLedger, NotificationService, TenantCache
from deepseek_gateway.tenancy.models import Notifications, Tenant

from tests.helpers import ROOT

EVENT = NotificationEvent(id="evt_1", type="batch.completed", tenant_id="acme", created_at=1767225600,
                          data={"batch_id": "batch_1", "request_counts": {"total": 3, "completed": 2, "failed": 1}})


def tenant(status: str = "active", **notifications: Any) -> Tenant:
    settings = {"webhook_url": "https://hooks.example.com/in", "email": "ops@acme.example", "sms": "+15555550100",
                **notifications}
    return Tenant(tenant_id="acme", name="Acme", status=status, created_at=0, updated_at=0,
                  notifications=Notifications(**settings))


@dataclass
class FakeChannel:
    name: str
    script: list[Exception | None] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def configured(self, tenant: Tenant) -> bool:
        return getattr(tenant.notifications, "webhook_url" if self.name == "webhook" else self.name) is not None

    def deliver(self, event: NotificationEvent, tenant: Tenant) -> dict[str, Any]:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(event.id)
        return {}


def service(the_tenant: Tenant | None, *channels: FakeChannel) -> NotificationService:
    return NotificationService(lambda tenant_id: the_tenant, channels or default_channels(), MemoryLedger())


def default_channels() -> tuple[FakeChannel, ...]:
    return FakeChannel("webhook"), FakeChannel("email"), FakeChannel("sms")


def test_an_event_goes_to_every_configured_channel():
    channels = default_channels()
    assert service(tenant(), *channels).notify(EVENT) == {"webhook": "delivered", "email": "delivered",
                                                          "sms": "delivered"}
    assert [c.sent for c in channels] == [["evt_1"]] * 3


def test_only_the_channels_a_tenant_configured_are_used():
    webhook, email, sms = default_channels()
    outcomes = service(tenant(email=None, sms=None), webhook, email, sms).notify(EVENT)
    assert outcomes == {"webhook": "delivered"} and email.sent == sms.sent == []


@pytest.mark.parametrize("the_tenant", [
    tenant(events=["budget.threshold"]),  # not subscribed to batch.completed
    tenant(status="disabled"),
    None,  # unknown tenant
], ids=["unsubscribed", "disabled", "unknown"])
def test_an_event_the_tenant_cannot_receive_is_skipped_without_any_delivery(the_tenant):
    channels = default_channels()
    assert service(the_tenant, *channels).notify(EVENT) == {}
    assert all(c.sent == [] for c in channels)


def test_a_failing_webhook_does_not_hold_back_email_and_a_retry_sends_nothing_twice():
    webhook = FakeChannel("webhook", [RetryableDeliveryError("webhook answered 503")])
    email, sms = FakeChannel("email"), FakeChannel("sms")
    notifier = service(tenant(), webhook, email, sms)
    with pytest.raises(RetryableDeliveryError) as raised:
        notifier.notify(EVENT)
    assert raised.value.details == {"channels": ["webhook"]}
    assert email.sent == sms.sent == ["evt_1"] and webhook.sent == []
    assert notifier.notify(EVENT) == {"webhook": "delivered", "email": "duplicate", "sms": "duplicate"}
    assert email.sent == sms.sent == webhook.sent == ["evt_1"]


def test_a_permanent_failure_is_not_retried():
    webhook = FakeChannel("webhook", [PermanentDeliveryError("webhook answered 404")])
    notifier = service(tenant(email=None, sms=None), webhook)
    assert notifier.notify(EVENT) == {"webhook": "failed"}  # no exception: the message is done
    assert notifier.notify(EVENT) == {"webhook": "duplicate"} and webhook.sent == []


def test_an_unexpected_error_in_a_channel_is_retried():
    webhook = FakeChannel("webhook", [KeyError("bug")])
    with pytest.raises(RetryableDeliveryError):
        service(tenant(email=None, sms=None), webhook).notify(EVENT)


def test_tenants_are_read_once_per_ttl():
    now = [0.0]
    loads: list[str] = []
    cache = TenantCache(lambda tenant_id: loads.append(tenant_id) or tenant(), ttl_s=30, clock=lambda: now[0])
    cache("acme"), cache("acme")
    now[0] = 31
    cache("acme")
    assert loads == ["acme", "acme"]


# --- the queue consumer --------------------------------------------------------------------------------------


@dataclass
class FakeSqs:
    calls: list[tuple[str, dict]] = field(default_factory=list)
    fail: bool = False

    def get_queue_url(self, **kwargs: Any) -> dict:
        self.calls.append(("get_queue_url", kwargs))
        return {"QueueUrl": f"https://sqs.local/{kwargs['QueueOwnerAWSAccountId']}/{kwargs['QueueName']}"}

    def change_message_visibility(self, **kwargs: Any) -> dict:
        if self.fail:
            raise ConnectionError("sqs unreachable")
        self.calls.append(("change_message_visibility", kwargs))
        return {}


def message(body: str, receive_count: int = 1) -> QueueMessage:
    return QueueMessage(message_id="m-1", body=body, receipt_handle="rh-1", receive_count=receive_count,
                        queue_arn="arn:aws:sqs:us-east-1:123456789012:notifications")


def consumer(notifier: NotificationService, sqs: FakeSqs, min_time_left_s: float = 0.0) -> NotificationConsumer:
    return NotificationConsumer(notifier, QueueBackoff(lambda: sqs, base_s=60, cap_s=3600), min_time_left_s)


@pytest.mark.parametrize("body", ["{not json", '["a list"]', '{"type": "batch.completed"}', ""])
def test_a_malformed_message_fails_without_backoff_so_it_reaches_the_dlq(body):
    sqs = FakeSqs()
    with pytest.raises(MalformedNotification):
        consumer(service(tenant()), sqs).consume(message(body))
    assert sqs.calls == []


def test_a_message_to_retry_comes_back_after_a_backoff_growing_with_its_receive_count():
    sqs = FakeSqs()
    failing = service(tenant(email=None, sms=None), FakeChannel("webhook", [RetryableDeliveryError("down")] * 2))
    the_consumer = consumer(failing, sqs)
    for receive_count in (1, 3):
        with pytest.raises(RetryableDeliveryError):
            the_consumer.consume(message(EVENT.to_message(), receive_count=receive_count))
    visibility = [kwargs for name, kwargs in sqs.calls if name == "change_message_visibility"]
    assert [v["VisibilityTimeout"] for v in visibility] == [60, 960]
    assert visibility[0]["QueueUrl"] == "https://sqs.local/123456789012/notifications"
    assert visibility[0]["ReceiptHandle"] == "rh-1"
    assert [name for name, _ in sqs.calls].count("get_queue_url") == 1  # the URL is looked up once


def test_a_backoff_that_cannot_be_set_still_fails_the_message():
    failing = service(tenant(email=None, sms=None), FakeChannel("webhook", [RetryableDeliveryError("down")]))
    with pytest.raises(RetryableDeliveryError):
        consumer(failing, FakeSqs(fail=True)).consume(message(EVENT.to_message()))


def test_with_too_little_time_left_the_message_goes_back_undelivered():
    webhook = FakeChannel("webhook")
    with pytest.raises(RetryableDeliveryError, match="time left"):
        consumer(service(tenant(email=None, sms=None), webhook), FakeSqs(), min_time_left_s=17).consume(
            message(EVENT.to_message()), time_left_s=12.0)
    assert webhook.sent == []


def test_the_retry_schedule_grows_fourfold_up_to_its_cap():
    assert [retry_delay_s(n) for n in range(1, 6)] == [60, 240, 960, 3600, 3600]
    assert retry_delay_s(9, base_s=600, cap_s=10**9) == 43_200  # SQS's 12 h limit


def test_a_queue_message_is_read_from_the_sqs_record_shape():
    record = json.loads((ROOT / "events" / "notifier_sqs.json").read_text())["Records"][1]
    parsed = QueueMessage.from_sqs_record(record)
    assert parsed.receive_count == 1 and parsed.sent_timestamp_ms == 1767225601000
    assert parsed.queue_arn.startswith("arn:aws:sqs:") and parsed.receipt_handle


# --- renderings and imports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_renders_a_subject_a_text_and_a_short_sms(event_type):
    for data in ({}, {"batch_id": "b" * 300, "categories": ["prompt_injection"], "threshold_percent": 80}):
        rendered = render(NotificationEvent(id="evt_9", type=event_type, tenant_id="acme", created_at=0, data=data))
        assert rendered.subject.startswith("[DeepSeek Gateway] ") and "evt_9" in rendered.text
        assert len(rendered.sms) <= SMS_MAX and rendered.sms.isascii()


def test_the_budget_text_says_how_much_of_which_months_budget_is_used():
    event = NotificationEvent.model_validate({"type": "budget.threshold", "tenant_id": "acme", "threshold_percent": 80,
                                              "month": "2026-05", "committed_usd": "80.12", "budget_usd": "100"})
    rendered = render(event)
    assert rendered.subject == "[DeepSeek Gateway] 80% of the 2026-05 budget used"
    assert "80.12 USD of 100 USD" in rendered.text


def test_the_notifier_handler_imports_neither_boto3_nor_httpx_before_the_first_message():
    probe = ("import importlib.util, json, sys\n"
             "spec = importlib.util.spec_from_file_location('handler', 'functions/notifier/handler.py')\n"
             "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
             "print(json.dumps([name for name in ('boto3', 'httpx') if name in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                         check=True, timeout=60).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
