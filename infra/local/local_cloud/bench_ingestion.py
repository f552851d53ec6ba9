"""`python -m local_cloud.bench_ingestion`: does a batch input file at the limits fit the ingestion function?

The ingestion function (60 s timeout, 2,048 MB, infra/cdk) validates a whole batch input file before
the workflow starts. For each file shape (`--shapes`; SHAPES below: 200 MB of 4 KB lines, 200 MB of
64 KiB lines, 50,000 small lines, 200 MB of lines with an emoji or with 40 messages, 25,000 invalid
lines), a child process of its own builds the file, stores it as a finished `POST /v1/files/uploads`
would (file record, object in the uploads bucket), creates the batch and hands the real ingestion handler
(functions/ingestion/handler.py, with the parts ingestion_runtime builds from the environment, the
production limits of settings.py, Powertools idempotency on) its `batch.submitted` SQS record. The cloud
(tables, buckets, queues, state machine) is made as tests/integration/test_ingestion.py's `cloud` fixture
makes it. Then the child checks the outcome (batch `in_progress`, every line counted, every invalid one
with its error result, the workflow started with every chunk written) and takes a digest of the chunks,
the execution's chunk list and the error results, to compare runs before and after a change (`--json`).

Printed per shape: file MB, lines, chunks written, the handler's wall and CPU seconds, its AWS calls,
peak RSS, and a verdict against the function's 60 s and 2,048 MB and the margin it should keep (40 s,
1,400 MB): `fits`, `tight` (over the margin) or `DOES NOT FIT`.

Memory: `peak MB` is the child's ru_maxrss, its peak reset (/proc/self/clear_refs) once the file is in
moto, so building the file does not count. It is the whole process (interpreter, boto3, pydantic, the
catalogue, the handler), as Lambda's "Max Memory Used" counts the whole sandbox; `ingestion MB` is the
peak minus the RSS just before the handler ran.

moto: `--moto in-process` (default) runs `moto.mock_aws` in the child, as the integration tests do, with
the DynamoDB patches tests/integration/conftest.py applies. The child's figures then include moto's part:
the RSS before the handler holds moto (~80 MB: its modules and state); during the GET moto materialises
the whole object (`moto GET MB`, measured after the run by reading the object in 1 MiB pieces: a lower
bound, as freed memory is reused); it keeps every chunk object in memory (`moto holds MB`: each is below
its 5 MiB spool size), and its CPU counts in `CPU s`. `--moto server` runs the local cloud's moto server (not the
local cloud) as a process of its own, the child pointed at it by AWS_ENDPOINT_URL: the child's RSS and
CPU are then the function's alone, the object streams over HTTP as from S3, and `moto MB` and
`moto CPU s` are the server's.

Time: moto answers in about a millisecond; from Lambda, S3 and DynamoDB take ~10-30 ms a call and S3
reads ~50-100 MB/s. `+AWS s` adds an assumed latency per call (`--s3-ms`, `--dynamodb-ms`) divided by
how many calls of that operation the handler had in flight at once (measured), and the file's transfer
(`--s3-mb-per-s`): an estimate, not a measurement. The verdict uses `seconds + AWS s`. Lambda's 2,048 MB
get about 1.2 vCPU; the handler is one Python thread on one core of this machine, whose speed is not
Lambda's. Not a test: the figures depend on the machine, so run it on an otherwise idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
UPLOADS, RESULTS = "gateway-uploads", "gateway-results"
MACHINE = "batch-workflow"
TENANT = "acme"
ENDPOINT = "/v1/chat/completions"
MB = 1024 * 1024
TIMEOUT_S, MEMORY_MB = 60, 2048  # the ingestion function's (infra/cdk: QUEUE_CONSUMER_TIMEOUTS, ingestion_spec)
SAFE_S, SAFE_MB = 40, 1400  # what it should stay under
MAX_FILE_BYTES, MAX_LINES, MAX_LINE_BYTES = 200 * MB, 50_000, 64 * 1024  # settings.py's defaults
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
CORPUS = ("Summarise the quarterly notes below in one sentence and list the three risks they name. "
          "Revenue grew in the north while the south lagged; hiring paused, and the audit is due soon. ") * 800


@dataclass(frozen=True)
class Shape:
    name: str
    lines: int
    line_bytes: int  # each line's UTF-8 size, without its newline
    messages: int = 1  # chat messages per line
    invalid_every: int = 0  # every n-th line names an unknown model: an error result (0: none)
    emoji: bool = False  # each line's text starts with an emoji (outside the BMP: Python stores it 4 bytes a character)
    huge_line_bytes: int = 0  # then one line this large, of emoji with CRLF and padding (0: none)
    about: str = ""

    @property
    def invalid(self) -> int:
        return self.lines // self.invalid_every if self.invalid_every else 0


SHAPES = {shape.name: shape for shape in (
    Shape("4k", MAX_LINES, MAX_FILE_BYTES // MAX_LINES - 1, about="50,000 lines of ~4 KB: 200 MB, most lines"),
    Shape("64k", MAX_FILE_BYTES // (MAX_LINE_BYTES + 1), MAX_LINE_BYTES,
          about="3,199 lines of 64 KiB: 200 MB, largest lines"),
    Shape("small", MAX_LINES, 200, about="50,000 lines of 200 B: most lines, small file"),
    Shape("4k-emoji", MAX_LINES, MAX_FILE_BYTES // MAX_LINES - 1, emoji=True,
          about="as 4k, with an emoji in each line: decoded, the text takes 4 bytes a character"),
    Shape("4k-40msg", MAX_LINES, MAX_FILE_BYTES // MAX_LINES - 1, messages=40,
          about="200 MB, 40 messages a line: the chat checks' worst case"),
    Shape("errors", MAX_LINES, 200, invalid_every=2,
          about="50,000 small lines, every other one an unknown model: 25,000 error results"),
    Shape("one-line", 1, 200, huge_line_bytes=MAX_FILE_BYTES - 1000,
          about="a valid line, then one line of ~200 MB of emoji with CRLF and padding: too large, refused"),
)}
DEFAULT_SHAPES = "4k,64k,small,4k-emoji,4k-40msg,errors,one-line"


def request_line(number: int, shape: Shape) -> bytes:
    """Line `number` of a file of `shape`: a valid request (or an unknown model) of exactly shape.line_bytes."""
    model = "gpt-nonexistent" if shape.invalid_every and number % shape.invalid_every == 0 else "deepseek-chat"
    messages = [{"role": "user" if (shape.messages - 1 - i) % 2 == 0 else "assistant", "content": ""}
                for i in range(shape.messages)]
    value = {"custom_id": f"line-{number:05d}", "method": "POST", "url": ENDPOINT,
             "body": {"model": model, "max_tokens": 16, "messages": messages}}
    emoji = "\N{SLIGHTLY SMILING FACE} " if shape.emoji else ""
    pad = shape.line_bytes - len(json.dumps(value, ensure_ascii=False).encode()) - len(emoji.encode())
    if pad < 0:
        raise ValueError(f"shape {shape.name}: lines of {shape.line_bytes} bytes are too short")
    each, extra = divmod(pad, shape.messages)
    for i, message in enumerate(messages):
        start = (number * 7 + i) % 97
        message["content"] = (emoji if i == 0 else "") + CORPUS[start:start + each + (1 if i < extra else 0)]
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert len(raw) == shape.line_bytes, (len(raw), shape.line_bytes)
    return raw


def batch_file(shape: Shape) -> bytes:
    data = b"".join(request_line(n, shape) + b"\n" for n in range(1, shape.lines + 1))
    if shape.huge_line_bytes:
        emoji = "\N{SLIGHTLY SMILING FACE}".encode()
        data += b"  " + emoji * ((shape.huge_line_bytes - 6) // len(emoji)) + b"  \r\n"
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"shape {shape.name}: {len(data)} bytes is over the limit")
    return data


# --- memory and CPU ------------------------------------------------------------------------------


def status_kb(field: str, pid: int | str = "self") -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset this process's peak RSS (ru_maxrss follows it); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime


# --- the child: one shape, one process -----------------------------------------------------------


class LambdaContext:
    function_name = "ingestion"
    memory_limit_in_mb = MEMORY_MB
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:ingestion"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self) -> None:
        self._deadline = time.monotonic() + TIMEOUT_S

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def child_environment() -> None:
    """What the ingestion function's configuration gives it (production limits: settings.py's defaults)."""
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false", "JOBS_TABLE_NAME": "jobs", "TENANTS_TABLE_NAME": "tenants",
        "IDEMPOTENCY_TABLE_NAME": "idempotency", "UPLOADS_BUCKET_NAME": UPLOADS, "RESULTS_BUCKET_NAME": RESULTS,
    })
    os.environ.pop("AWS_PROFILE", None)
    for name in ("MAX_BATCH_LINES", "MAX_BATCH_FILE_BYTES", "MAX_BATCH_LINE_BYTES", "BATCH_CHUNK_ITEMS",
                 "BATCH_CHUNK_BYTES"):
        os.environ.pop(name, None)


def make_cloud() -> dict[str, Any]:
    """Tables, buckets, queues and the state machine as tests/integration/test_ingestion.py's fixture makes them."""
    from deepseek_gateway.policy.models import PolicySettings, TenantPolicy
    from deepseek_gateway.safety.settings import SafetySettings
    from deepseek_gateway.tenancy.models import TenantCreate
    from deepseek_gateway.tenancy.store import TenantStore

    from local_cloud.moto_resources import ingestion_resources

    made = ingestion_resources(REGION, uploads=UPLOADS, results=RESULTS, machine=MACHINE)
    os.environ.update(made.env)
    tenants = TenantStore("tenants", made.dynamodb)
    tenants.create_tenant(TenantCreate(tenant_id=TENANT, name="Acme"))
    tenants.put_policy(TENANT, TenantPolicy(settings=PolicySettings(
        safety=SafetySettings(injection_threshold=0.8, deny_patterns=["project nightingale"]))))
    return {"s3": made.s3, "dynamodb": made.dynamodb, "sqs": made.sqs, "sfn": made.sfn, "machine": made.machine,
            "ingestion_url": made.ingestion_url}


