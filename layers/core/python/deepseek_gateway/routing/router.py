"""The model router: walks a model's fallback chain with retries, deadlines and circuit breakers.

Policy, in order of precedence:
- a client error from a provider (400/404/422) goes straight back to the caller: the same request
  would fail the same way everywhere, so it is neither retried nor sent to a fallback;
- 429, 5xx, 529, timeouts, dropped connections and unreadable answers are retried on the same
  provider (exponential backoff with full jitter, or the provider's Retry-After when it is short),
  then the next model in the chain is tried;
- every attempt gets min(attempt timeout, time left before the overall deadline);
- a provider whose breaker is open, that has no key, or whose model lacks a capability the
  request uses is skipped without a call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit

from deepseek_gateway.catalogue import Catalogue, ModelEntry, ProviderName
from deepseek_gateway.errors import (
    GatewayTimeoutError,
    InvalidRequestError,
    ProviderClientError,
    ServiceUnavailableError,
    UpstreamAuthError,
    UpstreamError,
)
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.observability import logger, metrics
from deepseek_gateway.providers.base import Provider, ProviderFailure
from deepseek_gateway.routing.backoff import full_jitter_delay
from deepseek_gateway.routing.breaker import CircuitBreaker

# A provider refusing our credentials is the operator's problem, not the caller's: it is reported
# as a gateway error (502) rather than passed on as 401/403, which would blame the caller's key.
_CLIENT_STATUSES_PASSED_ON = frozenset({400, 404, 413, 422})


@dataclass(frozen=True)
class RoutingPolicy:
    attempt_timeout_s: float
    deadline_s: float
    attempts_per_provider: int
    backoff_base_s: float
    backoff_cap_s: float
    max_retry_after_s: float


@dataclass
class RoutedCompletion:
    completion: ChatCompletion
    served_by: ModelEntry
    fallbacks: int
    attempts: int
    failures: list[str] = field(default_factory=list)

    @property
    def provider(self) -> ProviderName:
        return self.served_by.provider


def missing_capabilities(entry: ModelEntry, request: ChatCompletionRequest) -> list[str]:
    caps = entry.capabilities
    missing = []
    if request.uses_tools() and not caps.tools:
        missing.append("tools")
    if request.uses_json_mode() and not caps.json_mode:
        missing.append("response_format")
    if request.uses_vision() and not caps.vision:
        missing.append("image input")
    if (request.n or 1) > 1 and not caps.multiple_choices:
        missing.append("n > 1")
    return missing


def require_capabilities(entry: ModelEntry, request: ChatCompletionRequest) -> None:
    """The requested model itself must support what the request uses (a fallback that cannot is skipped)."""
    missing = missing_capabilities(entry, request)
    if missing:
        raise InvalidRequestError(
            f"The model `{entry.id}` does not support {', '.join(missing)}.", code="unsupported_feature"
        )


def skip_reason_for(
    candidate: ModelEntry,
    provider: Provider | None,
    request: ChatCompletionRequest,
    breaker: CircuitBreaker,
    *,
    allowed: Callable[[ModelEntry], bool] | None = None,
) -> str | None:
    """Why a candidate of the chain is skipped without a call, or None when it may be called.

    `allowed` is the tenant's policy for fallbacks; pass None for the requested model itself, which the
    caller's policy check has already decided.
    """
    if provider is None or not provider.configured():
        return "provider not configured"
    if missing_capabilities(candidate, request):
        return "lacks a feature the request uses"
    if not breaker.allow(candidate.provider):
        return "circuit open"
    if allowed is not None and not allowed(candidate):
        return "not allowed by the tenant's policy"
    return None


def describe_failure(failure: ProviderFailure) -> str:
    """A failed attempt as it is listed in the final error: kind and status, never the provider's text."""
    return f"{failure.kind}{f' {failure.status}' if failure.status else ''}"


def record_retryable_failure(breaker: CircuitBreaker, candidate: ModelEntry, failure: ProviderFailure,
                             attempt: int | None = None) -> None:
    """Count a retryable failure against the provider's breaker, in the metrics and in the log."""
    breaker.record_failure(candidate.provider)
    metrics.add_metric(name="ProviderErrors", unit=MetricUnit.Count, value=1)
    logger.warning(
        "provider attempt failed",
        extra={"provider": candidate.provider, "model": candidate.id, "attempt": attempt,
               "kind": failure.kind, "status": failure.status},
    )


