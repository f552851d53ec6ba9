"""The synchronous chat path: parse and validate the body, route it, price the answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.catalogue import Catalogue, ModelEntry
from deepseek_gateway.cost import answer_cost
from deepseek_gateway.errors import GatewayError, InvalidRequestError, UnrecognizedArgumentError
from deepseek_gateway.limits.service import Admission, LimitService
from deepseek_gateway.limits.usage import UsageRecord
from deepseek_gateway.models.chat import ChatCompletionRequest, Usage
from deepseek_gateway.observability import logger, metrics
from deepseek_gateway.policy.engine import RequestFacts, violation
from deepseek_gateway.routing.router import RoutedCompletion, Router
from deepseek_gateway.safety import Moderator, SafetySettings, inspect_request, inspect_response
from deepseek_gateway.tenancy.directory import TenantContext, TenantDirectory, principal_uid
from deepseek_gateway.tokens import estimate_prompt_tokens, output_reserve
from deepseek_gateway.validation import invalid_request

_KNOWN_FIELDS = frozenset(
    info.alias or name for name, info in ChatCompletionRequest.model_fields.items()
) - {"extensions"}


DEFAULT_SAFETY = SafetySettings()


@dataclass
class ChatResult:
    routed: RoutedCompletion
    cost_usd: Decimal
    headers: dict[str, str] = field(default_factory=dict)


def parse_request(body: Any, catalogue: Catalogue) -> ChatCompletionRequest:
    """Validate a decoded JSON body against OpenAI's schema and the catalogue.

    Fields the catalogue declares as extensions of the requested model are set aside and passed
    to the provider untouched; any other unknown top-level field is refused by name, so a field
    like `tenant_id` can never smuggle anything in.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "You must provide a model parameter.", param="model", code="missing_required_parameter"
        )
    entry = catalogue.resolve(model)
    extensions = {key: body[key] for key in body if key not in _KNOWN_FIELDS and key in entry.extensions}
    unknown = sorted(key for key in body if key not in _KNOWN_FIELDS and key not in extensions)
    if unknown:
        raise UnrecognizedArgumentError(unknown[0])
    fields = {key: value for key, value in body.items() if key not in extensions}
    try:
        request = ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    request.extensions = extensions
    limit = request.output_token_limit
    if limit is not None and limit > entry.max_output_tokens:
        # OpenAI's answer to the same; sent on, the provider would refuse it after a round trip.
        field = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        raise InvalidRequestError(f"`{field}` is too large: {limit}. `{entry.id}` writes at most "
                                  f"{entry.max_output_tokens} tokens.", param=field)
    return request


def policy_check(context: TenantContext, principal: Principal, request: ChatCompletionRequest,
                 entry: ModelEntry, prompt_tokens: int) -> Callable[[ModelEntry], bool]:
    """Raise the tenant's policy denial for the requested model; return its decision for fallbacks.

    Shared with the batch workflow's router, so a batch line is allowed exactly when the same body is.
    """
    facts = RequestFacts(
        max_tokens=request.output_token_limit or 0, input_tokens=prompt_tokens, tools=request.uses_tools(),
        json_mode=request.uses_json_mode(), vision=request.uses_vision(), stream=bool(request.stream),
    )
    uid = principal_uid(principal)
    decision = context.policies.decide(uid, entry, facts, fallback=False)
    if not decision.allowed:
        logger.info("policy denied", extra={"tenant_id": principal.tenant_id, "rules": list(decision.rules)})
        raise violation(entry, decision)
    return lambda candidate: context.policies.decide(uid, candidate, facts, fallback=True).allowed


