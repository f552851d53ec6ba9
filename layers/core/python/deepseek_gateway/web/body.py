"""Reading a request body: size limit first, then JSON, each failure an OpenAI-shaped error."""

from __future__ import annotations

import json

from deepseek_gateway.errors import InvalidRequestError, PayloadTooLargeError


def read_json_body(raw: str | None, limit: int) -> object:
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
            "We could not parse the JSON body of your request. "
            "Send valid JSON with Content-Type: application/json.",
            code="invalid_json",
        ) from None