def no_provider_error(entry: ModelEntry, skipped: list[str], policy: RoutingPolicy) -> ServiceUnavailableError:
    """Every candidate was skipped before any call: 503 with a short Retry-After."""
    return ServiceUnavailableError(
        f"No provider is available for `{entry.id}` right now ({'; '.join(skipped)}).",
        headers={"retry-after": str(int(policy.max_retry_after_s) or 1)},
    )


class Router:
    def __init__(
        self,
        catalogue: Catalogue,
        providers: Mapping[ProviderName, Provider],
        breaker: CircuitBreaker,
        policy: RoutingPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._catalogue = catalogue
        self._providers = providers
        self._breaker = breaker
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry,
                 allowed: Callable[[ModelEntry], bool] | None = None) -> RoutedCompletion:
        """`allowed` is the tenant's policy for fallbacks: a model it refuses is skipped, not called."""
        require_capabilities(entry, request)
        deadline = self._clock() + self._policy.deadline_s
        failures: list[str] = []
        timed_out_only = True
        attempts = 0
        for position, candidate in enumerate(self._catalogue.chain(entry)):
            provider = self._providers.get(candidate.provider)
            skip_reason = skip_reason_for(candidate, provider, request, self._breaker,
                                          allowed=allowed if position else None)
            if skip_reason:
                failures.append(f"{candidate.id}: {skip_reason}")
                continue
            assert provider is not None  # skip_reason_for rules it out
            for attempt in range(self._policy.attempts_per_provider):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise GatewayTimeoutError("The request deadline passed before any provider answered.")
                attempts += 1
                try:
                    completion = provider.complete(
                        request, candidate, min(self._policy.attempt_timeout_s, remaining)
                    )
                except ProviderFailure as failure:
                    if not failure.retryable:
                        raise client_error(failure, candidate) from failure
                    record_retryable_failure(self._breaker, candidate, failure, attempt + 1)
                    failures.append(f"{candidate.id}: {describe_failure(failure)}")
                    timed_out_only = timed_out_only and failure.kind == "timeout"
                    delay = self._retry_delay(failure, attempt, deadline)
                    if delay is None or not self._breaker.allow(candidate.provider):
                        break
                    self._sleep(delay)
                    continue
                self._breaker.record_success(candidate.provider)
                if position:
                    metrics.add_metric(name="Fallbacks", unit=MetricUnit.Count, value=position)
                return RoutedCompletion(completion, candidate, position, attempts, failures)
        if attempts == 0:
            raise no_provider_error(entry, failures, self._policy)
        if timed_out_only:
            raise GatewayTimeoutError(f"No provider answered `{entry.id}` in time ({'; '.join(failures)}).")
        raise UpstreamError(f"Every provider failed for `{entry.id}` ({'; '.join(failures)}).")

    def _retry_delay(self, failure: ProviderFailure, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before retrying the same provider, or None to move to the next one."""
        if attempt + 1 >= self._policy.attempts_per_provider:
            return None
        if failure.retry_after_s is not None:
            if failure.retry_after_s > self._policy.max_retry_after_s:
                return None
            delay = failure.retry_after_s
        else:
            delay = full_jitter_delay(attempt, self._policy.backoff_base_s, self._policy.backoff_cap_s, self._rng)
        if self._clock() + delay >= deadline:
            return None
        return delay


def client_error(failure: ProviderFailure, candidate: ModelEntry) -> Exception:
    """What a non-retryable provider failure becomes: the caller's 4xx, or a 502 for a refused key."""
    if failure.status in _CLIENT_STATUSES_PASSED_ON:
        return ProviderClientError(
            f"{candidate.provider} rejected the request: {failure.message}",
            status=failure.status or 400,
            param=failure.param,
        )
    error = UpstreamAuthError if failure.status in (401, 403) else UpstreamError
    return error(
        f"{candidate.provider} refused the gateway's request (HTTP {failure.status}); "
        "the operator should check the provider key and account.",
    )
