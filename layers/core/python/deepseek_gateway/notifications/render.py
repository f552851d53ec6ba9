"""Plain-text renderings of an event for email (subject and body) and SMS (one short line).

Producers' `data` is read leniently (missing fields show as "?"): a notification with a gap is
better than none. Nothing here includes prompts, completions or matched text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepseek_gateway.notifications.events import NotificationEvent

PRODUCT = "DeepSeek Gateway"
SMS_MAX = 160


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    sms: str


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = data.get(key)
        if value not in (None, ""):
            return value
    return "?"


def _summary(event: NotificationEvent) -> tuple[str, str]:
    """(headline, detail) for the event's type."""
    d = event.data
    if event.type == "budget.threshold":
        percent = _get(d, "threshold_percent")
        return (f"{percent}% of the {_get(d, 'month')} budget used",
                f"Tenant {event.tenant_id} has used {percent}% of its monthly budget for {_get(d, 'month')}: "
                f"{_get(d, 'committed_usd')} USD of {_get(d, 'budget_usd')} USD. At 100% requests are "
                "refused until the budget renews at the start of next month (UTC).")
    if event.type == "batch.completed":
        counts = d.get("request_counts") if isinstance(d.get("request_counts"), dict) else {}
        return (f"Batch {_get(d, 'batch_id', 'id')} completed",
                f"Batch {_get(d, 'batch_id', 'id')} completed: {_get(counts, 'completed')} of "
                f"{_get(counts, 'total')} requests succeeded, {_get(counts, 'failed')} failed. "
                f"Output file: {_get(d, 'output_file_id')}; error file: {_get(d, 'error_file_id')}.")
    if event.type == "batch.failed":
        return (f"Batch {_get(d, 'batch_id', 'id')} failed",
                f"Batch {_get(d, 'batch_id', 'id')} failed: {_get(d, 'reason', 'message', 'error')}.")
    if event.type == "file.ingested":
        return (f"File {_get(d, 'file_id', 'id')} ingested",
                f"File {_get(d, 'file_id', 'id')} ({_get(d, 'filename')}) was ingested: "
                f"{_get(d, 'lines', 'line_count')} lines, {_get(d, 'bytes')} bytes.")
    categories = d.get("categories")
    named = ", ".join(map(str, categories)) if isinstance(categories, list) and categories else "?"
    return ("A request was blocked by the safety layer",
            f"A request of tenant {event.tenant_id} was blocked by the safety layer (categories: {named}); "
            f"request id {_get(d, 'request_id')}.")


def render(event: NotificationEvent) -> Rendered:
    headline, detail = _summary(event)
    text = (f"{detail}\n\nEvent: {event.type}\nEvent id: {event.id}\n"
            f"Time: {event.timestamp.isoformat()}\n\n-- {PRODUCT}\n")
    sms = f"{PRODUCT}: {headline} (tenant {event.tenant_id})."
    if len(sms) > SMS_MAX:
        sms = sms[: SMS_MAX - 3] + "..."  # ASCII: one GSM-7 segment, not UCS-2
    return Rendered(subject=f"[{PRODUCT}] {headline}", text=text, sms=sms)
