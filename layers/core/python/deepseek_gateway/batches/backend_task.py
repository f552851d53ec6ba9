"""The batch workflow's provider call: one attempt on this function's own provider, nothing else.

    {"request": {body}, "model": "<catalogue id>", "idempotency_key": "<batch_id>:<line>:<model>"}
        → ChatCompletion JSON (what `POST /v1/chat/completions` would return for the same call)

Retries and fallbacks belong to the state machine, so failures leave as exceptions whose class name
is the error name it matches: `ProviderRetryableError` (429, 5xx, timeouts: Retry, then the next
provider), `ProviderClientError` (400/404/413/422) and `UpstreamAuthError` (the provider refused our key;
record as error). Anything else (a breaker that opened, a provider without a key) goes to the next
provider. A completed call is stored under `idempotency_key` (Powertools idempotency), so a retried
invocation returns that answer instead of paying for a second one; failures are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_gateway.batches.errors import ProviderRetryableError
from deepseek_gateway.batches.routing_task import request_from_body
from deepseek_gateway.catalogue import Catalogue, ProviderName
from deepseek_gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ProviderClientError,
    ServiceUnavailableError,
)
from deepseek_gateway.providers.base import Provider, ProviderFailure
from deepseek_gateway.routing.breaker import CircuitBreaker
from deepseek_gateway.routing.router import RoutingPolicy, client_error, describe_failure, record_retryable_failure
from deepseek_gateway.validation import invalid_request


class BackendEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request: dict[str, Any]
    model: str = Field(min_length=1, description="catalogue id of the model this provider serves")
    idempotency_key: str = Field(min_length=1, max_length=1024)


@dataclass
class BackendTask:
    """`persistence` is a Powertools persistence layer; None (unit tests, no table) calls without it."""

    provider_name: ProviderName
    catalogue: Catalogue
    provider: Provider
    breaker: CircuitBreaker
    policy: RoutingPolicy
    persistence: Any = None
    expires_after_s: int = 86_400
    _idempotent: Any = field(default=None, init=False, repr=False)
    _config: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.persistence is None:
            return
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        # The key names the line and the model, not the request: the safety stage may place a fresh
        # canary in a re-run item's request, and that must still find the answer already paid for.
        self._config = IdempotencyConfig(event_key_jmespath="idempotency_key", raise_on_no_idempotency_key=True,
                                         expires_after_seconds=self.expires_after_s)
        self._idempotent = idempotent_function(self._call, data_keyword_argument="event",
                                               persistence_store=self.persistence, config=self._config)

    def run(self, event: Any, lambda_context: Any = None) -> dict[str, Any]:
        try:
            task = BackendEvent.model_validate(event)
        except ValidationError as exc:
            raise invalid_request(exc) from None
        payload = task.model_dump(mode="json")
        if self._idempotent is None:
            return self._call(event=payload)
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        if lambda_context is not None:
            # An invocation killed by its timeout leaves an in-progress record; with the context it
            # expires when that invocation's time is up, so the retry is not locked out for an hour.
            self._config.register_lambda_context(lambda_context)
        try:
            return self._idempotent(event=payload)
        except IdempotencyAlreadyInProgressError as exc:
            raise ProviderRetryableError("a previous attempt of this call is still running") from exc

    def _call(self, *, event: dict[str, Any]) -> dict[str, Any]:
        task = BackendEvent.model_validate(event)
        entry = self.catalogue.find(task.model)
        if entry is None or entry.id != task.model or entry.provider != self.provider_name:
            # The state machine sent the line to the wrong function: let it move on to the next candidate.
            raise GatewayError(f"The {self.provider_name} backend does not serve `{task.model}`.")
        try:
            request = request_from_body(task.request, self.catalogue)
        except InvalidRequestError as exc:
            # Checked when the batch was submitted and again by the router: the same body fails everywhere.
            raise ProviderClientError(exc.message, status=exc.status, param=exc.param) from exc
        if not self.provider.configured():
            raise ServiceUnavailableError("provider not configured")
        if not self.breaker.allow(entry.provider):
            raise ServiceUnavailableError("circuit open")
        try:
            completion = self.provider.complete(request, entry, self.policy.attempt_timeout_s)
        except ProviderFailure as failure:
            if not failure.retryable:
                raise client_error(failure, entry) from failure
            record_retryable_failure(self.breaker, entry, failure)
            raise ProviderRetryableError(describe_failure(failure)) from failure
        self.breaker.record_success(entry.provider)
        # As `POST /v1/chat/completions` answers: every field the provider returned, unset ones left out.
        return completion.model_dump(mode="json", exclude_none=True)
