"""Pydantic validation errors as OpenAI-shaped 400s naming the offending parameter, and the JSON a request may
carry: strict (no NaN, Infinity or unpaired surrogates) and at most MAX_JSON_DEPTH levels deep."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from deepseek_gateway.errors import InvalidRequestError

# Pydantic puts a union member's tag into an error's location after these: not part of the field path.
_TAGGED_AFTER_INDEX = frozenset({"messages", "content"})
_TAGGED = frozenset({"response_format"})


def param_path(loc: tuple[Any, ...]) -> str | None:
    """`messages[0].content` from pydantic's location, dropping the union tags it inserts."""
    path = ""
    skip_next = False
    last_name = None
    for part in loc:
        if skip_next:
            skip_next = False
            continue
        if isinstance(part, int):
            path += f"[{part}]"
            skip_next = last_name in _TAGGED_AFTER_INDEX
            continue
        text = str(part)
        if text == "str" or "[" in text or text[:1].isupper():
            continue
        path += f".{text}" if path else text
        last_name = text
        skip_next = text in _TAGGED
    return path or None


def invalid_request(exc: ValidationError) -> InvalidRequestError:
    return request_error(exc.errors(include_url=False, include_input=False)[0])


def request_error(first: Any) -> InvalidRequestError:
    """One of pydantic's errors (`ValidationError.errors()`) as the 400 naming its parameter."""
    param = param_path(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and param:
        return InvalidRequestError(f"Unrecognized request argument supplied: {param}", param=param,
                                   code="unrecognized_argument")
    return InvalidRequestError(f"Invalid value for '{param}': {message}." if param else f"{message}.", param=param)


# How deep lists and objects may nest in a request's JSON: far beyond any real message or JSON Schema (OpenAI's
# structured outputs allow 10 levels), far below where recursion breaks downstream — pydantic-core refuses to
# serialize past ~255 levels, Python's own recursion limit is 1000 frames — which would be a 500.
MAX_JSON_DEPTH = 64
# The largest integer every consumer of a token count takes: Cedar's Long (policy context), providers' int64.
MAX_INT64 = 2**63 - 1


# A \uD800-\uDFFF escape somewhere: only then can decoded JSON hold an unpaired surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class NotJsonError(ValueError):
    """What Python's json reads but JSON (RFC 8259) has not, or no UTF-8 encoder (no provider SDK) can write."""


def _refuse_constant(name: str) -> Any:
    raise NotJsonError(f"`{name}`: NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJsonError(f"`{text[:40]}`: numbers beyond a double (about 1.8e308) are not JSON")
    return value


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def strict_json(text: str) -> Any:
    """`json.loads`, refusing NaN, Infinity, numbers that overflow a double and unpaired surrogate escapes
    (`"\\ud800"`) with NotJsonError. Any other malformation is a ValueError, as with json.loads, and nesting past
    Python's recursion limit a RecursionError."""
    value = _DECODER.decode(text)
    if unpaired_surrogate(text, value):
        raise NotJsonError("an unpaired UTF-16 surrogate (\\ud800-\\udfff without its pair), which is not "
                           "valid Unicode")
    return value


def unpaired_surrogate(text: str, value: Any) -> bool:
    """Whether `value`, decoded from the JSON `text`, holds an unpaired surrogate: no UTF-8 encoder (no provider
    SDK) can write it. Only a `\\uD800`-`\\uDFFF` escape in the text can make one, so nothing else is walked."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def nesting_exceeds(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether lists and objects nest more than `limit` levels deep in a decoded JSON value: level by level, no
    recursion (~0.3 µs a container)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, dict | list)]
    return False


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(exc) from None
