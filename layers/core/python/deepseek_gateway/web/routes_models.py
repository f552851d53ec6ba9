"""GET /v1/models and /v1/models/{model}: the catalogue in OpenAI's list shape, with our extras."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.web.auth import caller
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services

router = Router()

# Catalogue entries have no creation date; OpenAI clients expect an integer.
_CREATED = 1735689600  # 2025-01-01T00:00:00Z


def _model_object(entry: ModelEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "model",
        "created": _CREATED,
        "owned_by": entry.provider,
        "aliases": list(entry.aliases),
        "context_window": entry.context_window,
        "max_output_tokens": entry.max_output_tokens,
        "capabilities": entry.capabilities.model_dump(),
        "pricing": {
            "currency": "USD",
            "unit": "per_million_tokens",
            **{k: float(v) for k, v in entry.prices.model_dump().items()},
        },
        "fallbacks": list(entry.fallbacks),
    }


@router.get("/models")
def list_models() -> Response:
    caller(router)
    catalogue = get_services().catalogue
    return json_response(200, {"object": "list", "data": [_model_object(m) for m in catalogue.models]})


@router.get("/models/<model>")
def get_model(model: str) -> Response:
    caller(router)
    return json_response(200, _model_object(get_services().catalogue.resolve(model)))
