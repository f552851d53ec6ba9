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

from deepseek_gateway.auth.authenticator import context_of
from deepseek_gateway.auth.principal import Principal

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


TEST_PRINCIPAL = Principal(tenant_id="tenant-a", principal_id="keyaaaaaaaaaaaaa", kind="api_key",
                           scopes=frozenset({"chat"}), key_id="keyaaaaaaaaaaaaa")
ADMIN_PRINCIPAL = Principal(tenant_id="operators", principal_id="keyadminadminadm", kind="api_key",
                            scopes=frozenset({"admin"}), key_id="keyadminadminadm")


def api_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw_body: str | None = None, principal: Principal | None = TEST_PRINCIPAL) -> dict[str, Any]:
    """A REST proxy event shaped like events/api_chat_completion.json, as the authorizer let it through.

    `principal=None` gives an event without authorizer context (what no deployed route sees).
    """
    event = copy.deepcopy(_sample("api_chat_completion.json"))
    if principal is not None:
        event["requestContext"]["authorizer"] = {**context_of(principal), "principalId": principal.principal_id}
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
