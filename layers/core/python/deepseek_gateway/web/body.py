"""Reading a request body: base64 and UTF-8, the size limit, then strict JSON; each failure an OpenAI-shaped error.

Never Powertools' `decoded_body`: it raises binascii.Error or UnicodeDecodeError (a 500) on a body flagged
base64 that is not base64 of UTF-8 text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from deepseek_gateway.errors import InvalidRequestError, PayloadTooLargeError
from deepseek_gateway.validation import MAX_JSON_DEPTH, NotJsonError, nesting_exceeds, strict_json


def request_bytes(event: Any) -> bytes:
    """The exact request bytes; API Gateway base64-encodes binary media types (multipart/form-data)."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("The request body is not valid base64.", code="invalid_body") from None
    return body.encode("utf-8", "surrogatepass")


def request_text(event: Any) -> str | None:
    """The request body as text, base64-decoded when API Gateway says it is encoded."""
    if not event.is_base64_encoded:
        return event.body
    try:
        return request_bytes(event).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not valid UTF-8 text.", code="invalid_body") from None


def read_json_body(raw: str | None, limit: int) -> object:
    text = raw or ""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # an unpaired surrogate in the text itself: no UTF-8 sender produces one
        raise _invalid_json("The request body is not valid Unicode: it holds an unpaired UTF-16 surrogate.") from None
    if size > limit:
        raise PayloadTooLargeError(f"The request body is {size} bytes; the limit is {limit} bytes.")
    if not text.strip():
        raise _invalid_json("The request body is empty; send a JSON object.")
    try:
        value = strict_json(text)
    except NotJsonError as exc:
        raise _invalid_json(f"The JSON body of your request contains {exc}.") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise _invalid_json("We could not parse the JSON body of your request. "
                            "Send valid JSON with Content-Type: application/json.") from None
    # Counting brackets (strings' included) is C-fast and rules out nearly every body before any walk.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and nesting_exceeds(value):
        raise _too_deep()
    return value


def _invalid_json(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, code="invalid_json")


def _too_deep() -> InvalidRequestError:
    return _invalid_json(f"The JSON body of your request nests lists and objects more than {MAX_JSON_DEPTH} levels "
                         "deep.")
