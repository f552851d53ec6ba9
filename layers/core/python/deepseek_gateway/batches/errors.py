"""The batch workflow's errors. Step Functions sees an exception's class name as the error name, so the
state machine matches these by name, and `record` maps a name back to its `code` (never the message).
"""

from __future__ import annotations

from deepseek_gateway.errors import ConflictError, NotFoundError, UpstreamError, quoted_id


class ProviderRetryableError(UpstreamError):
    """A provider failure worth retrying (429, 5xx, timeouts): the state machine retries, then falls back."""

    code = "upstream_error"


class BatchCancelledError(ConflictError):
    """The batch was cancelled: the line is not sent to any provider."""

    code = "batch_cancelled"

    def __init__(self, batch_id: str = "", message: str | None = None) -> None:
        super().__init__(message or f"Batch {batch_id} was cancelled before this request ran.".replace("  ", " "))


class BatchExpiredError(ConflictError):
    """The batch's completion window passed: the line is not sent to any provider."""

    code = "batch_expired"

    def __init__(self, batch_id: str = "", message: str | None = None) -> None:
        super().__init__(message or f"Batch {batch_id} expired before this request ran.".replace("  ", " "))


class BatchNotFoundError(NotFoundError):
    """Also what another tenant's batch looks like."""

    code = "batch_not_found"

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"No such batch: {quoted_id(batch_id)}", param="batch_id")
