"""JSON responses and the one mapping from exceptions to OpenAI-shaped error responses."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from deepseek_gateway.errors import GatewayError

JSON = "application/json"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(status_code=status, content_type=JSON, body=text, headers=headers or {})


def error_response(error: GatewayError) -> Response:
    return json_response(error.status, error.to_body(), error.headers)
