"""Does the answer honour the requested `response_format`?

`json_object`: the content parses as a JSON object. `json_schema`: it also validates against the
schema, with the `jsonschema` package when it is installed (imported on first use; validators are
cached per schema). Without the package a schema is only checked for parseability and the reason
says so. The answer itself is never changed here: the caller decides (retry, pass on, flag).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from deepseek_gateway.models.chat import ChatCompletionRequest

MAX_REASON = 200


@lru_cache(maxsize=128)
def _validator(schema_json: str) -> Any:
    try:
        from jsonschema import validators  # noqa: PLC0415 - optional, heavy: imported on first schema
    except ImportError:
        return None
    schema = json.loads(schema_json)
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_json(content: str | None, request: ChatCompletionRequest) -> tuple[bool | None, str | None]:
    """(valid, reason): valid is None when the request asked for no JSON format."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None, None
    if content is None:
        return False, "the answer has no content"
    try:
        value = json.loads(content)
    except ValueError as exc:
        return False, f"not valid JSON: {exc}"[:MAX_REASON]
    except RecursionError:  # a provider's answer nested past Python's recursion limit
        return False, "the JSON nests too deep"
    if fmt.type == "json_object":
        return (True, None) if isinstance(value, dict) else (False, "the JSON is not an object")
    schema = fmt.json_schema.schema_ if fmt.type == "json_schema" else None
    if not schema:
        return True, None
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except Exception as exc:  # noqa: BLE001 - a broken schema is the client's, reported not raised
        return None, f"the schema itself is invalid: {type(exc).__name__}"
    if validator is None:
        return True, "parsed; schema not checked (jsonschema not installed)"
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return True, None
    return False, f"schema violation at {error.json_path}: {error.message}"[:MAX_REASON]
