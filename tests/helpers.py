"""Shared test helpers: loading a function's handler by path, building API Gateway events."""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/handler.py as Lambda would, without touching sys.path."""
    path = ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"lambda_functions.{function}.handler", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


def api_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw_body: str | None = None) -> dict[str, Any]:
    """A REST proxy event shaped like events/api_chat_completion.json."""
    event = copy.deepcopy(_sample("api_chat_completion.json"))
    event["httpMethod"] = method
    event["path"] = path
    event["resource"] = path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    event["body"] = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    return event


@dataclass
class FakeLambdaContext:
    function_name: str = "api"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:api:live"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000
