"""One Lambda sandbox: imports a function's handler once and serves invocations, one at a time.

Started by the local cloud as `python -m local_cloud.worker`, with the function's code directory
on PYTHONPATH (as Lambda puts LAMBDA_TASK_ROOT on the path) and exactly the environment the
deployed template gives the function. It listens on 127.0.0.1 for `POST /invoke` and answers like
the Lambda Invoke API: the handler's return value, or an error object with `errorType`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from Lambda's context object."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: float

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self.deadline_ms - time.time() * 1000), 0)


class _AwsCallCounter:
    """Counts the AWS API calls the handler makes, through botocore's `before-call` event.

    Registered on every botocore session created in this sandbox (boto3's default one and the
    ones Powertools creates), so the local cloud can report AWS calls per request.
    """

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def install(self) -> None:
        import botocore.session

        counter = self
        original_init = botocore.session.Session.__init__

        def init_and_count(session: Any, *args: Any, **kwargs: Any) -> None:
            original_init(session, *args, **kwargs)
            session.get_component("event_emitter").register("before-call", counter._count)

        botocore.session.Session.__init__ = init_and_count  # type: ignore[method-assign]

    def _count(self, model: Any, **_: Any) -> None:
        key = f"{model.service_model.service_name}.{model.name}"
        self.calls[key] = self.calls.get(key, 0) + 1


AWS_CALLS = _AwsCallCounter()


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Sandbox:
    def __init__(self, handler_path: str) -> None:
        started = time.perf_counter()  # Lambda's Init Duration: everything from here to a ready handler
        module_name, _, function_name = handler_path.rpartition(".")
        AWS_CALLS.install()
        self.invocations = 0
        self._one_at_a_time = threading.Lock()
        module = importlib.import_module(module_name)
        self.handler = getattr(module, function_name)
        self.init_ms = (time.perf_counter() - started) * 1000
        self.name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name)
        self.memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
        self.timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.arn = f"arn:aws:lambda:{region}:123456789012:function:{self.name}"

    def invoke(self, event: Any, request_id: str) -> tuple[int, dict[str, Any] | Any]:
        with self._one_at_a_time:
            return self._invoke(event, request_id)

    def _invoke(self, event: Any, request_id: str) -> tuple[int, dict[str, Any] | Any]:
        context = LambdaContext(
            function_name=self.name,
            function_version="$LATEST",
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name=f"local/{os.getpid()}",
            deadline_ms=time.time() * 1000 + self.timeout_s * 1000,
        )
        self.invocations += 1
        try:
            return 200, self.handler(event, context)
        except Exception as exc:  # the Lambda runtime reports any exception as a function error
            traceback.print_exc()
            return 500, {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }


def _make_handler(sandbox: _Sandbox) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms Nagle stall
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - GET /stats: what the benchmark reads
            times = os.times()
            stats = {
                "pid": os.getpid(),
                "init_ms": round(sandbox.init_ms, 1),
                "invocations": sandbox.invocations,
                "aws_calls": AWS_CALLS.calls,
                "rss_kb": _rss_kb(),
                "cpu_s": round(times.user + times.system, 3),
                "sys_modules": sorted(m for m in ("openai", "anthropic", "httpx", "boto3") if m in sys.modules),
            }
            body = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            event = json.loads(self.rfile.read(length) or b"null")
            request_id = self.headers.get("x-request-id") or str(uuid.uuid4())
            status, result = sandbox.invoke(event, request_id)
            body = json.dumps(result, default=str).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            if status != 200:
                self.send_header("x-amz-function-error", "Unhandled")
            self.end_headers()
            self.wfile.write(body)
            sys.stdout.flush()

        def log_message(self, *_: Any) -> None:  # the function's own logs are what matter
            return

    return InvokeHandler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handler", required=True, help="module.function, as in the template")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        sandbox = _Sandbox(args.handler)
    except Exception:
        # Lambda's Runtime.ImportModuleError: say so on stderr, exit non-zero; the local cloud reports it.
        traceback.print_exc()
        sys.exit(3)
    # Threads so that /stats answers beside the local cloud's kept-alive invoke connection; the
    # sandbox itself still runs one invocation at a time (see _Sandbox.invoke's lock).
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _make_handler(sandbox))
    server.daemon_threads = True
    print(json.dumps({"ready": True, "init_ms": round(sandbox.init_ms, 1)}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
