"""The batch workflow's router: which providers a line may go to, and the next one after a failure.

    {"action": "route", "tenant_id", "batch_id", "principal", "request": {body}, "line"}
        → {"provider", "model", "remaining": [{"provider", "model"}], "failures": []}
    {"action": "next", "route": {...}, "error": {"Error", "Cause"}}
        → the route with the next candidate at the front, the failure appended to `failures`

`route` filters the catalogue's chain exactly as the synchronous router does (the same helpers): the
tenant's policy for the requested model (its denial is raised) and for each fallback (a refused one is
left out), capabilities, provider configured, breaker open. It calls no provider: each candidate is
called by its own `backend_<provider>` function, and Step Functions retries and falls back between them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.errors import BatchCancelledError, BatchExpiredError
from deepseek_gateway.catalogue import Catalogue, ModelEntry, ProviderName
from deepseek_gateway.chat_service import parse_request, policy_check
from deepseek_gateway.errors import InvalidRequestError, PermissionDeniedError, UpstreamError
from deepseek_gateway.limits.counters import counters_of
from deepseek_gateway.limits.service import QuotaExceededError
from deepseek_gateway.models.chat import ChatCompletionRequest
from deepseek_gateway.observability import logger
from deepseek_gateway.routing.breaker import CircuitBreaker
from deepseek_gateway.routing.router import RoutingPolicy, no_provider_error, require_capabilities, skip_reason_for
from deepseek_gateway.tenancy.directory import TenantContext, TenantDirectory
from deepseek_gateway.tokens import estimate_prompt_tokens
from deepseek_gateway.validation import invalid_request

if TYPE_CHECKING:
    from deepseek_gateway.batches.store import BatchStore

# Error names whose message the gateway wrote itself (kind and status, as the sync router lists them);
# any other error is named by its type only, so no exception text ends up in a client's error file.
_DESCRIBED_ERRORS = frozenset({"ProviderRetryableError", "ServiceUnavailableError"})
_MAX_FAILURE_CHARS = 200


# --- events -------------------------------------------------------------------------------------


class Target(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: ProviderName
    model: str = Field(min_length=1, description="catalogue id of the model to call")


class Route(Target):
    remaining: list[Target] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)


class TaskError(BaseModel):
    """What a Step Functions Catch puts in the state: the error name and its JSON `Cause`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class RouteEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["route"]
    tenant_id: str = Field(min_length=1)
    batch_id: str = Field(min_length=1)
    principal: Principal
    request: dict[str, Any]
    line: int | None = None


class NextEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["next"]
    route: Route
    error: TaskError


_EVENT: TypeAdapter[RouteEvent | NextEvent] = TypeAdapter(
    Annotated[RouteEvent | NextEvent, Field(discriminator="action")]
)


# --- the body as the sync path reads it -----------------------------------------------------------


def request_from_body(body: Any, catalogue: Catalogue) -> ChatCompletionRequest:
    """The request `POST /v1/chat/completions` builds from this body, so a provider gets the same call.

    A body that went through a dump may carry the extensions nested under `extensions` (and unset
    fields as null): they are put back at the top level, where the catalogue's check expects them.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", param="body")
    fields = dict(body)
    nested = fields.pop("extensions", None)
    if isinstance(nested, dict):
        for name, value in nested.items():
            fields.setdefault(name, value)
    elif nested is not None:
        fields["extensions"] = nested  # not a dump's: refused by name, as the sync path refuses it
    return parse_request(fields, catalogue)


# --- what the router reads besides the catalogue ---------------------------------------------------


class KeyPresence(Protocol):
    def configured(self) -> bool: ...


class BatchGate(Protocol):
    def check_open(self, tenant_id: str, batch_id: str) -> None:
        """Raise BatchCancelledError, BatchExpiredError or BatchNotFoundError when no line may run."""
        ...


class BudgetGate(Protocol):
    def check(self, principal: Principal, context: TenantContext) -> None:
        """Raise QuotaExceededError when the tenant's (or the key's) monthly budget is used up."""
        ...


class StoreBatchGate:
    """The batch record's status and window, read through the batch store (one consistent GetItem)."""

    def __init__(self, store: BatchStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def check_open(self, tenant_id: str, batch_id: str) -> None:
        batch = self._store.get(tenant_id, batch_id)  # BatchNotFoundError for another tenant's id
        ensure_open(batch_id, batch.status, batch.expires_at, self._clock())


def ensure_open(batch_id: str, status: str | None, window_expires_at: float | None, now: float) -> None:
    """A cancelling/cancelled batch routes nothing more; nor does one whose 24 h window has passed."""
    if status in ("cancelling", "cancelled"):
        raise BatchCancelledError(batch_id)
    if status == "expired" or (window_expires_at is not None and now >= window_expires_at):
        raise BatchExpiredError(batch_id)


class CounterBudgetGate:
    """The month's spend as the limit counters hold it (`committed` on the tenant's counter item).

    Batch lines reserve nothing (each is billed once when its result is recorded), so a line is refused
    only when the budget is already used up — the 429 `insufficient_quota` the sync path gives.
    """

    def __init__(self, table_name: str, client: Any, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._db = client
        self._clock = clock

    def check(self, principal: Principal, context: TenantContext) -> None:
        tenant_budget = context.tenant.limits.monthly_budget_usd
        key_budget = context.key_limits.monthly_budget_usd if principal.key_id and context.key_limits else None
        if tenant_budget is None and key_budget is None:
            return
        names = {"#month": "month", "#committed": "committed"}
        if key_budget is not None:
            names["#kcost"] = f"k_{principal.key_id}_cost"
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"LIMITS#T#{principal.tenant_id}"}, "sk": {"S": "STATE"}},
            ProjectionExpression=", ".join(names), ExpressionAttributeNames=names,  # not the leases map
        ).get("Item")
        month = time.strftime("%Y-%m", time.gmtime(self._clock()))
        if not item or item.get("month", {}).get("S") != month:
            return  # nothing spent this month yet
        for level, budget, key_id in (("key", key_budget, principal.key_id), ("tenant", tenant_budget, None)):
            if budget is not None and counters_of(item, key_id).committed >= budget:
                raise QuotaExceededError(
                    f"The {level}'s monthly budget is used up; it renews at the start of next month (UTC)."
                )


