"""`python -m local_cloud.profile_api`: the api function's CPU per chat request, in-process, by part.

Builds the api handler (functions/api/handler.py) in this process against an in-process moto (the
tenants and usage tables as the integration tests' `tenants_table` fixture creates them, with the local
cloud's moto patches) and the project's LocalProvider, which runs in a child process so that this
process's CPU clock counts the gateway only. A tenant with rpm, tpm, concurrency and budget limits (as
`make bench` creates) sends chat completions through `lambda_handler` with a REST proxy event, so the
limits path (one conditional UpdateItem) and usage settlement (one TransactWriteItems) run each time.

Figures are CPU time (time.process_time), never wall time: the machine may be busy with others' work.
Each round sends `--requests` chat requests twice: once plain (the true total per request) and once
with meters around the parts below (exclusive: a part nested in another counts only in its own row):

  gateway       the handler minus what follows: its own code, split by stage;
  botocore      client-side CPU of the DynamoDB calls (validation, serialization, signing, parsing),
                per operation; moto's own CPU (the fake DynamoDB server) is shown apart and excluded;
  provider SDK  the openai SDK's call to the local provider (client options, request building, httpx,
                reading the answer), without the gateway's own request and answer models;
  logging/metrics  Powertools: log lines, metrics, and the handler decorators (context injection,
                correlation id, the metrics flush);
  garbage collection  by generation. With in-process moto its tables make nearly all of it (a full
                collection every few hundred requests): the handler total then leaves it out, as moto.

Medians over `--rounds`. `--moto-server` runs moto in a child process instead, reached over HTTP as
from a sandbox of the local cloud: botocore's figures then include its HTTP transport, and a cProfile
pass shows the gateway alone. `--profile` adds a cProfile pass (process_time clock) listing the hottest
functions; `--init-runs N` times import + init of functions/api/handler.py in N fresh processes (with
bytecode caches written: PYTHONDONTWRITEBYTECODE and stale caches make every run compile).
Not a test: run it before and after a change and compare (`--json FILE` keeps the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import functools
import gc
import importlib.util
import io
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CLOCK = time.process_time
CHAT_BODY = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello"}]})
PROVIDERS = ("deepseek", "openai", "anthropic")
# The parts of the report, in order; "gateway:*" rows are the gateway's own code by stage.
GROUPS = ("gateway", "botocore", "provider SDK", "logging/metrics", "garbage collection")
MOTO = "moto (fake DynamoDB server, excluded)"
INIT_PROBE = """
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", "functions/api/handler.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
ms = (time.perf_counter() - started) * 1000
print(json.dumps({"ms": ms, "modules": len(sys.modules)}))
"""


# --- the meters ----------------------------------------------------------------------------------


class Meter:
    """Exclusive CPU per category: time in a metered call nested inside another goes to the inner one."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[float] = []  # CPU of the metered children of each open metered call
        self._patches: list[tuple[Any, str, Any]] = []

    def timed(self, category: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        meter = self

        @functools.wraps(fn)
        def metered(*args: Any, **kwargs: Any) -> Any:
            name = category if isinstance(category, str) else category(*args, **kwargs)
            start = CLOCK()
            meter._stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = CLOCK() - start
                children = meter._stack.pop()
                meter.cpu[name] = meter.cpu.get(name, 0.0) + elapsed - children
                meter.calls[name] = meter.calls.get(name, 0) + 1
                if meter._stack:
                    meter._stack[-1] += elapsed

        return metered

    def patch(self, owner: Any, name: str, category: str | Callable[..., str]) -> None:
        """Meter `owner.name`: a module's function, or a class's method, classmethod or staticmethod (its own
        or inherited: the metered one is then set on `owner` and deleted again by `unpatch`)."""
        if isinstance(owner, type):
            own = name in owner.__dict__
            found = next(klass.__dict__[name] for klass in owner.__mro__ if name in klass.__dict__)
        else:
            own, found = True, getattr(owner, name)
        if isinstance(found, classmethod | staticmethod):
            wrapped: Any = type(found)(self.timed(category, found.__func__))
        else:
            wrapped = self.timed(category, found)
        self._patches.append((owner, name, found if own else None))
        setattr(owner, name, wrapped)

    def unpatch(self) -> None:
        for owner, name, original in reversed(self._patches):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._patches.clear()

    def reset(self) -> None:
        self.cpu.clear()
        self.calls.clear()

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        """Garbage collections, by generation: charged to their own row, not to the code they interrupted."""
        if phase == "start":
            self._gc_start = CLOCK()
            return
        elapsed = CLOCK() - self._gc_start
        name = f"garbage collection:gen {info['generation']}"
        self.cpu[name] = self.cpu.get(name, 0.0) + elapsed
        self.calls[name] = self.calls.get(name, 0) + 1
        if self._stack:
            self._stack[-1] += elapsed


def install_meters(meter: Meter, handler_module: Any, *, moto_in_process: bool) -> None:
    """The boundaries of each part. Names bound by `from x import y` are patched where they are used."""
    import botocore.client
    from aws_lambda_powertools import Logger, Metrics
    from deepseek_gateway import chat_service
    from deepseek_gateway.limits.service import LimitService
    from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
    from deepseek_gateway.providers.openai_compatible import OpenAICompatibleProvider
    from deepseek_gateway.routing.router import Router
    from deepseek_gateway.tenancy.directory import TenantDirectory
    from deepseek_gateway.web import routes_chat

    # Everything outside `resolve` is Powertools' decorators: logger context, metrics flush.
    meter.patch(handler_module, "resolve", "gateway:resolver, route, response")
    meter.patch(routes_chat, "read_json_body", "gateway:parse and validate")
    meter.patch(chat_service.ChatService, "parse", "gateway:parse and validate")
    meter.patch(chat_service, "policy_check", "gateway:tenant context and policy")
    meter.patch(TenantDirectory, "context", "gateway:tenant context and policy")
    meter.patch(chat_service, "inspect_request", "gateway:safety")
    meter.patch(chat_service, "inspect_response", "gateway:safety")
    meter.patch(LimitService, "admit", "gateway:limits and settlement")
    meter.patch(LimitService, "settle", "gateway:limits and settlement")
    meter.patch(Router, "complete", "gateway:router")
    meter.patch(ChatCompletionRequest, "to_upstream", "gateway:router")
    meter.patch(ChatCompletion, "model_validate", "gateway:router")
    meter.patch(OpenAICompatibleProvider, "complete", "provider SDK")
    meter.patch(botocore.client.BaseClient, "_make_api_call", lambda _client, op, _params: f"botocore:{op}")
    if moto_in_process:
        from moto.core.botocore_stubber import BotocoreStubber

        meter.patch(BotocoreStubber, "__call__", MOTO)
    for name in ("debug", "info", "warning", "error", "exception", "append_keys"):
        meter.patch(Logger, name, "logging/metrics:log lines")
    meter.patch(Metrics, "add_metric", "logging/metrics:metrics")


# --- the environment -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_provider() -> Iterator[str]:
    """The LocalProvider in a child process (its CPU is not the gateway's); yields its base URL."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this project's module
        [sys.executable, "-m", "local_cloud.provider", "--port", str(port), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("control"):
                break
        else:
            raise RuntimeError("the local provider did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def gateway_environment(provider_url: str) -> dict[str, str]:
    """As the deployed api function has it (Powertools at INFO, default caches and timeouts), pointed at
    the local provider; the tables as tests/integration/conftest.py names them."""
    from local_cloud.provider import BASE_PATHS

    env = {
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any
        "POWERTOOLS_SERVICE_NAME": "deepseek-gateway", "POWERTOOLS_METRICS_NAMESPACE": "DeepSeekGateway",
        "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "true",
        "TENANTS_TABLE_NAME": "tenants", "USAGE_TABLE_NAME": "usage",
        "USAGE_PLAN_KEYS": '{"default": "usage-plan-default-key-000000"}',
    }
    for name in PROVIDERS:
        env[f"{name.upper()}_BASE_URL"] = provider_url + BASE_PATHS[name]
        env[f"{name.upper()}_API_KEY"] = f"local-{name}-key"
    return env


def create_tables_and_tenant() -> dict[str, str]:
    """The tables (key schema as the template's), and a tenant with limits too high to be reached and a
    chat key, as `make bench` creates; returns the authorizer context API Gateway adds to each event."""
    import boto3
    from deepseek_gateway.auth.authenticator import context_of
    from deepseek_gateway.auth.principal import Principal
    from deepseek_gateway.tenancy.models import KeyCreate, Limits, TenantCreate
    from deepseek_gateway.tenancy.store import TenantStore

    from local_cloud.moto_resources import create_table

    client = boto3.client("dynamodb", region_name="us-east-1")
    for name in ("tenants", "usage"):
        create_table(client, name)
    store = TenantStore("tenants", client)
    limits = Limits(requests_per_minute=10**7, tokens_per_minute=10**9, concurrent_requests=10**4,
                    monthly_budget_usd=10**6)
    store.create_tenant(TenantCreate(tenant_id="bench", name="profile_api", limits=limits))
    created = store.create_key("bench", KeyCreate(name="bench", scopes=["chat"]))
    principal = Principal(tenant_id="bench", principal_id=created.key_id, kind="api_key",
                          scopes=frozenset({"chat"}), key_id=created.key_id)
    return {**context_of(principal), "principalId": created.key_id}


class LogSink(io.TextIOBase):
    """Where the handler's stdout (JSON log lines, EMF metrics) goes: /dev/null, counted."""

    def __init__(self) -> None:
        self._null = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        self.lines = 0
        self.bytes = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        self.bytes += len(text)
        return self._null.write(text)

    def flush(self) -> None:
        self._null.flush()

    def writable(self) -> bool:
        return True


def load_handler() -> Any:
    """functions/api/handler.py imported as Lambda imports it (as tests.helpers.load_handler does)."""
    spec = importlib.util.spec_from_file_location("lambda_functions.api.handler", ROOT / "functions/api/handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Client:
    """Chat requests through `lambda_handler`, with the sample REST proxy event and a Lambda context."""

    def __init__(self, handler: Any, authorizer: dict[str, str]) -> None:
        from local_cloud.worker import LambdaContext

        self.handler = handler
        self.event = json.loads((ROOT / "events" / "api_chat_completion.json").read_text())
        self.event["requestContext"]["authorizer"] = authorizer
        self.event["body"] = CHAT_BODY
        self.context = LambdaContext("api", "$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:api", 1024,
                                     "", "/aws/lambda/api", "local/profile", time.time() * 1000 + 3_600_000)

    def events(self, count: int) -> list[dict[str, Any]]:
        """Fresh events with their own request ids, built before the clock starts."""
        out = []
        for _ in range(count):
            event = copy.deepcopy(self.event)
            event["requestContext"]["requestId"] = str(uuid.uuid4())
            out.append(event)
        return out

    def send(self, events: list[dict[str, Any]], check: bool = False) -> float:
        """CPU seconds for these requests; with `check`, every answer must be a 200 with rate-limit headers."""
        context = self.context
        start = CLOCK()
        for event in events:
            context.aws_request_id = event["requestContext"]["requestId"]
            response = self.handler.lambda_handler(event, context)
            headers = {**(response.get("headers") or {}), **(response.get("multiValueHeaders") or {})}
            if check and (response["statusCode"] != 200 or "x-ratelimit-limit-requests" not in headers):
                raise RuntimeError(f"unexpected answer: {response['statusCode']} {response['body'][:300]}")
        return CLOCK() - start


# --- the measurement -----------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    real_stdout = sys.stdout
    sink = LogSink()
    # Before any gateway import: Powertools' log handler keeps the stream it finds when the Logger is built.
    sys.stdout = sink
    try:
        with local_provider() as provider_url:
            return _measure(args, provider_url, sink)
    finally:
        sys.stdout = real_stdout


@contextlib.contextmanager
def in_process_moto() -> Iterator[None]:
    """moto inside this process, as the integration tests' fixtures run it (its CPU is metered apart)."""
    from moto import mock_aws

    from local_cloud.moto_dynamodb_cpu import fast_dynamodb
    from local_cloud.moto_patches import serialize_dynamodb

    serialize_dynamodb()
    fast_dynamodb()
    with mock_aws():
        yield


@contextlib.contextmanager
def moto_server() -> Iterator[None]:
    """The local cloud's moto server in a child process: botocore then pays its HTTP transport, as in a
    sandbox of the local cloud, and this process's CPU is the gateway's alone."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this project's module
        [sys.executable, "-m", "local_cloud.moto_server", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        if '"ready"' not in process.stdout.readline():
            raise RuntimeError("moto's server did not start")
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _measure(args: argparse.Namespace, provider_url: str, sink: LogSink) -> dict[str, Any]:
    os.environ.update(gateway_environment(provider_url))
    for name in ("AWS_ENDPOINT_URL", "AWS_XRAY_DAEMON_ADDRESS", "BREAKER_TABLE_NAME", "AWS_PROFILE"):
        os.environ.pop(name, None)
    with moto_server() if args.moto_server else in_process_moto():
        authorizer = create_tables_and_tenant()
        client = Client(load_handler(), authorizer)
        client.send(client.events(args.warmup), check=True)  # builds services, imports the SDK
        return _rounds(args, client, sink)


def _rounds(args: argparse.Namespace, client: Client, sink: LogSink) -> dict[str, Any]:
    meter = Meter()
    n = args.requests
    plain, metered, gateway, parts = [], [], [], []
    calls: dict[str, int] = {}
    lines_before, bytes_before = sink.lines, sink.bytes
    for _ in range(args.rounds):
        plain.append(client.send(client.events(n), check=True) / n)
        install_meters(meter, client.handler, moto_in_process=not args.moto_server)
        meter.reset()
        gc.callbacks.append(meter.gc_callback)
        try:
            metered.append(client.send(client.events(n)) / n)
        finally:
            gc.callbacks.remove(meter.gc_callback)
            meter.unpatch()
        round_parts = {name: cpu / n for name, cpu in meter.cpu.items()}
        # What no meter covered inside the handler: Powertools' decorators around `resolve`.
        round_parts["logging/metrics:handler decorators"] = metered[-1] - sum(round_parts.values())
        parts.append(round_parts)
        # In-process moto's CPU swings by milliseconds between runs: subtract it within the same run, with the
        # garbage collections (its growing tables make nearly all of them, and the full ones costly).
        collected = sum(v for k, v in round_parts.items() if k.startswith("garbage collection:"))
        gateway.append(plain[-1] if args.moto_server else metered[-1] - round_parts.get(MOTO, 0.0) - collected)
        for name, count in meter.calls.items():
            calls[name] = calls.get(name, 0) + count
    log_lines = (sink.lines - lines_before) / (2 * n * args.rounds)
    log_bytes = (sink.bytes - bytes_before) / (2 * n * args.rounds)
    names = sorted({name for p in parts for name in p})
    median = {name: statistics.median(p.get(name, 0.0) for p in parts) for name in names}
    result = {
        "requests_per_round": n, "rounds": args.rounds,
        "moto_server": args.moto_server,
        "gateway_us": statistics.median(gateway) * 1e6,
        "gateway_us_min": min(gateway) * 1e6,
        "gateway_us_rounds": [round(x * 1e6) for x in gateway],
        "total_us": statistics.median(plain) * 1e6,
        "metered_total_us": statistics.median(metered) * 1e6,
        "parts_us": {name: round(value * 1e6, 1) for name, value in median.items()},
        "aws_calls_per_request": {name.split(":", 1)[1]: count / (n * args.rounds)
                                  for name, count in sorted(calls.items()) if name.startswith("botocore:")},
        "collections_per_request": {name.split(":", 1)[1]: count / (n * args.rounds)
                                    for name, count in sorted(calls.items()) if name.startswith("garbage collection:")},
        "log_lines_per_request": log_lines, "log_bytes_per_request": log_bytes,
    }
    if args.profile:
        result["profile"] = _profile(client, n, args.profile_lines, args.profile_out)
    return result


def _profile(client: Client, n: int, lines: int, path: str | None) -> str:
    events = client.events(n)
    profile = cProfile.Profile(CLOCK)
    profile.enable()
    client.send(events)
    profile.disable()
    if path:
        profile.dump_stats(path)
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return text.getvalue()


def init_times(runs: int) -> dict[str, Any]:
    """Import + init of functions/api/handler.py in fresh processes, as the cold-start test probes it."""
    env = {k: v for k, v in os.environ.items() if k not in {"AWS_XRAY_DAEMON_ADDRESS"}}
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", INIT_PROBE], cwd=ROOT, env=env, capture_output=True,  # noqa: S603
                             text=True, check=True, timeout=120).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {"median_ms": statistics.median(s["ms"] for s in samples), "samples_ms": [round(s["ms"]) for s in samples],
            "modules": samples[-1]["modules"]}


def report(result: dict[str, Any], out: Any) -> None:
    if "total_us" in result:
        parts = result["parts_us"]
        where = ("moto in a child process" if result["moto_server"]
                 else "in-process moto and the garbage collections excluded")
        print(f"api handler CPU per chat request (process_time; {where}; median of {result['rounds']} rounds of "
              f"{result['requests_per_round']}):", file=out)
        print(f"  {'handler total':<44}{result['gateway_us']:9.0f} µs   (least round {result['gateway_us_min']:.0f};"
              f" rounds {result['gateway_us_rounds']})", file=out)
        for group in GROUPS:
            rows = {name: value for name, value in parts.items() if name.split(":")[0] == group}
            print(f"  {group:<44}{sum(rows.values()):9.0f} µs", file=out)
            for name, value in sorted(rows.items(), key=lambda item: -item[1]):
                print(f"    {name.split(':', 1)[1] if ':' in name else '(call)':<42}{value:9.0f} µs", file=out)
        if MOTO in parts:
            print(f"  {MOTO:<44}{parts[MOTO]:9.0f} µs", file=out)
        print(f"  (the parts come from a run with meters on: {result['metered_total_us']:.0f} µs in all, moto "
              f"included; without meters {result['total_us']:.0f} µs)", file=out)
        calls = ", ".join(f"{op} {n:.3f}" for op, n in result["aws_calls_per_request"].items())
        print(f"  AWS calls per request: {calls}", file=out)
        collections = ", ".join(f"{gen} {n:.3f}" for gen, n in result["collections_per_request"].items())
        print(f"  garbage collections per request: {collections or 'none'}", file=out)
        print(f"  stdout per request: {result['log_lines_per_request']:.2f} lines, "
              f"{result['log_bytes_per_request']:.0f} bytes (log lines and EMF metrics)", file=out)
    if "init" in result:
        init = result["init"]
        print(f"handler import + init, fresh process: median {init['median_ms']:.0f} ms of {init['samples_ms']}, "
              f"{init['modules']} modules", file=out)
    if result.get("profile"):
        print(result["profile"], file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="chat requests per round (default 200)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds; figures are medians (default 10)")
    parser.add_argument("--moto-server", action="store_true",
                        help="moto in a child process, reached over HTTP as in the local cloud (default: in-process)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first (default 200)")
    parser.add_argument("--profile", action="store_true", help="add a cProfile pass and print the hottest functions")
    parser.add_argument("--profile-lines", type=int, default=40, help="functions listed per sort (default 40)")
    parser.add_argument("--profile-out", help="also write the cProfile stats to this file")
    parser.add_argument("--init-runs", type=int, default=0, help="also time handler init in N fresh processes")
    parser.add_argument("--no-requests", action="store_true", help="only the init timing")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {} if args.no_requests else measure(args)
    if args.init_runs:
        result["init"] = init_times(args.init_runs)
    report(result, sys.stdout)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
