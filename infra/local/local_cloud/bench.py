"""`python -m local_cloud.bench` (what `make bench` calls): speed and memory figures of the local gateway.

Starts the local cloud on free ports, then measures the gateway's added latency, throughput, CPU
per request, AWS calls per request, the api function's cold start and its memory over 10,000
requests; prints a table with each goal beside it (and `--json FILE`) and always stops the cloud.
Not a test: the figures depend on the machine, so run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[3]
READY_LINE = "is running locally"
CHAT_BODY = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello"}]}).encode()
DIRECT_AUTH = {"Authorization": "Bearer x"}
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# The api function's reads that refresh a per-sandbox cache on a timer (settings BREAKER_CACHE_TTL_S and
# TENANT_CACHE_TTL_S): their count per request falls as traffic grows, unlike the two writes of every request.
CACHE_REFRESHES = {
    "dynamodb.GetItem": "the providers' circuit-breaker state, read again after 2 s",
    "dynamodb.BatchGetItem": "the tenant and key, read again after 30 s",
}


class BenchError(RuntimeError):
    """The benchmark could not run: the local cloud did not start, or a request failed."""


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (all held until chosen, so they differ)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def http_json(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request with the standard library (no proxy from the environment); status and JSON answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, parts.path, None if body is None else json.dumps(body).encode(),
                     {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes from /proc/<pid>/stat (a process that is gone counts 0)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 in proc(5)
    return ticks * TICK_S


def child_pids(parent: int, marker: str) -> list[int]:
    """Children of `parent` whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == parent and \
                    marker in (entry / "cmdline").read_text():
                found.append(int(entry.name))
    return found


