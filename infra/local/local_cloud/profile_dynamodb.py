"""`python -m local_cloud.profile_dynamodb`: moto's CPU per DynamoDB call on the chat hot path.

The api function makes two DynamoDB calls per chat request: the admitting conditional UpdateItem
(CounterStore.reserve) and the settling 4-item TransactWriteItems (LimitService.settle: counters,
usage record, tenant's and key's day totals). This builds exactly those requests with the
project's own code, sends them through a real boto3 client to an in-process moto server with the
local cloud's patches applied, and reports per operation:

  server  CPU µs of the moto thread serving the request (HTTP parsing, Flask, moto, response),
          as time.thread_time, so other processes on the machine do not count;
  client  CPU µs of the calling thread (botocore: validation, serialization, signing, parsing).

`--profile` then runs the same calls under cProfile (server and client side, per operation) and prints the
hottest functions (the figures above are measured without it, as CPU time: the machine may be busy
with others' work); `--patches locks` measures the local cloud's moto as it was before the CPU patches.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import socket
import statistics
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from local_cloud.moto_resources import create_table

TABLE = "usage"
OPS = ("UpdateItem", "TransactWriteItems")


class ServerMeter:
    """Thread CPU of moto's server: per request (by operation, optionally cProfiled), per connection, accept loop."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.profiles: dict[str, Any] = {}
        self.profiling = False
        self.clock = "wall"
        self.connections = 0  # connections that ended, with the requests they served
        self.connection_requests = 0
        self.connection_overhead = 0.0  # their CPU outside any request: set-up, thread, teardown
        self.accept_thread: threading.Thread | None = None
        self._accept_start = 0.0
        self._local = threading.local()

    def install(self) -> None:
        import socketserver

        from werkzeug.serving import WSGIRequestHandler

        meter = self
        original = getattr(WSGIRequestHandler.handle_one_request, "_original", WSGIRequestHandler.handle_one_request)
        original_thread = getattr(socketserver.ThreadingMixIn.process_request_thread, "_original",
                                  socketserver.ThreadingMixIn.process_request_thread)

        def handle_one_request(handler: Any) -> None:
            meter._local.op = None
            profile = None
            if meter.profiling:
                profile = cProfile.Profile(time.thread_time) if meter.clock == "cpu" else cProfile.Profile()
            start = time.thread_time()
            if profile is not None:
                profile.enable()
            try:
                original(handler)
            finally:
                if profile is not None:
                    profile.disable()
                used = time.thread_time() - start
                op = meter._local.op
                if op is not None:
                    meter.samples.setdefault(op, []).append(used)
                    meter._local.handled = getattr(meter._local, "handled", 0.0) + used
                    meter._local.requests = getattr(meter._local, "requests", 0) + 1
                    if profile is not None:
                        meter._merge(op, profile)

        def process_request_thread(server: Any, request: Any, client_address: Any) -> None:
            meter._local.handled, meter._local.requests = 0.0, 0
            start = time.thread_time()
            try:
                original_thread(server, request, client_address)
            finally:
                total = time.thread_time() - start
                if meter._local.requests:
                    meter.connections += 1
                    meter.connection_requests += meter._local.requests
                    meter.connection_overhead += total - meter._local.handled

        handle_one_request._original = original  # type: ignore[attr-defined]
        process_request_thread._original = original_thread  # type: ignore[attr-defined]
        WSGIRequestHandler.handle_one_request = handle_one_request  # type: ignore[method-assign]
        socketserver.ThreadingMixIn.process_request_thread = process_request_thread  # type: ignore[method-assign]

    def wrap_app(self, app: Any) -> Any:
        def metered(environ: dict[str, Any], start_response: Any) -> Any:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            self._local.op = target.rpartition(".")[2] or None
            return app(environ, start_response)

        return metered

    def _merge(self, op: str, profile: cProfile.Profile) -> None:
        stats = self.profiles.get(op)
        if stats is None:
            self.profiles[op] = pstats.Stats(profile)
        else:
            stats.add(profile)

    def accept_cpu(self) -> float:
        """CPU of the server's accept loop (the thread running serve_forever) so far."""
        if self.accept_thread is None or self.accept_thread.ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(self.accept_thread.ident))

    def reset(self) -> None:
        self.samples.clear()
        self.profiles.clear()
        self.connections = self.connection_requests = 0
        self.connection_overhead = 0.0
        self._accept_start = self.accept_cpu()

    def accept_since_reset(self) -> float:
        return self.accept_cpu() - self._accept_start


