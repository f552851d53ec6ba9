"""The api function's REST resolver: routes, the exception mapping, and the request id header."""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from deepseek_gateway.errors import GatewayError, NotFoundError
from deepseek_gateway.observability import logger
from deepseek_gateway.web import (
    routes_admin,
    routes_batches,
    routes_chat,
    routes_files,
    routes_messages,
    routes_models,
    routes_usage,
)
from deepseek_gateway.web.openapi import openapi_json
from deepseek_gateway.web.responses import error_response, json_response

REQUEST_ID_HEADER = "x-request-id"

app = APIGatewayRestResolver()
app.include_router(routes_chat.router, prefix="/v1")
app.include_router(routes_messages.router, prefix="/v1")
app.include_router(routes_models.router, prefix="/v1")
app.include_router(routes_usage.router, prefix="/v1")
app.include_router(routes_files.router, prefix="/v1")
app.include_router(routes_batches.router, prefix="/v1")
app.include_router(routes_admin.router, prefix="/admin")


@app.get("/openapi.json")
@app.get("/v1/openapi.json")  # the path API Gateway forwards (`/v1/{proxy+}`)
def get_openapi() -> Response:
    """The OpenAPI document: documentation, so no credential is checked; built on the first request."""
    return Response(status_code=200, content_type="application/json", body=openapi_json())


@app.exception_handler(GatewayError)
def _gateway_error(error: GatewayError) -> Response:
    if error.status >= 500:
        logger.warning("request failed", extra={"status": error.status, "code": error.code})
    return _shaped(error)


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    # The stack trace goes to the log, never to the client.
    logger.exception("unhandled error")
    return _shaped(GatewayError("The server had an error while processing your request."))


def _shaped(error: GatewayError) -> Response:
    """OpenAI's error shape, except on the Messages API, whose callers' SDK reads Anthropic's."""
    if app.current_event.path.rstrip("/") == routes_messages.MESSAGES_PATH:
        from deepseek_gateway.messages_api.translate import error_body

        request_id = app.context.get("request_id")  # the anthropic SDK reads `request-id` on errors too
        headers = {**(error.headers or {}), **({"request-id": request_id} if request_id else {})}
        return json_response(error.status, error_body(error), headers)
    return error_response(error)


@app.not_found
def _not_found(_: Exception) -> Response:
    event = app.current_event
    return error_response(
        NotFoundError(f"Unknown request URL: {event.http_method} {event.path}.", code="unknown_url")
    )


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve an API Gateway REST proxy event; every answer, errors included, carries the request id."""
    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    logger.append_keys(request_id=request_id)
    app.append_context(request_id=request_id)  # routes read it from `router.context`
    response = app.resolve(event, context)
    response.setdefault("headers", {})[REQUEST_ID_HEADER] = request_id
    if isinstance(response.get("multiValueHeaders"), dict):
        response["multiValueHeaders"][REQUEST_ID_HEADER] = [request_id]
    return response


