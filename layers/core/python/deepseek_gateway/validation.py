"""Pydantic validation errors as OpenAI-shaped 400s naming the offending parameter."""

from __future__ import annotations

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
    first = exc.errors(include_url=False, include_input=False)[0]
    param = param_path(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and param:
        return InvalidRequestError(f"Unrecognized request argument supplied: {param}", param=param,
                                   code="unrecognized_argument")
    return InvalidRequestError(f"Invalid value for '{param}': {message}." if param else f"{message}.", param=param)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(exc) from None