class ChatService:
    """Policy → limits and budget → router → settlement, for one chat completion.

    Without a tenant directory and limit service (unit tests of routing alone) only the router runs.
    """

    def __init__(self, catalogue: Catalogue, router: Router, directory: TenantDirectory | None = None,
                 limits: LimitService | None = None,
                 moderators: Callable[[SafetySettings], Moderator | None] | None = None) -> None:
        self._catalogue = catalogue
        self._router = router
        self._directory = directory
        self._limits = limits
        self._moderators = moderators or (lambda _settings: None)

    def parse(self, body: Any) -> ChatCompletionRequest:
        return parse_request(body, self._catalogue)

    def complete(self, request: ChatCompletionRequest, principal: Principal | None = None,
                 request_id: str = "") -> ChatResult:
        entry = self._catalogue.resolve(request.model)
        started = time.perf_counter()
        context = self._directory.context(principal) if self._directory and principal else None
        allowed = None
        prompt_tokens = estimate_prompt_tokens(request)
        if context is not None and principal is not None:
            allowed = policy_check(context, principal, request, entry, prompt_tokens)
        safety = context.settings.safety if context is not None else DEFAULT_SAFETY
        moderator = self._moderators(safety)
        verdict = inspect_request(request, safety, moderator=moderator)
        verdict.raise_if_blocked()  # 400 content_policy_violation, before anything is reserved or called
        admission = None
        if self._limits is not None and context is not None and principal is not None:
            reserve_cost = self._reserve_cost(request, entry, prompt_tokens, allowed)
            admission = self._limits.admit(principal, context.tenant.limits, context.key_limits, request_id,
                                           prompt_tokens + output_reserve(request, entry), reserve_cost)
        try:
            # The provider sees the redacted request (placeholders, canary); the client gets its values back.
            routed = self._router.complete(verdict.request, entry, allowed)
        except GatewayError as error:
            if admission is not None and principal is not None and context is not None:
                self._settle(admission, principal, context, request, None, Decimal(0), error.status, started)
                error.headers = {**admission.headers(), **error.headers}
            raise
        checked = inspect_response(routed.completion, verdict, request, safety, moderator=moderator)
        routed.completion = checked.completion
        cost = answer_cost(routed.served_by, routed.completion.usage)
        self._metrics(routed, cost)
        if admission is not None and principal is not None and context is not None:
            self._settle(admission, principal, context, request, routed, cost, 200, started)
        return ChatResult(routed, cost, admission.headers() if admission else {})

    def _reserve_cost(self, request: ChatCompletionRequest, entry: ModelEntry, prompt_tokens: int,
                      allowed: Callable[[ModelEntry], bool] | None) -> Decimal:
        """The most the answer may cost: that of the dearest model of the chain the tenant's policy allows.

        Dearest first, stopping at the first one allowed (the requested model always is): the same maximum
        as over every allowed model, for fewer policy decisions (deepseek-chat: one instead of two, 70 µs of
        CPU per request). The router still asks the policy before it calls a fallback.
        """
        priced = [(answer_cost(c, Usage(prompt_tokens=prompt_tokens, completion_tokens=output_reserve(request, c))), c)
                  for c in self._catalogue.chain(entry)]
        priced.sort(key=lambda pair: pair[0], reverse=True)
        return next(cost for cost, c in priced if c is entry or allowed is None or allowed(c))

    def _settle(self, admission: Admission, principal: Principal, context: TenantContext,
                request: ChatCompletionRequest, routed: RoutedCompletion | None, cost: Decimal, status: int,
                started: float) -> None:
        assert self._limits is not None
        usage = routed.completion.usage if routed else None
        record = UsageRecord(
            tenant_id=principal.tenant_id, key_id=principal.key_id, request_id=admission.request_id,
            model=request.model, served_by=routed.served_by.id if routed else None,
            provider=routed.provider if routed else None,
            prompt_tokens=usage.prompt_tokens if usage else 0, cached_tokens=usage.cached_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0, cost_usd=cost,
            latency_ms=int((time.perf_counter() - started) * 1000), status=status,
            fallbacks=routed.fallbacks if routed else 0,
        )
        self._limits.settle(admission, record, context.settings.retention_days)

    @staticmethod
    def _metrics(routed: RoutedCompletion, cost: Decimal) -> None:
        usage = routed.completion.usage
        if usage is not None:
            metrics.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=usage.prompt_tokens)
            metrics.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=usage.completion_tokens)
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(cost))
