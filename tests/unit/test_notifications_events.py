"""The notification envelope: every event type, the api function's flat budget.threshold shape, stable ids."""

from __future__ import annotations

import json

import pytest
from deepseek_gateway.notifications.events import EVENT_TYPES, NotificationEvent
from pydantic import ValidationError

from tests.helpers import ROOT

BUDGET = {"type": "budget.threshold", "tenant_id": "acme", "threshold_percent": 80, "month": "2026-05",
          "committed_usd": "80.12", "budget_usd": "100"}


def test_the_api_functions_budget_threshold_shape_is_accepted_with_its_payload_as_data():
    event = NotificationEvent.from_message(json.dumps(BUDGET), sent_timestamp_ms=1767225600999)
    assert event.type == "budget.threshold" and event.tenant_id == "acme"
    assert event.data == {"threshold_percent": 80, "month": "2026-05", "committed_usd": "80.12", "budget_usd": "100"}
    assert event.created_at == 1767225600  # when SQS received it
    assert event.id.startswith("evt_")


def test_an_event_without_an_id_gets_the_same_id_on_every_redelivery_and_a_different_one_per_content():
    first = NotificationEvent.from_message(json.dumps(BUDGET), sent_timestamp_ms=1)
    again = NotificationEvent.from_message(json.dumps(BUDGET), sent_timestamp_ms=2_000_000)
    other = NotificationEvent.from_message(json.dumps({**BUDGET, "threshold_percent": 100}))
    assert first.id == again.id != other.id


def test_the_envelope_round_trips_and_keeps_the_producers_id():
    event = NotificationEvent.new("batch.completed", "acme", {"batch_id": "batch_1"}, correlation_id="req-1")
    assert NotificationEvent.from_message(event.to_message()) == event
    assert NotificationEvent.new("batch.completed", "acme").id != event.id


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_accepted(event_type):
    assert NotificationEvent.model_validate({"type": event_type, "tenant_id": "acme", "data": {}}).type == event_type


@pytest.mark.parametrize("body", [
    {"type": "batch.exploded", "tenant_id": "acme", "data": {}},
    {"type": "batch.completed", "tenant_id": "../other", "data": {}},
    {"type": "batch.completed", "data": {}},
    {"type": "batch.completed", "tenant_id": "acme", "data": {}, "batch_id": "misplaced"},
    {"type": "batch.completed", "tenant_id": "acme", "data": [1, 2]},
    {"type": "batch.completed", "tenant_id": "acme", "id": "has spaces", "data": {}},
    ["not", "an", "object"],
])
def test_a_malformed_event_is_refused(body):
    with pytest.raises(ValidationError):
        NotificationEvent.model_validate(body)


def test_the_webhook_body_has_the_standard_webhooks_shape():
    event = NotificationEvent(id="evt_1", type="file.ingested", tenant_id="acme", created_at=1767225600,
                              data={"file_id": "file-1"})
    assert json.loads(event.webhook_body()) == {"type": "file.ingested", "timestamp": "2026-01-01T00:00:00Z",
                                                "data": {"file_id": "file-1"}}


def test_every_record_of_the_sample_sqs_event_is_a_notification_event():
    sample = json.loads((ROOT / "events" / "notifier_sqs.json").read_text())
    events = [NotificationEvent.from_message(r["body"], int(r["attributes"]["SentTimestamp"]))
              for r in sample["Records"]]
    assert [e.type for e in events] == ["batch.completed", "budget.threshold", "file.ingested"]
