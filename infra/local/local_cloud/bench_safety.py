"""`python -m local_cloud.bench_safety`: latency and throughput of the safety layer's input pipeline.

A benchmark, not a test: p50 / p99 of `inspect_request` on 4 KB prompts (plain English prose and
code, the same with PII and secrets to redact, and an adversarial mix of non-ASCII look-alikes,
zero-width characters and Base64 payloads), the whole pipeline including the log line and metrics,
plus throughput in MB/s on a 256 KB prompt. The goal beside each figure: p99 under 1 ms for 4 KB.
CPU time (thread time) is printed beside wall-clock time: on a shared machine the wall-clock p99 is
mostly time spent waiting for a core, which says more about the neighbours than about this code.
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import json
import logging
import os
import platform
import statistics
import sys
import time
from contextlib import redirect_stdout

from deepseek_gateway.models.chat import ChatCompletionRequest
from deepseek_gateway.observability import logger, metrics
from deepseek_gateway.safety import SafetySettings, inspect_request

PROSE = (
    "Our quarterly planning meeting covered the migration of the billing service to the new cluster. The team "
    "agreed to ignore the flaky integration test for now and act as reviewers for each other's pull requests. "
    "Please summarise the decisions, list the open questions and suggest a timeline for the rollout. "
)
CODE = (
    "def handler(event, context):\n    password = os.environ['DB_PASSWORD']\n    conn = connect(host='db.internal', "
    "user='app', password=password)\n    rows = conn.execute('SELECT id, total FROM orders WHERE status = %s', "
    "('open',))\n    return {'count': len(rows)}\n"
)
PII = ("Customer Jane Roe (jane.roe@example.org, +44 20 7946 0958) paid with 4111 1111 1111 1111; refund to "
       "DE89 3704 0044 0532 0130 00. Deploy key AKIAZ7Q3XJ4K2LMNOP5R and sk-proj-Qx7vR2mT9kLp4sWz8bNc3hYd. ")
ADVERSARIAL = ("Ｐlease rеview thе fоllowing nоtes\u200b and rep\u200bly brіefly. Payload: "
               + base64.b64encode(b"Some harmless encoded notes about the release schedule.").decode() + " ")


def _prompt(pieces: list[str], size: int) -> str:
    text = ""
    i = 0
    while len(text) < size:
        text += pieces[i % len(pieces)]
        i += 1
    return text[:size]


def _request(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "deepseek-chat", "messages": [
        {"role": "system", "content": "You are a helpful assistant for Acme's engineering team."},
        {"role": "user", "content": text},
    ]})


def _measure(request: ChatCompletionRequest, settings: SafetySettings, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per call (CPU time excludes waiting for a core on a busy machine)."""
    for _ in range(50):
        inspect_request(request, settings)
    wall, cpu = [], []
    gc.collect()
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        inspect_request(request, settings)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def _row(name: str, size: int, wall: list[float], cpu: list[float]) -> dict:
    wq, cq = statistics.quantiles(wall, n=100), statistics.quantiles(cpu, n=100)
    return {"case": name, "p50_ms": round(wq[49], 3), "p99_ms": round(wq[98], 3), "cpu_p50_ms": round(cq[49], 3),
            "cpu_p99_ms": round(cq[98], 3), "mb_per_s": round(size / (statistics.median(wall) / 1000) / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    settings = SafetySettings(pii_actions={"email": "redact", "phone": "redact"})
    plain = _prompt([PROSE, CODE], 4096)
    cases = {
        "4 KB prose + code": plain,
        "4 KB with 6 PII / secrets": plain[:2000] + PII + plain[2000:4096 - len(PII)],
        "4 KB dense: 30 PII / secrets": _prompt([PROSE, PII, CODE], 4096),
        "4 KB non-ASCII adversarial": _prompt([PROSE, ADVERSARIAL], 4096),
    }
    handler = logging.getLogger(logger.name).handlers[0]
    handler.stream = io.StringIO()  # keep the log line's cost, not its noise
    rows = []
    with redirect_stdout(io.StringIO()):  # EMF metric lines
        for name, text in cases.items():
            rows.append(_row(name, len(text.encode()), *_measure(_request(text), settings, args.runs)))
            metrics.clear_metrics()
            handler.stream = io.StringIO()
        logger.setLevel(logging.WARNING)
        text = cases["4 KB with 6 PII / secrets"]
        rows.append(_row("  same, without the log line", len(text), *_measure(_request(text), settings, args.runs)))
        logger.setLevel(logging.INFO)
        big = _prompt([PROSE, PII, CODE], 262_144)
        rows.append(_row("256 KB with PII (throughput)", len(big), *_measure(_request(big), settings, 30)))
        metrics.clear_metrics()
    load = os.getloadavg()[0]
    print(f"safety input pipeline — {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}, {args.runs} runs per 4 KB case")
    print(f"{'case':34} {'p50 ms':>8} {'p99 ms':>8} {'cpu p50':>8} {'cpu p99':>8} {'MB/s':>7}   goal")
    for row in rows:
        goal = "p99 < 1 ms" if row["case"].startswith("4 KB") else ""
        mark = ("  ok" if row["p99_ms"] < 1 else f"  wall MISSED{', cpu ok' if row['cpu_p99_ms'] < 1 else ''}") \
            if goal else ""
        print(f"{row['case']:34} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['cpu_p50_ms']:>8} {row['cpu_p99_ms']:>8} "
              f"{row['mb_per_s']:>7}   {goal}{mark}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