def submit(cloud: dict[str, Any], data: bytes) -> str:
    """The file as a finished presigned upload (record, then object) and its batch in `validating`."""
    from deepseek_gateway.auth.principal import Principal
    from deepseek_gateway.batches.store import BatchStore
    from deepseek_gateway.files.models import FileObject
    from deepseek_gateway.files.store import FileStore, new_file_id, object_key

    now = time.time()
    file = FileObject(id=new_file_id(now), bytes=len(data), created_at=int(now), filename="bench.jsonl",
                      purpose="batch", status="processed")
    FileStore("jobs", UPLOADS, cloud["dynamodb"], lambda: cloud["s3"]).register(TENANT, file)
    cloud["s3"].put_object(Bucket=UPLOADS, Key=object_key(TENANT, file.id), Body=data)
    principal = Principal(tenant_id=TENANT, principal_id="keyacmeacmeacmea", kind="api_key",
                          scopes=frozenset({"batch", "files"}), key_id="keyacmeacmeacmea")
    batch = BatchStore("jobs", cloud["dynamodb"]).create(
        TENANT, input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h", metadata=None,
        principal=principal, window_s=86_400)
    cloud["sqs"].purge_queue(QueueUrl=cloud["ingestion_url"])  # the upload's own event: not measured here
    return batch.id