def start_server(meter: ServerMeter, *, patches: str, skip: tuple[str, ...] = ()) -> tuple[Any, int]:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from local_cloud import moto_dynamodb_cpu, moto_patches

    if patches != "none":
        moto_patches.serialize_dynamodb()
    if patches == "all":
        moto_dynamodb_cpu.fast_dynamodb(skip=skip)
    if patches == "all" and "keep_alive_and_no_delay" not in skip:
        moto_patches.keep_alive_and_no_delay()
    else:
        from werkzeug.serving import WSGIRequestHandler

        # What keep_alive_and_no_delay() did before it kept connections alive for real: werkzeug
        # still answered every request with `Connection: close`.
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        WSGIRequestHandler.disable_nagle_algorithm = True
    meter.install()
    original_call = DomainDispatcherApplication.__call__

    def call(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        return meter.wrap_app(lambda e, s: original_call(app, e, s))(environ, start_response)

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    meter.accept_thread = server._thread
    return server, port


def make_client(port: int, *, validation: bool = True) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
                        config=Config(parameter_validation=validation))


class HotPath:
    """The gateway's two calls per chat request, built by its own CounterStore, LimitService and UsageLedger."""

    def __init__(self, client: Any, *, key_limits: bool, table: str = TABLE) -> None:
        from deepseek_gateway.limits.counters import CounterStore, Window
        from deepseek_gateway.limits.service import LimitService
        from deepseek_gateway.limits.usage import UsageLedger
        from deepseek_gateway.tenancy.models import Limits

        self.client = client
        self.counters = CounterStore(table, client)
        self.ledger = UsageLedger(table, client)
        self.limits = LimitService(self.counters, self.ledger, client)
        self.tenant = Limits(requests_per_minute=10**9, tokens_per_minute=10**12, monthly_budget_usd=Decimal(10**9),
                             concurrent_requests=64)
        self.key = Limits(requests_per_minute=10**9, tokens_per_minute=10**12, concurrent_requests=64) \
            if key_limits else None
        now = time.time()
        # One fixed minute: the window rolls over once, in the warm-up, and never while measuring.
        self.window = Window(minute=int(now // 60), month=time.strftime("%Y-%m", time.gmtime(now)), now=now)
        self.pk = "LIMITS#T#tenant-profile"

    def admit(self) -> Any:
        from deepseek_gateway.limits.counters import Ask

        ask = Ask(f"req-{uuid.uuid4().hex}", 120, Decimal("0.00042"), int(self.window.now) + 120,
                  key_id="key-profile" if self.key is not None else None)
        self.counters.reserve(self.pk, self.tenant, self.key, ask, self.window)
        return ask

    def settle_items(self, ask: Any) -> list[dict[str, Any]]:
        from deepseek_gateway.limits.usage import UsageRecord

        record = UsageRecord(tenant_id="tenant-profile", key_id="key-profile", request_id=ask.request_id,
                             model="deepseek-chat", served_by="deepseek-chat", provider="deepseek",
                             prompt_tokens=12, completion_tokens=96, cost_usd=Decimal("0.00031"), latency_ms=180)
        items = [self.counters.settle_item(self.pk, ask, 108 - ask.tokens, record.cost_usd - ask.cost)]
        return items + self.ledger.items(record, 30)

    def settle(self, ask: Any) -> None:
        # As LimitService.settle, without its catch-all: a failed settlement must not go unnoticed here.
        self.client.transact_write_items(TransactItems=self.settle_items(ask))


def run(hot: HotPath, count: int, profiles: dict[str, Any] | None = None,
        clock: str = "wall") -> dict[str, list[float]]:
    """`count` chat requests' calls; the client thread's CPU per operation (cProfiled into `profiles` if given)."""
    client_cpu: dict[str, list[float]] = {op: [] for op in OPS}

    def timed(op: str, call: Any) -> Any:
        profile = None
        if profiles is not None:
            profile = cProfile.Profile(time.thread_time) if clock == "cpu" else cProfile.Profile()
            profile.enable()
        start = time.thread_time()
        try:
            return call()
        finally:
            client_cpu[op].append(time.thread_time() - start)
            if profile is not None and profiles is not None:
                profile.disable()
                if op in profiles:
                    profiles[op].add(profile)
                else:
                    profiles[op] = pstats.Stats(profile)

    for _ in range(count):
        ask = timed("UpdateItem", hot.admit)
        items = hot.settle_items(ask)
        timed("TransactWriteItems", lambda items=items: hot.client.transact_write_items(TransactItems=items))
    return client_cpu


def _us(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"{statistics.median(values) * 1e6:8.0f} {statistics.fmean(values) * 1e6:8.0f} {p90 * 1e6:8.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="chat requests measured (default 500)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--preload", type=int, default=2000,
                        help="usage records written first, as a busy table has (default 2000)")
    parser.add_argument("--key-limits", action="store_true", help="the key has limits of its own too")
    parser.add_argument("--patches", choices=("all", "locks", "none"), default="all",
                        help="all: the local cloud's moto (default); locks: only the item locks, as before the "
                             "CPU patches (the 'before' figures); none: moto as it is")
    parser.add_argument("--skip", action="append", default=[], metavar="PATCH",
                        help="with --patches all: leave out this patch (a name in moto_dynamodb_cpu.CPU_PATCHES, or "
                             "keep_alive_and_no_delay), to measure its share; repeatable")
    parser.add_argument("--no-client-validation", action="store_true",
                        help="the client with Config(parameter_validation=False), to measure what it saves")
    parser.add_argument("--profile", action="store_true", help="then cProfile both sides per operation")
    parser.add_argument("--top", type=int, default=30, help="functions shown per profile (default 30)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cProfile's timer: wall (default; cProfile's own overhead inflates it ~3x) or cpu "
                             "(thread CPU time, one system call per event: ~8x, skewed to small functions)")
    args = parser.parse_args()

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    meter = ServerMeter()
    server, port = start_server(meter, patches=args.patches, skip=tuple(args.skip))
    try:
        client = make_client(port, validation=not args.no_client_validation)
        create_table(client, TABLE, ttl_attribute="expires_at")  # the usage table's, as deployed
        hot = HotPath(client, key_limits=args.key_limits)
        run(hot, args.warmup)
        if args.preload:
            from deepseek_gateway.limits.counters import Ask

            for i in range(0, args.preload, 25):
                batch = []
                for _ in range(min(25, args.preload - i)):
                    ask = Ask(f"pre-{uuid.uuid4().hex}", 1, Decimal(0), 0)
                    batch.append(hot.settle_items(ask)[1])  # the usage record's Put
                client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": b["Put"]["Item"]}}
                                                              for b in batch]})
        meter.reset()
        client_cpu = run(hot, args.requests)
        accept = meter.accept_since_reset()
        calls = sum(len(v) for v in meter.samples.values()) or 1
        per_call = accept / calls + (meter.connection_overhead / meter.connection_requests
                                     if meter.connection_requests else 0.0)
        skipped = f" (without {', '.join(args.skip)})" if args.skip else ""
        print(f"moto, patches: {args.patches}{skipped}: {args.requests} chat requests, "
              f"{args.preload + args.warmup} usage records, key limits {'on' if args.key_limits else 'off'}")
        print(f"CPU µs per call                  {'median':>8} {'mean':>8} {'p90':>8}")
        for op in OPS:
            print(f"  server {op:<26}{_us(meter.samples.get(op, []))}")
        for op in OPS:
            print(f"  client {op:<26}{_us(client_cpu[op])}")
        print(f"  server accept loop, per call          {accept / calls * 1e6:8.0f}")
        if meter.connection_requests:
            print(f"  server connection set-up, per call    "
                  f"{meter.connection_overhead / meter.connection_requests * 1e6:8.0f}"
                  f"   ({meter.connections} connections ended, {meter.connection_requests} calls on them)")
        total = sum(statistics.fmean(meter.samples.get(op, [0])) for op in OPS) + 2 * per_call
        client = sum(statistics.fmean(client_cpu[op]) for op in OPS)
        print(f"per chat request: server {total * 1e3:.2f} ms CPU (at most {1 / total:.0f} req/s per core), "
              f"client {client * 1e3:.2f} ms")
        if args.profile:
            meter.reset()
            meter.profiling = True
            meter.clock = args.clock
            client_profiles: dict[str, Any] = {}
            run(hot, args.requests, client_profiles, args.clock)
            meter.profiling = False
            for side, profiles in (("server", meter.profiles), ("client", client_profiles)):
                for op in OPS:
                    stats = profiles.get(op)
                    if stats is None:
                        continue
                    out = io.StringIO()
                    stats.stream = out
                    stats.sort_stats(args.sort).print_stats(args.top)
                    print(f"\n===== {side}-side cProfile: {op} x {args.requests} =====")
                    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
