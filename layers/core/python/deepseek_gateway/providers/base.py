"""What every provider adapter offers the router, and the one failure type it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from deepseek_gateway.catalogue import ModelEntry, ProviderName
from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest

FailureKind = Literal["status", "timeout", "connection", "malformed"]

# Statuses worth another attempt or another provider; anything else 4xx is the caller's problem.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass
class ProviderFailure(Exception):
    """A provider call that did not produce an answer, classified for the router."""

    provider: ProviderName
    kind: FailureKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None
    param: str | None = None

    def __str__(self) -> str:
        where = f" HTTP {self.status}" if self.status else ""
        return f"{self.provider}{where} {self.kind}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.kind != "status" or self.status in RETRYABLE_STATUSES or (self.status or 0) >= 500


class Provider(Protocol):
    name: ProviderName

    def configured(self) -> bool:
        """Whether a key exists for this provider; an unconfigured provider is skipped."""
        ...

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry, timeout_s: float) -> ChatCompletion:
        """One attempt, no retries (the router owns retries). Raises ProviderFailure."""
        ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form) or `retry-after-ms`; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def unencodable_request() -> InvalidRequestError:
    """An SDK could not encode the request as UTF-8 JSON (a lone surrogate the validation missed). It is the
    request's fault, the same at every provider: a 400 now, not a retried "malformed answer" that counts
    against each provider's circuit breaker and ends as a 502."""
    return InvalidRequestError("The request contains text that is not valid Unicode (an unpaired UTF-16 "
                               "surrogate); send it as UTF-8.", code="invalid_json")
