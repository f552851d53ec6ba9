"""The one place Powertools Logger, Metrics and Tracer are created; everything imports them.

The Tracer is created only where X-Ray runs (Lambda with active tracing sets AWS_XRAY_DAEMON_ADDRESS):
Powertools imports the X-Ray SDK when a Tracer is built, about 160 ms of init even with tracing
disabled, so elsewhere (the local cloud, tests) a pass-through stands in for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = "DeepSeekGateway"
SERVICE = "deepseek-gateway"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class _NoTracer:
    """Tracer's decorators, doing nothing: used where no X-Ray daemon listens."""

    def capture_lambda_handler(self, handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return handler if handler is not None else (lambda fn: fn)

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda fn: fn)


def _tracing_on() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true"}
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS")) and not disabled


def _make_tracer() -> Any:
    if not _tracing_on():
        return _NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


tracer = _make_tracer()
