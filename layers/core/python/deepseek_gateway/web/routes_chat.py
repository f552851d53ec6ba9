"""POST /v1/chat/completions."""

from __future__ import annotations

import json
import time

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.errors import InvalidRequestError, PayloadTooLargeError
from deepseek_gateway.observability import logger
from deepseek_gateway.streaming import to_event_stream
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services

router = Router()


def read_json_body(raw: str | None, limit: int) -> object:
    """The decoded JSON body, refusing oversize and unparsable bodies with OpenAI-shaped errors."""
    text = raw or ""
    size = len(text.encode("utf-8"))
    if size > limit:
        raise PayloadTooLargeError(f"The request body is {size} bytes; the limit is {limit} bytes.")
    if not text.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Send valid JSON with Content-Type: application/json.",
            code="invalid_json",
        ) from None


@router.post("/chat/completions")
def create_chat_completion() -> Response:
    services = get_services()
    started = time.perf_counter()
    body = read_json_body(router.current_event.decoded_body, services.settings.max_request_bytes)
    request = services.chat.parse(body)
    if services.settings.log_content:
        logger.debug("chat request content", extra={"messages": body.get("messages")})  # type: ignore[union-attr]
    result = services.chat.complete(request)
    routed = result.routed
    headers = {
        "x-gateway-provider": routed.provider,
        "x-gateway-model": routed.served_by.id,
        "x-gateway-fallbacks": str(routed.fallbacks),
        "x-gateway-attempts": str(routed.attempts),
        "x-gateway-cost-usd": format(result.cost_usd, "f"),
    }
    usage = routed.completion.usage
    logger.info(
        "chat completion served",
        extra={
            "model": request.model,
            "served_by": routed.served_by.id,
            "provider": routed.provider,
            "fallbacks": routed.fallbacks,
            "attempts": routed.attempts,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cost_usd": str(result.cost_usd),
            "stream": bool(request.stream),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return Response(
            status_code=200,
            content_type="text/event-stream",
            body=to_event_stream(routed.completion, include_usage),
            headers={**headers, "cache-control": "no-cache"},
        )
    return json_response(200, routed.completion.model_dump_json(exclude_none=True), headers)
