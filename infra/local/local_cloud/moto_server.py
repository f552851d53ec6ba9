"""moto's server, as the local cloud's AWS endpoint, with Lambda invocations routed to our sandboxes.

Without Docker moto's Lambda cannot run code; when the local cloud passes `--invoke-url`, every
invocation moto would make (the Invoke API, Step Functions' lambda:invoke tasks) is forwarded to the
local cloud, which runs the function's real handler in its warm sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import urllib.request
from typing import Any


def _route_invocations(invoke_url: str) -> None:
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke_locally(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        payload = event if isinstance(event, str | bytes) else json.dumps(event if event is not None else {})
        request = urllib.request.Request(  # noqa: S310 - a loopback URL the local cloud gave us
            f"{invoke_url}/functions/{self.function_name}/invoke",
            data=payload.encode() if isinstance(payload, str) else payload,
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=float(self.timeout) + 10) as response:  # noqa: S310
                return response.read().decode(), response.headers.get("x-amz-function-error") is not None, ""
        except urllib.error.HTTPError as exc:
            return exc.read().decode(), True, ""

    LambdaFunction._invoke_lambda = invoke_locally  # type: ignore[method-assign]
    # Without Docker moto uses its "simple" backend, whose Invoke echoes the event back without
    # calling the function at all; the full backend's Invoke resolves the function (and alias) and
    # calls `_invoke_lambda`, routed above.
    LambdaSimpleBackend.invoke = LambdaBackend.invoke  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--invoke-url", default=None)
    args = parser.parse_args()
    # moto's Step Functions interpreter calls Lambda (and the other services) through moto's own
    # HTTP endpoint on localhost:MOTO_PORT (default 5000): it must be this server.
    os.environ["MOTO_PORT"] = str(args.port)

    from moto.moto_api._internal.models import moto_api_backend
    from moto.server import ThreadedMotoServer

    from local_cloud.moto_dynamodb_cpu import fast_dynamodb
    from local_cloud.moto_patches import keep_alive_and_no_delay, no_sqs_push_to_lambda, serialize_dynamodb
    from local_cloud.moto_stepfunctions import (
        child_events_in_parent_history,
        enforce_tolerated_failures,
        one_step_functions_backend,
    )

    serialize_dynamodb()
    fast_dynamodb()
    keep_alive_and_no_delay()
    no_sqs_push_to_lambda()
    if args.invoke_url:
        _route_invocations(args.invoke_url)
    moto_api_backend.set_config(
        {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    )
    one_step_functions_backend()
    enforce_tolerated_failures()
    child_events_in_parent_history()
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    print(json.dumps({"ready": True, "port": args.port}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.2):  # timed: a signal delivered to a server thread must still wake this one
            pass
    server.stop()


if __name__ == "__main__":
    main()
