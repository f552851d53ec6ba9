"""POST /v1/messages: Anthropic's Messages API, for callers of the anthropic SDK, through the chat pipeline.

Errors on this route come back in Anthropic's shape (web/app.py picks the shape by route).
"""

from __future__ import annotations

import time

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.web.auth import require
from deepseek_gateway.web.body import read_json_body, request_text
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.routes_chat import serve
from deepseek_gateway.web.services import get_services

router = Router()
MESSAGES_PATH = "/v1/messages"


@router.post("/messages")
def create_message() -> Response:
    # Imported here: the Messages API's models cost the cold start of every other route nothing.
    from deepseek_gateway.messages_api.events import message_events
    from deepseek_gateway.messages_api.translate import chat_request, to_message

    principal = require(router, "chat")
    services = get_services()
    started = time.perf_counter()
    body = read_json_body(request_text(router.current_event), services.settings.max_request_bytes)
    request = chat_request(body, services.chat.parse)
    request_id = router.context["request_id"]
    completion, headers = serve(request, principal, request_id, started, api="messages")
    message = to_message(completion)
    headers = {**headers, "request-id": request_id}  # where the anthropic SDK looks for it
    if request.stream:
        return Response(status_code=200, content_type="text/event-stream", body=message_events(message),
                        headers={**headers, "cache-control": "no-cache"})
    return json_response(200, message, headers)
