"""The synchronous chat path: parse and validate the body, route it, price the answer."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from deepseek_gateway.catalogue import Catalogue
from deepseek_gateway.cost import answer_cost
from deepseek_gateway.errors import InvalidRequestError, UnrecognizedArgumentError
from deepseek_gateway.models.chat import ChatCompletionRequest
from deepseek_gateway.observability import metrics
from deepseek_gateway.routing.router import RoutedCompletion, Router
from deepseek_gateway.validation import invalid_request

_KNOWN_FIELDS = frozenset(
    info.alias or name for name, info in ChatCompletionRequest.model_fields.items()
) - {"extensions"}


@dataclass
class ChatResult:
    routed: RoutedCompletion
    cost_usd: Decimal


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
    return request


class ChatService:
    def __init__(self, catalogue: Catalogue, router: Router) -> None:
        self._catalogue = catalogue
        self._router = router

    def parse(self, body: Any) -> ChatCompletionRequest:
        return parse_request(body, self._catalogue)

    def complete(self, request: ChatCompletionRequest) -> ChatResult:
        entry = self._catalogue.resolve(request.model)
        routed = self._router.complete(request, entry)
        cost = answer_cost(routed.served_by, routed.completion.usage)
        usage = routed.completion.usage
        if usage is not None:
            metrics.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=usage.prompt_tokens)
            metrics.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=usage.completion_tokens)
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(cost))
        return ChatResult(routed, cost)