# --- the task ------------------------------------------------------------------------------------


@dataclass
class RoutingTask:
    catalogue: Catalogue
    providers: Mapping[ProviderName, KeyPresence]
    breaker: CircuitBreaker
    policy: RoutingPolicy
    directory: TenantDirectory | None = None
    budget: BudgetGate | None = None
    batches: BatchGate | None = None

    def run(self, event: Any) -> dict[str, Any]:
        try:
            task = _EVENT.validate_python(event)
        except ValidationError as exc:
            raise invalid_request(exc) from None
        route = self.route(task) if isinstance(task, RouteEvent) else self.next(task)
        return route.model_dump(mode="json")

    def route(self, task: RouteEvent) -> Route:
        principal = task.principal
        if principal.tenant_id != task.tenant_id:
            raise PermissionDeniedError("The batch's principal belongs to another tenant.")
        if self.batches is not None:
            self.batches.check_open(task.tenant_id, task.batch_id)
        request = request_from_body(task.request, self.catalogue)
        entry = self.catalogue.resolve(request.model)
        allowed: Callable[[ModelEntry], bool] | None = None
        if self.directory is not None:
            context = self.directory.context(principal)
            allowed = policy_check(context, principal, request, entry, estimate_prompt_tokens(request))
            if self.budget is not None:
                self.budget.check(principal, context)
        require_capabilities(entry, request)
        chosen: list[Target] = []
        skipped: list[str] = []
        for position, candidate in enumerate(self.catalogue.chain(entry)):
            reason = skip_reason_for(candidate, self.providers.get(candidate.provider), request, self.breaker,
                                     allowed=allowed if position else None)
            if reason:
                skipped.append(f"{candidate.id}: {reason}")
            else:
                chosen.append(Target(provider=candidate.provider, model=candidate.id))
        if not chosen:
            raise no_provider_error(entry, skipped, self.policy)
        if skipped:
            logger.info("batch route skipped candidates",
                        extra={"batch_id": task.batch_id, "line": task.line, "skipped": skipped})
        first, *rest = chosen
        return Route(provider=first.provider, model=first.model, remaining=rest, failures=[])

    def next(self, task: NextEvent) -> Route:
        """The next candidate whose breaker is closed; a provider that opened meanwhile is skipped."""
        failures = [*task.route.failures, f"{task.route.model}: {describe_task_error(task.error)}"]
        remaining = list(task.route.remaining)
        while remaining:
            target = remaining.pop(0)
            if self.breaker.allow(target.provider):
                return Route(provider=target.provider, model=target.model, remaining=remaining, failures=failures)
            failures.append(f"{target.model}: circuit open")
        raise UpstreamError(f"Every provider failed for this request ({'; '.join(failures)}).")


def describe_task_error(error: TaskError) -> str:
    """A caught error as one entry of `failures`: the gateway's own short text, else just its name."""
    if error.error in _DESCRIBED_ERRORS and error.cause:
        try:
            cause = json.loads(error.cause)
        except ValueError:
            cause = None
        message = cause.get("errorMessage") if isinstance(cause, dict) else None
        if isinstance(message, str) and message:
            return message[:_MAX_FAILURE_CHARS]
    return error.error[:_MAX_FAILURE_CHARS]