def load(url: str, count: int, clients: int, headers: dict[str, str], budget_s: float = 600,
         method: str = "POST", body: bytes | None = CHAT_BODY,
         on_ready: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """`count` requests (chat completions unless told otherwise) to `url` by `clients` threads, each on its
    own kept-alive connection, or fewer if `budget_s` runs out. Returns every request's latency (s) and the
    elapsed time; raises BenchError on any non-200 answer. `on_ready` runs once the connections are open
    and warm, just before the measured requests."""
    parts, sent, latencies, errors = urlsplit(url), itertools.count(), [], []
    all_headers = {"content-type": "application/json", **headers} if body is not None else dict(headers)

    def client(conn: http.client.HTTPConnection) -> None:
        mine = []
        try:
            while next(sent) < count and not errors and time.perf_counter() < deadline:
                started = time.perf_counter()
                conn.request(method, parts.path, body, all_headers)
                response = conn.getresponse()
                data = response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 200:
                    errors.append(f"{response.status}: {data[:300]!r}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
        finally:
            conn.close()
            latencies.extend(mine)

    # Connections open one at a time, each with an unmeasured request: set-up stays out of the figures,
    # and no burst of connects meets a small listen backlog (1 s SYN retransmits).
    connections = []
    for _ in range(clients):
        connections.append(http.client.HTTPConnection(parts.hostname, parts.port, timeout=60))
        connections[-1].request(method, parts.path, body, all_headers)
        connections[-1].getresponse().read()
    threads = [threading.Thread(target=client, args=(conn,)) for conn in connections]
    if on_ready is not None:
        on_ready()
    started = time.perf_counter()
    deadline = started + budget_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"{len(errors)} failed request(s) to {url}; first: {errors[0]}")
    return latencies, time.perf_counter() - started


class Cloud:
    """`python -m local_cloud` on free ports, in its own process group; `stop()` ends all of it."""

    def __init__(self, concurrency: int) -> None:
        self.port, self.aws_port, self.provider_port = free_ports(3)
        self.concurrency = concurrency
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.ready = threading.Event()

    def start(self, timeout_s: float = 180) -> dict[str, Any]:
        """Start it, wait for its ready line, and return its endpoints (endpoints.json's keys)."""
        command = [sys.executable, "-m", "local_cloud", "--port", str(self.port), "--aws-port", str(self.aws_port),
                   "--provider-port", str(self.provider_port), "--concurrency", str(self.concurrency)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        threading.Thread(target=self._read_output, daemon=True).start()
        self.ready.wait(timeout_s)
        if not any(READY_LINE in line for line in self.lines) or self.process.poll() is not None:
            tail = "\n".join(self.lines[-30:])
            raise BenchError(f"the local cloud did not start (waited up to {timeout_s:.0f} s):\n{tail}")
        # The state dir is shared: read endpoints.json only now, and only if it is still this cloud's.
        with contextlib.suppress(OSError, ValueError, KeyError):
            info = json.loads((ROOT / ".local-cloud" / "endpoints.json").read_text())
            if urlsplit(info["api_base_url"]).port == self.port:
                return info
        # Another local cloud rewrote it: the stats server is where our moto sends invocations.
        moto = child_pids(self.process.pid, "moto_server")
        argv = Path(f"/proc/{moto[0]}/cmdline").read_text().split("\0") if moto else []
        if "--invoke-url" not in argv:
            raise BenchError("endpoints.json belongs to another local cloud, and this one's moto was not found")
        region = next((ln.rsplit("region ", 1)[1].rstrip(")") for ln in self.lines if "(region " in ln), "us-east-1")
        return {"api_base_url": f"http://127.0.0.1:{self.port}/v1", "aws_endpoint_url": f"http://127.0.0.1:"
                f"{self.aws_port}", "region": region, "stats_url": argv[argv.index("--invoke-url") + 1] + "/stats"}

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:  # keep draining, so the cloud never blocks on a full pipe
            self.lines.append(line.rstrip())
            if READY_LINE in line:
                self.ready.set()
        self.ready.set()  # it exited: wake start()

    def stop(self) -> None:
        """SIGTERM to the cloud (it stops its sandboxes and moto), then SIGKILL whatever is left of its group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class Run:
    """One measured load: latency percentiles (ms), elapsed time, CPU seconds per process group, AWS calls."""

    requests: int
    clients: int
    latency_ms: dict[str, float]
    elapsed_s: float
    cpu_s: dict[str, float]
    aws_calls: dict[str, int]
    sandboxes: int  # of every function, during the run

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    def cpu_ms(self, group: str) -> float:
        return self.cpu_s[group] * 1000 / self.requests


class Bench:
    """The running local cloud, as the measurements see it."""

    def __init__(self, info: dict[str, Any], cloud: Cloud) -> None:
        self.info = info
        self.gateway_url = info["api_base_url"] + "/chat/completions"
        self.direct_url = f"http://127.0.0.1:{cloud.provider_port}/deepseek/v1/chat/completions"
        stats = self.stats()
        api = [name for name in stats["functions"] if "FunctionsApi" in name]  # the api function's physical name
        if not api:
            raise BenchError(f"no api function among {sorted(stats['functions'])}")
        self.api_name, self.main_pid = api[0], stats["main_pid"]
        self.moto_pids = child_pids(self.main_pid, "moto_server")
        pid = self.api_workers()[0]["pid"]  # a running api sandbox: its exact environment and directory
        raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
        self.api_env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        self.api_cwd = os.readlink(f"/proc/{pid}/cwd")
        self.key, self.authorizer_context = self._bench_key()
        self.auth = {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def _bench_key(self) -> tuple[str | None, dict[str, str] | None]:
        """A chat key of the bench's own tenant, written to the local tenants table as `dsg-admin bootstrap`
        writes its admin key; (None, None) when the template has no such table. The tenant has limits
        (so the hot path checks them, as for a real tenant), too high to be reached."""
        table = self.api_env.get("TENANTS_TABLE_NAME")
        if not table:
            return None, None
        import boto3
        from deepseek_gateway.auth.authenticator import context_of
        from deepseek_gateway.auth.principal import Principal
        from deepseek_gateway.tenancy.models import KeyCreate, Limits, TenantCreate
        from deepseek_gateway.tenancy.store import TenantStore

        store = TenantStore(table, boto3.client(  # moto accepts any credentials
            "dynamodb", endpoint_url=self.info["aws_endpoint_url"], region_name=self.info["region"],
            aws_access_key_id="local", aws_secret_access_key="local"))  # noqa: S106
        limits = Limits(requests_per_minute=10**7, tokens_per_minute=10**9, concurrent_requests=10**4,
                        monthly_budget_usd=10**6)
        store.create_tenant(TenantCreate(tenant_id="bench", name="make bench", limits=limits))
        created = store.create_key("bench", KeyCreate(name="bench", scopes=["chat"]))
        principal = Principal(tenant_id="bench", principal_id=created.key_id, kind="api_key",
                              scopes=frozenset({"chat"}), key_id=created.key_id)
        return created.key, {**context_of(principal), "principalId": created.key_id}

    def stats(self) -> dict[str, Any]:
        return http_json("GET", self.info["stats_url"])[1]

    def api_workers(self) -> list[dict[str, Any]]:
        return self.stats()["functions"].get(self.api_name, [])

    @staticmethod
    def aws_calls(stats: dict[str, Any]) -> dict[str, int]:
        """Every sandbox's AWS calls by operation (all functions: the authorizer is on the hot path too)."""
        calls: dict[str, int] = {}
        for worker in itertools.chain.from_iterable(stats["functions"].values()):
            for op, count in worker["aws_calls"].items():
                calls[op] = calls.get(op, 0) + count
        return calls

    def measure(self, url: str, count: int, clients: int, headers: dict[str, str], budget_s: float,
                method: str = "POST", body: bytes | None = CHAT_BODY) -> Run:
        """A load, with CPU (read from /proc, outside any stats call) and AWS-call deltas around its measured
        requests (the connections' warm-up requests are outside both)."""
        snapshot: dict[str, Any] = {}

        def ready() -> None:
            snapshot["stats"] = before = self.stats()
            workers = [w["pid"] for w in itertools.chain.from_iterable(before["functions"].values())]
            snapshot["groups"] = groups = {"main": [self.main_pid], "workers": workers, "moto": self.moto_pids}
            snapshot["cpu"] = {name: cpu_seconds(pids) for name, pids in groups.items()}
            snapshot["client"] = sum(os.times()[:2])

        latencies, elapsed = load(url, count, clients, headers, budget_s, method, body, on_ready=ready)
        before, groups, workers = snapshot["stats"], snapshot["groups"], snapshot["groups"]["workers"]
        cpu = {name: cpu_seconds(pids) - snapshot["cpu"][name] for name, pids in groups.items()}
        cpu["client"] = sum(os.times()[:2]) - snapshot["client"]
        calls_before, calls_after = self.aws_calls(before), self.aws_calls(self.stats())
        calls = {op: n - calls_before.get(op, 0) for op, n in calls_after.items() if n > calls_before.get(op, 0)}
        if len(latencies) < 2:
            raise BenchError(f"only {len(latencies)} request(s) to {url} within {budget_s:.0f} s")
        cuts = [q * 1000 for q in statistics.quantiles(latencies, n=100, method="inclusive")]
        return Run(len(latencies), clients, {"p50": cuts[49], "p99": cuts[98]}, elapsed, cpu, calls, len(workers))

    def floor(self, count: int, clients: int, budget_s: float) -> dict[str, Any]:
        """What the machinery costs with (almost) nothing of the gateway's own work: GET /v1/models through
        API Gateway and a sandbox (no AWS call, no provider), and the chat path's two DynamoDB calls sent
        straight to moto by one boto3 client, as the api function builds them. A goal below their sum
        cannot be met by the gateway's code, however fast."""
        models = self.info["api_base_url"] + "/models"
        load(models, 50, 1, self.auth, budget_s, "GET", None)
        out: dict[str, Any] = {
            "models_c1": self.measure(models, count, 1, self.auth, budget_s, "GET", None),
            "models_cN": self.measure(models, count * 4, clients, self.auth, budget_s, "GET", None),
        }
        table = self.api_env.get("USAGE_TABLE_NAME")
        if table:
            out["dynamodb_pair"] = self._dynamodb_pair(table, count)
        return out

    def _dynamodb_pair(self, table: str, count: int) -> dict[str, float]:
        """The admitting UpdateItem and the settling TransactWriteItems, sequentially: wall time per pair
        and moto's CPU per pair (one process: its ceiling is 1,000 ms / that, whatever calls it)."""
        import boto3
        from botocore.config import Config

        from local_cloud.profile_dynamodb import HotPath

        client = boto3.client("dynamodb", endpoint_url=self.info["aws_endpoint_url"], region_name=self.info["region"],
                              aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106
                              config=Config(parameter_validation=False))  # as the api function's client
        hot = HotPath(client, key_limits=False, table=table)
        for _ in range(50):
            hot.settle(hot.admit())
        moto_before, client_before = cpu_seconds(self.moto_pids), time.process_time()
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            hot.settle(hot.admit())
            latencies.append(time.perf_counter() - started)
        moto_ms = (cpu_seconds(self.moto_pids) - moto_before) * 1000 / count
        return {"p50_ms": statistics.median(latencies) * 1000, "moto_cpu_ms": moto_ms,
                "client_cpu_ms": (time.process_time() - client_before) * 1000 / count, "pairs": count}

    def top_up(self, target: int, clients: int, budget_s: float) -> None:
        """Gateway requests until the api function has served `target` invocations in all, or `budget_s`
        has passed (the memory rows name the count reached)."""
        missing = target - sum(w["invocations"] for w in self.api_workers())
        if missing > 0:
            load(self.gateway_url, missing, clients, self.auth, budget_s)

    def memory(self) -> dict[str, Any]:
        workers = self.api_workers()
        return {"invocations": sum(w["invocations"] for w in workers), "rss_kb": sum(w["rss_kb"] for w in workers),
                "workers": {str(w["pid"]): w["rss_kb"] for w in workers}}

    def cold_start(self, runs: int) -> dict[str, Any]:
        """Fresh api sandboxes started as the local cloud starts them (environment and directory of a
        running one); the event carries the authorizer context API Gateway adds. Medians of `runs`."""
        event = json.loads((ROOT / "events" / "api_chat_completion.json").read_text())
        if self.authorizer_context:
            event["requestContext"]["authorizer"] = self.authorizer_context
        samples = [self._one_cold_start(event) for _ in range(runs)]
        summary: dict[str, Any] = {key: statistics.median(s[key] for s in samples) for key in samples[0]
                                   if isinstance(samples[0][key], float | int)}
        summary["sdk_before"] = sorted({m for s in samples for m in s["modules_before"]} & {"openai", "anthropic"})
        return {**summary, "samples": samples}

    def _one_cold_start(self, event: Any) -> dict[str, Any]:
        port = free_ports(1)[0]
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "local_cloud.worker", "--port", str(port),
                   "--handler", self.api_env.get("_HANDLER", "handler.lambda_handler")]
        with tempfile.TemporaryFile() as log:
            started = time.perf_counter()
            worker = subprocess.Popen(command, cwd=self.api_cwd, env=self.api_env,  # noqa: S603
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while worker.poll() is None:
                    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                        break
                    time.sleep(0.002)
                else:
                    log.seek(0)
                    raise BenchError(f"a fresh api sandbox exited:\n{log.read()[-2000:].decode(errors='replace')}")
                ready = time.perf_counter()
                before = http_json("GET", base + "/stats")[1]
                invoked = time.perf_counter()
                status, answer = http_json("POST", base + "/invoke", event)
                answered = time.perf_counter()
                if status != 200 or answer.get("statusCode") != 200:
                    raise BenchError(f"a fresh api sandbox's first answer: {status} {str(answer)[:300]}")
                after = http_json("GET", base + "/stats")[1]
                again = time.perf_counter()
                http_json("POST", base + "/invoke", event)
                second = time.perf_counter()
            finally:
                worker.kill()
                worker.wait()
        return {"init_ms": before["init_ms"], "ready_ms": (ready - started) * 1000,
                "first_answer_ms": (answered - started) * 1000, "first_invoke_ms": (answered - invoked) * 1000,
                "second_invoke_ms": (second - again) * 1000, "modules_before": before["sys_modules"],
                "modules_after": after["sys_modules"], "aws_calls": after["aws_calls"]}


def run(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Every measurement, in an order that also builds up the request counts the memory rows need."""
    cloud = Cloud(args.concurrency)
    try:
        started = time.perf_counter()
        bench = Bench(cloud.start(), cloud)
        results["startup_s"] = round(time.perf_counter() - started, 1)
        results["usage_table"] = bool(bench.api_env.get("USAGE_TABLE_NAME"))

        def step(label: str) -> None:
            print(f"  {time.perf_counter() - started:6.1f} s  {label}", flush=True)

        step("local cloud up; cold starts")
        results["cold_start"] = bench.cold_start(args.cold_starts)
        step("concurrency 1")
        load(bench.gateway_url, 50, 1, bench.auth)
        load(bench.direct_url, 50, 1, DIRECT_AUTH)
        budget = args.phase_budget
        results["c1"] = {"gateway": bench.measure(bench.gateway_url, args.sequential, 1, bench.auth, budget),
                         "direct": bench.measure(bench.direct_url, args.sequential, 1, DIRECT_AUTH, budget)}
        step(f"concurrency {args.clients}")
        bench.top_up(1000, args.clients, budget)  # also warms every sandbox the pool grows to
        load(bench.direct_url, 200, args.clients, DIRECT_AUTH)
        results["memory_1k"] = bench.memory()
        results["cN"] = {"gateway": bench.measure(bench.gateway_url, args.requests, args.clients, bench.auth, budget),
                         "direct": bench.measure(bench.direct_url, args.requests, args.clients, DIRECT_AUTH, budget)}
        step("floor: GET /v1/models, the two DynamoDB calls alone")
        results["floor"] = bench.floor(args.sequential, args.clients, budget)
        step(f"up to {args.memory_requests:,} requests")
        bench.top_up(args.memory_requests, args.clients, args.memory_budget)
        results["memory_10k"] = bench.memory()
        step("done")
    finally:
        cloud.stop()


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, result, goal, verdict) for the table."""
    out: list[tuple[str, str, str, str]] = []

    def row(label: str, result: str, goal: str = "", ok: bool | None = None) -> None:
        out.append((label, result, goal, "" if ok is None else "ok" if ok else "MISSED"))

    for key in ("c1", "cN"):
        gw, direct = results[key]["gateway"], results[key]["direct"]
        for p in ("p50", "p99"):
            added = gw.latency_ms[p] - direct.latency_ms[p]
            goal = "< 3 ms" if key == "c1" and p == "p50" else ""
            row(f"added latency {p}, c={gw.clients}", f"{added:.2f} ms  (gateway {gw.latency_ms[p]:.2f}, direct "
                f"{direct.latency_ms[p]:.2f}; {gw.requests} req)", goal, added < 3 if goal else None)
    gw, direct = results["cN"]["gateway"], results["cN"]["direct"]
    row(f"throughput, c={gw.clients}", f"{gw.rate:.0f} req/s  (direct {direct.rate:.0f} req/s)", "≥ 500 req/s",
        gw.rate >= 500)
    for key in ("c1", "cN"):
        gw, direct = results[key]["gateway"], results[key]["direct"]
        total, provider = gw.cpu_ms("main") + gw.cpu_ms("workers"), direct.cpu_ms("main")
        row(f"gateway CPU per request, c={gw.clients} *", f"{total - provider:.2f} ms  (main+sandboxes {total:.2f} "
            f"− provider {provider:.2f}; sandboxes alone {gw.cpu_ms('workers'):.2f})")
        row(f"  moto / bench client CPU per req, c={gw.clients}",
            f"{gw.cpu_ms('moto'):.2f} ms / {gw.cpu_ms('client'):.2f} ms")
    runs = [results[key]["gateway"] for key in ("c1", "cN")]
    count, sandbox_s, calls = sum(r.requests for r in runs), sum(r.elapsed_s * r.sandboxes for r in runs), {}
    for op, n in itertools.chain.from_iterable(r.aws_calls.items() for r in runs):
        calls[op] = calls.get(op, 0) + n
    total_calls = sum(calls.values())
    refreshed = sum(n for op, n in calls.items() if op in CACHE_REFRESHES)
    most = 2 if results["usage_table"] else 0  # 0 until limits and usage exist, 2 after
    row("AWS calls per chat request", f"{total_calls / count:.3f}  ({total_calls} in {count} req; "
        f"{refreshed / count:.3f} of them cache refreshes that come with time, not with requests)")
    row("  made by every request", f"{(total_calls - refreshed) / count:.3f}",
        "≤ 2 (usage on)" if most else "0 (no usage yet)", (total_calls - refreshed) / count <= most)
    for op, n in sorted(calls.items(), key=lambda item: -item[1]):
        what = f"; {CACHE_REFRESHES[op]}" if op in CACHE_REFRESHES else ""
        row(f"  {op}", f"{n / count:.3f} per req, {n / sandbox_s:.2f} per sandbox-second{what}")
    floor = results.get("floor")
    if floor:
        one, many, pair = floor["models_c1"], floor["models_cN"], floor.get("dynamodb_pair")
        row("floor: GET /v1/models, c=1 ‡", f"{one.latency_ms['p50']:.2f} ms p50  (main+sandboxes CPU "
            f"{one.cpu_ms('main') + one.cpu_ms('workers'):.2f} ms/req; AWS calls {sum(one.aws_calls.values())})")
        row(f"floor: GET /v1/models, c={many.clients}", f"{many.rate:.0f} req/s  (p50 {many.latency_ms['p50']:.2f} ms)")
        if pair:
            row("floor: the 2 DynamoDB calls alone, c=1", f"{pair['p50_ms']:.2f} ms p50 per pair  (moto CPU "
                f"{pair['moto_cpu_ms']:.2f} ms, boto3 client {pair['client_cpu_ms']:.2f} ms)")
            row("  moto's ceiling (one process)", f"{1000 / pair['moto_cpu_ms']:.0f} pairs/s")
            least = one.latency_ms["p50"] + pair["p50_ms"]
            row("  floor of added latency, c=1", f"{least:.2f} ms  (models p50 + pair p50: with no gateway logic, "
                "no provider SDK)", "< 3 ms", least < 3)
            cpu = one.cpu_ms("main") + one.cpu_ms("workers") + pair["moto_cpu_ms"] + pair["client_cpu_ms"]
            cores = results["machine"]["nproc"]
            row(f"  floor of throughput, {cores} cores", f"{cores * 1000 / cpu:.0f} req/s  ({cpu:.2f} ms CPU per "
                "request: models' machinery + the pair's moto and client)", "≥ 500 req/s", cores * 1000 / cpu >= 500)
    cold = results["cold_start"]
    last = cold["samples"][-1]
    row(f"cold start: handler init, median of {len(cold['samples'])} †", f"{cold['init_ms']:.0f} ms", "< 300 ms",
        cold["init_ms"] < 300)
    row("  process start → ready", f"{cold['ready_ms']:.0f} ms")
    row("  process start → 1st answer", f"{cold['first_answer_ms']:.0f} ms  (1st invoke {cold['first_invoke_ms']:.0f}"
        f" ms, 2nd {cold['second_invoke_ms']:.1f} ms)")
    row("provider SDK imported before 1st request", ", ".join(cold["sdk_before"]) or "none", "none",
        not cold["sdk_before"])
    row("  modules after 1st request", ", ".join(last["modules_after"]))
    row("  AWS calls of the 1st request", ", ".join(f"{op} {n}" for op, n in last["aws_calls"].items()) or "none")
    small, big = results["memory_1k"], results["memory_10k"]
    for mem in (small, big):
        per = ", ".join(f"{kb / 1024:.1f}" for kb in mem["workers"].values())
        row(f"api sandboxes RSS after {mem['invocations']:,} req", f"{mem['rss_kb'] / 1024:.1f} MB  (each: {per})")
    worst = max((kb - small["workers"][pid] for pid, kb in big["workers"].items() if pid in small["workers"]),
                default=0) / 1024
    row("  growth", f"{(big['rss_kb'] - small['rss_kb']) / 1024:+.1f} MB  (worst sandbox {worst:+.1f} MB)",
        "flat (< 2 MB each)", worst < 2)
    return out


def print_table(table: list[tuple[str, str, str, str]]) -> None:
    lines = [("measurement", "result", "goal", ""), *table]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    lines.insert(1, tuple("-" * width for width in widths))
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.bench", description=__doc__)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--concurrency", type=int, default=4, help="most sandboxes per function (default 4)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--sequential", type=int, default=500, help="requests at concurrency 1 (default 500)")
    parser.add_argument("--requests", type=int, default=2000, help="requests at --clients (default 2000)")
    parser.add_argument("--memory-requests", type=int, default=10000, help="requests before the last RSS reading")
    parser.add_argument("--memory-budget", type=float, default=35, help="most seconds to reach them (default 35)")
    parser.add_argument("--phase-budget", type=float, default=15,
                        help="most seconds per measured load; fewer requests if it runs out (default 15)")
    parser.add_argument("--cold-starts", type=int, default=3, help="fresh api sandboxes to time (default 3)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through run(), which stops the cloud
    machine = {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "platform": platform.platform(), "loadavg_at_start": os.getloadavg()}
    print(f"machine: nproc {machine['nproc']}, Python {machine['python']}, {machine['platform']}, load average "
          f"at start {' '.join(f'{x:.2f}' for x in machine['loadavg_at_start'])}", flush=True)
    results: dict[str, Any] = {"machine": machine}
    try:
        run(args, results)
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the local cloud was stopped", file=sys.stderr)
        return 130
    print()
    print_table(rows(results))
    print("\n* CPU of the local cloud's main process (API Gateway emulator, invoke server, SQS pollers and the local"
          "\n  provider, a thread of it) plus every function sandbox, per request, minus the main process's CPU per"
          "\n  request when the same load goes straight to the provider (the provider's share). moto is apart."
          "\n  The bench client, the servers and moto share this machine's CPUs."
          "\n‡ floor rows: the same machinery doing (almost) nothing of the gateway's own: GET /v1/models makes no"
          "\n  AWS call and calls no provider; the DynamoDB pair is the chat path's two calls from one boto3 client."
          "\n† the sandbox's init_ms: its timer starts after it imports botocore.session (for its AWS call counter);"
          "\n  the handler imports boto3 anyway, so Lambda's Init Duration would include that too.")
    if args.json:
        def as_json(value: Any) -> Any:
            if isinstance(value, Run):
                return {**asdict(value), "rate": value.rate}
            raise TypeError(f"{type(value).__name__} is not JSON")

        args.json.write_text(json.dumps(results, indent=2, default=as_json))
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
