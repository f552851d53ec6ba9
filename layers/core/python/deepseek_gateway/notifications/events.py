"""The notification envelope every producer puts on the notifications queue.

    {"id": "evt_...", "type": "batch.completed", "tenant_id": "acme", "created_at": 1767225600,
     "data": {...}, "correlation_id": "..."}

`id` is the idempotency key of every delivery and the webhook's `webhook-id`, so it must not change
when a message is redelivered. A producer that sends none (the api function's budget.threshold
events, `{"type", "tenant_id", "threshold_percent", ...}` with the payload at the top level) gets one
derived from the event's content: the same event always has the same id.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepseek_gateway.tenancy.models import TENANT_ID

EventType = Literal["batch.completed", "batch.failed", "file.ingested", "budget.threshold", "safety.blocked"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

_ENVELOPE = frozenset({"id", "type", "tenant_id", "created_at", "data", "correlation_id"})


def content_id(event_type: str, tenant_id: str, data: dict[str, Any]) -> str:
    canonical = json.dumps([event_type, tenant_id, data], sort_keys=True, separators=(",", ":"), default=str)
    return "evt_" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class NotificationEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: EventType
    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    created_at: int = Field(ge=0, description="Unix seconds")
    data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _envelope(cls, value: Any) -> Any:
        """Accepts the flat shape (payload beside `type`) and fills a content-derived id."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        if "data" not in value:
            value["data"] = {k: value.pop(k) for k in list(value) if k not in _ENVELOPE}
        if not value.get("id") and isinstance(value.get("data"), dict):
            value["id"] = content_id(str(value.get("type")), str(value.get("tenant_id")), value["data"])
        value.setdefault("created_at", int(time.time()))
        return value

    @classmethod
    def new(cls, type: EventType, tenant_id: str, data: dict[str, Any] | None = None,
            correlation_id: str | None = None) -> NotificationEvent:
        """A fresh event for a producer: a random id, created now."""
        return cls(id=f"evt_{uuid.uuid4().hex}", type=type, tenant_id=tenant_id, created_at=int(time.time()),
                   data=data or {}, correlation_id=correlation_id)

    @classmethod
    def from_message(cls, body: str, sent_timestamp_ms: int | None = None) -> NotificationEvent:
        """Parses a queue message; without `created_at`, the time SQS received it stands in."""
        value = json.loads(body)
        if isinstance(value, dict) and "created_at" not in value and sent_timestamp_ms is not None:
            value["created_at"] = sent_timestamp_ms // 1000
        return cls.model_validate(value)

    def to_message(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, tz=UTC)

    def webhook_body(self) -> str:
        """The Standard Webhooks payload shape: `type`, `timestamp` (ISO 8601) and `data`."""
        payload = {"type": self.type, "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
                   "data": self.data}
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
