"""POST /v1/chat/completions."""

from __future__ import annotations

import time

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.observability import logger
from deepseek_gateway.streaming import to_event_stream
from deepseek_gateway.web.auth import require
from deepseek_gateway.web.body import read_json_body, request_text
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services

router = Router()


@router.post("/chat/completions")
def create_chat_completion() -> Response:
    principal = require(router, "chat")
    services = get_services()
    started = time.perf_counter()
    body = read_json_body(request_text(router.current_event), services.settings.max_request_bytes)
    request = services.chat.parse(body)
    if services.settings.log_content:
        logger.debug("chat request content", extra={"messages": body.get("messages")})  # type: ignore[union-attr]
    completion, headers = serve(request, principal, router.context["request_id"], started, api="chat.completions")
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return Response(
            status_code=200,
            content_type="text/event-stream",
            body=to_event_stream(completion, include_usage),
            headers={**headers, "cache-control": "no-cache"},
        )
    return json_response(200, completion.model_dump_json(exclude_none=True), headers)


def serve(request: ChatCompletionRequest, principal: Principal, request_id: str, started: float, *,
          api: str) -> tuple[ChatCompletion, dict[str, str]]:
    """Run a parsed request through the gateway (policy, limits, safety, routing, usage) and log it: the answer
    and the gateway's response headers, whichever API (`api`) the request came in through."""
    result = get_services().chat.complete(request, principal, request_id)
    routed = result.routed
    headers = {
        "x-gateway-provider": routed.provider,
        "x-gateway-model": routed.served_by.id,
        "x-gateway-fallbacks": str(routed.fallbacks),
        "x-gateway-attempts": str(routed.attempts),
        "x-gateway-cost-usd": format(result.cost_usd, "f"),
        **result.headers,
    }
    usage = routed.completion.usage
    logger.info(
        "chat completion served",
        extra={
            "api": api,
            "tenant_id": principal.tenant_id,
            "key_id": principal.key_id,
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
    return routed.completion, headers