def load_handler() -> Any:
    """functions/ingestion/handler.py, imported as Lambda would (as tests/helpers.load_handler does)."""
    path = ROOT / "functions" / "ingestion" / "handler.py"
    spec = importlib.util.spec_from_file_location("lambda_functions.ingestion.handler", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(body: str) -> dict[str, Any]:
    return {"Records": [{
        "messageId": "00000000-0000-0000-0000-000000000001", "receiptHandle": "handle-0", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000", "SenderId": "api",
                       "ApproximateFirstReceiveTimestamp": "1767225600000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:ingestion", "awsRegion": REGION}]}


def outcome(cloud: dict[str, Any], batch_id: str, shape: Shape) -> dict[str, Any]:
    """What the ingestion left: the batch, its chunks (counted, checked, digested) and the execution."""
    from deepseek_gateway.batches.lines import chunk_prefix
    from deepseek_gateway.batches.store import BatchStore

    batches = BatchStore("jobs", cloud["dynamodb"])
    batch = batches.get(TENANT, batch_id)
    keys, held = [], 0
    for page in cloud["s3"].get_paginator("list_objects_v2").paginate(Bucket=RESULTS,
                                                                       Prefix=chunk_prefix(TENANT, batch_id)):
        for obj in page.get("Contents", []):
            keys.append(obj["Key"])
            held += obj["Size"]
    digest = hashlib.sha256()
    lines: list[int] = []
    prompt_tokens = 0
    for key in sorted(keys):
        body = cloud["s3"].get_object(Bucket=RESULTS, Key=key)["Body"].read()
        digest.update(key.removeprefix(chunk_prefix(TENANT, batch_id)).encode() + b"\n" + body + b"\n")
        items = json.loads(body)
        lines += [item["line"] for item in items]
        prompt_tokens += sum(item["prompt_tokens"] for item in items)
    executions = cloud["sfn"].list_executions(stateMachineArn=cloud["machine"])["executions"]
    started = [json.loads(cloud["sfn"].describe_execution(executionArn=e["executionArn"])["input"])
               for e in executions]
    chunks = started[0]["chunks"] if started else []
    digest.update(json.dumps(chunks, sort_keys=True).replace(batch_id, "<batch>").encode())  # ids differ by run
    errors = {r.line: r.result["error"]["code"] for r in batches.line_results(TENANT, batch_id)}
    for r in sorted(errors.items()):
        digest.update(f"{r[0]}:{r[1]}\n".encode())
    valid = [n for n in range(1, shape.lines + 1)
             if not (shape.invalid_every and n % shape.invalid_every == 0)]
    huge = 1 if shape.huge_line_bytes else 0  # the huge line: one more line, a request_too_large error
    ok = (batch.status == "in_progress" and batch.request_counts.total == shape.lines + huge
          and batch.request_counts.failed == shape.invalid + huge and len(started) == 1
          and [c["key"] for c in chunks] == sorted(keys) and lines == valid
          and set(errors.values()) <= {"model_not_found", "request_too_large"}
          and len(errors) == shape.invalid + huge)
    return {"status": batch.status, "total": batch.request_counts.total, "failed": batch.request_counts.failed,
            "chunks": len(keys), "chunk_mb": round(held / MB, 1), "prompt_tokens": prompt_tokens,
            "digest": digest.hexdigest()[:16], "checks_ok": ok}


def moto_get_mb(cloud: dict[str, Any], batch_id: str) -> float:
    """RSS that an in-process moto adds to serve the input object (it materialises the whole object)."""
    from deepseek_gateway.batches.store import BatchStore
    from deepseek_gateway.files.store import object_key

    file_id = BatchStore("jobs", cloud["dynamodb"]).get(TENANT, batch_id).input_file_id
    gc.collect()
    before = status_kb("VmRSS") / 1024
    reset_peak()
    body = cloud["s3"].get_object(Bucket=UPLOADS, Key=object_key(TENANT, file_id))["Body"]
    for _ in iter(lambda: body.read(MB), b""):
        pass
    body.close()
    return peak_mb() - before


def run_child(name: str, moto: str, result: Path) -> None:
    child_environment()
    shape = SHAPES[name]
    calls: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()
    most_in_flight: Counter[str] = Counter()  # per operation: how many calls ran at once, at most
    lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        with lock:
            calls[name] += 1
            in_flight[name] += 1
            most_in_flight[name] = max(most_in_flight[name], in_flight[name])

    def done(model: Any, **_: Any) -> None:
        with lock:
            in_flight[f"{model.service_model.service_name}.{model.name}"] -= 1

    server_pid = int(os.environ.get("BENCH_MOTO_PID", "0"))
    if moto == "in-process":
        from moto import mock_aws

        from local_cloud.moto_dynamodb_cpu import fast_dynamodb
        from local_cloud.moto_patches import serialize_dynamodb

        serialize_dynamodb()  # as tests/integration/conftest.py's tenants_table: moto's DynamoDB without
        fast_dynamodb()  # its per-call copies of the whole table, which an error line per call would pay
        mocked: Any = mock_aws()
    else:
        mocked = contextlib.nullcontext()
    with mocked:
        import boto3

        boto3.setup_default_session(region_name=REGION)  # after mock_aws, which drops the default session
        boto3.DEFAULT_SESSION.events.register("before-call", count)  # every client made from here on
        boto3.DEFAULT_SESSION.events.register("after-call", done)
        boto3.DEFAULT_SESSION.events.register("after-call-error", done)
        cloud = make_cloud()
        data = batch_file(shape)
        file_bytes = len(data)
        batch_id = submit(cloud, data)
        del data
        handler = load_handler()
        event = sqs_event(json.dumps({"type": "batch.submitted", "tenant_id": TENANT, "batch_id": batch_id}))
        gc.collect()
        calls.clear()
        most_in_flight.clear()
        server_before = (cpu_s(server_pid), status_kb("VmRSS", server_pid)) if server_pid else (0.0, 0)
        rss_before = status_kb("VmRSS") / 1024
        peak_was_reset = reset_peak()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = handler.lambda_handler(event, LambdaContext())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        peak = peak_mb()
        aws_calls = dict(calls)
        figures: dict[str, Any] = {
            "shape": name, "moto": moto, "file_mb": round(file_bytes / MB, 1), "lines": shape.lines,
            "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "peak_mb": round(peak),
            "ingestion_mb": round(peak - rss_before), "rss_before_mb": round(rss_before),
            "peak_reset": peak_was_reset, "aws_calls": aws_calls, "aws_parallel": dict(most_in_flight),
            "handler_failures": response["batchItemFailures"]}
        if server_pid:
            figures["moto_cpu_s"] = round(cpu_s(server_pid) - server_before[0], 2)
            figures["moto_mb"] = round(status_kb("VmRSS", server_pid) / 1024)
            figures["moto_added_mb"] = round((status_kb("VmRSS", server_pid) - server_before[1]) / 1024)
        figures.update(outcome(cloud, batch_id, shape))
        if moto == "in-process":
            figures["moto_get_mb"] = round(moto_get_mb(cloud, batch_id))
            figures["moto_holds_mb"] = figures["chunk_mb"]  # every chunk object, in moto's memory
    result.write_text(json.dumps(figures))


# --- the parent: one child per shape -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Any:
    """The local cloud's moto server (keep-alive, its DynamoDB patches) in a process of its own, on a free
    port; stopped (by its pid) after."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local_cloud.moto_server", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the moto server did not start")
            time.sleep(0.1)
        yield server.pid, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure(name: str, moto: str, timeout_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dsg-bench-ingestion-") as tmp:
        result = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "local_cloud.bench_ingestion", "--child", name, "--moto", moto,
                   "--result", str(result)]
        env = dict(os.environ)
        with contextlib.ExitStack() as stack:
            if moto == "server":
                pid, endpoint = stack.enter_context(moto_server())
                env.update({"AWS_ENDPOINT_URL": endpoint, "BENCH_MOTO_PID": str(pid)})
            done = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603 - ours
                                  timeout=timeout_s)
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"shape {name}: the child failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(result.read_text())


def estimate_aws_s(row: dict[str, Any], args: argparse.Namespace) -> float:
    """The calls' latency from Lambda (an assumption), each operation's calls as many at once as the handler
    made them, and the input file's transfer from S3."""
    total = row["file_mb"] / args.s3_mb_per_s
    for call, count in row["aws_calls"].items():
        latency = args.s3_ms if call.startswith("s3.") else args.dynamodb_ms
        total += count * latency / 1000 / max(1, row["aws_parallel"].get(call, 1))
    return total


def verdict(row: dict[str, Any]) -> str:
    seconds, memory = row["seconds"] + row["aws_s"], row["peak_mb"]
    if not row["checks_ok"] or row["handler_failures"]:
        return "WRONG OUTCOME"
    if seconds > TIMEOUT_S or memory > MEMORY_MB:
        return "DOES NOT FIT"
    if seconds > SAFE_S or memory > SAFE_MB:
        return "tight"
    return "fits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES,
                        help=f"comma-separated, of: {', '.join(SHAPES)} (default {DEFAULT_SHAPES}); "
                             + "; ".join(f"{s.name}: {s.about}" for s in SHAPES.values()))
    parser.add_argument("--moto", choices=("in-process", "server"), default="in-process",
                        help="in-process: moto.mock_aws in the child, as the integration tests (default); "
                             "server: a moto server of its own, so the child's figures are the function's alone")
    parser.add_argument("--s3-ms", type=float, default=25, help="assumed latency of an S3 call from Lambda")
    parser.add_argument("--dynamodb-ms", type=float, default=10,
                        help="assumed latency of any other AWS call (DynamoDB, Step Functions, SQS)")
    parser.add_argument("--s3-mb-per-s", type=float, default=75, help="assumed S3 read throughput in Lambda")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one shape may take")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.moto, args.result)
        return 0
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes: {', '.join(unknown)}")
    rows = []
    for name in names:
        print(f"… {name}: {SHAPES[name].about}", file=sys.stderr)
        row = measure(name, args.moto, args.timeout)
        row["aws_s"] = round(estimate_aws_s(row, args), 1)
        row["verdict"] = verdict(row)
        rows.append(row)
    columns = [("shape", "shape"), ("file_mb", "file MB"), ("lines", "lines"), ("chunks", "chunks"),
               ("seconds", "seconds"), ("cpu_s", "CPU s"), ("calls", "AWS calls"), ("aws_s", "+AWS s"),
               ("peak_mb", "peak MB"), ("ingestion_mb", "ingestion MB")]
    if args.moto == "in-process":
        columns += [("moto_get_mb", "moto GET MB"), ("moto_holds_mb", "moto holds MB")]
    else:
        columns += [("moto_mb", "moto MB"), ("moto_cpu_s", "moto CPU s")]
    columns += [("verdict", "verdict")]
    for row in rows:
        row["calls"] = sum(row["aws_calls"].values())
    print(f"\ningestion of batch files at the limits, moto {args.moto}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; the function: {TIMEOUT_S} s, {MEMORY_MB} MB "
          f"(margin: {SAFE_S} s, {SAFE_MB} MB)")
    widths = [max(len(title), *(len(str(row.get(key, "-"))) for row in rows)) for key, title in columns]
    print(" | ".join(title.rjust(width) for (_, title), width in zip(columns, widths, strict=True)))
    for row in rows:
        print(" | ".join(str(row.get(key, "-")).rjust(width) for (key, _), width in zip(columns, widths, strict=True)))
    for row in rows:
        calls = ", ".join(f"{n} {call}" + (f" ({row['aws_parallel'][call]} at once)"
                                           if row["aws_parallel"].get(call, 1) > 1 else "")
                          for call, n in sorted(row["aws_calls"].items(), key=lambda c: -c[1]))
        print(f"  {row['shape']}: {calls}; chunks {row['chunk_mb']} MB, digest {row['digest']}"
              + ("" if row["peak_reset"] else "; peak RSS could not be reset: it includes building the file"))
    if args.json:
        args.json.write_text(json.dumps({"moto": args.moto, "cpus": os.cpu_count(), "rows": rows,
                                         "assumptions": {"s3_ms": args.s3_ms, "dynamodb_ms": args.dynamodb_ms,
                                                         "s3_mb_per_s": args.s3_mb_per_s},
                                         "shapes": {n: asdict(SHAPES[n]) for n in names}}, indent=2))
    return 0 if all(row["verdict"] in ("fits", "tight") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
