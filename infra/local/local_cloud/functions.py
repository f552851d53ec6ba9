"""Warm pools of Lambda sandboxes (worker processes), one pool per function in the template."""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_cloud.errors import LocalCloudError


class FunctionStartError(LocalCloudError):
    """A function's handler could not start (import error, missing code); names the function."""


class InvocationError(RuntimeError):
    """The handler raised: the Lambda Invoke API's `FunctionError: Unhandled`."""

    def __init__(self, function: str, payload: dict[str, Any]) -> None:
        super().__init__(f"{function}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload


@dataclass
class FunctionSpec:
    """What the template says about a function, resolved for this machine."""

    logical_id: str
    name: str  # the physical name
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_s: int
    memory_mb: int
    aliases: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Worker:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], log_path: Path) -> None:
        self.spec = spec
        self.port = free_port()
        env = {**base_env, **spec.environment}
        env.update(
            {
                "PYTHONPATH": str(spec.code_dir),
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
            }
        )
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local_cloud.worker", "--handler", spec.handler, "--port", str(self.port)],
            cwd=spec.code_dir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._conn: http.client.HTTPConnection | None = None

    def wait_ready(self, deadline: float, log_path: Path) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise FunctionStartError(f"function {self.spec.logical_id} failed to start:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise FunctionStartError(f"function {self.spec.logical_id} did not start in time")

    def invoke(self, event: Any, request_id: str) -> tuple[int, bytes]:
        body = json.dumps(event).encode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.spec.timeout_s + 5)
            try:
                self._conn.request("POST", "/invoke", body, {"content-type": "application/json",
                                                            "x-request-id": request_id})
                response = self._conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                self._conn.close()
                self._conn = None
                if attempt == 2 or self.process.poll() is not None:
                    raise
        raise AssertionError("unreachable")

    def stats(self) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/stats")
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


class FunctionPool:
    """Up to `size` warm sandboxes of one function; an invocation takes an idle one, as Lambda does."""

    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], log_dir: Path, size: int) -> None:
        self.spec = spec
        self._log_path = log_dir / f"{spec.logical_id}.log"
        self._base_env = base_env
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._size = size
        self._lock = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self._log_path

    def start(self, warm: int = 1, timeout_s: float = 30.0) -> None:
        workers = [self._spawn() for _ in range(max(warm, 1))]
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.wait_ready(deadline, self._log_path)
            self._idle.put(worker)

    def _spawn(self) -> _Worker:
        worker = _Worker(self.spec, self._base_env, self._log_path)
        self._workers.append(worker)
        return worker

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = len(self._workers) < self._size
            worker = self._spawn() if grow else None
        if worker is not None:  # a new sandbox: a cold start, as Lambda scales out
            worker.wait_ready(time.monotonic() + 30, self._log_path)
            return worker
        return self._idle.get()

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """The handler's result; raises InvocationError when the handler raised."""
        request_id = request_id or str(uuid.uuid4())
        worker = self._acquire()
        try:
            status, body = worker.invoke(event, request_id)
        finally:
            self._idle.put(worker)
        payload = json.loads(body or b"null")
        if status != 200:
            raise InvocationError(self.spec.logical_id, payload)
        return payload

    def stats(self) -> list[dict[str, Any]]:
        """Per sandbox: pid, init time, invocations, AWS calls made, resident memory, CPU seconds."""
        return [worker.stats() for worker in list(self._workers) if worker.process.poll() is None]

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()


def base_environment(aws_endpoint: str, region: str) -> dict[str, str]:
    """What the Lambda runtime gives every function, pointed at the local cloud instead of AWS."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV"}}
    return {
        **keep,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "PYTHONUNBUFFERED": "1",
    }
