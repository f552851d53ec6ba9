"""`python -m local_cloud.bench_batch` (what `make bench-batch` calls): the batch path's scale figures.

Starts the local cloud on free ports, submits batches of increasing size (100 and 1,000 lines by
default) through the OpenAI SDK exactly as a client would (files.create, batches.create, then
batches.retrieve until it ends), and prints per size: the time from submission to `completed`,
items per second, Step Functions state transitions per item (from the execution's history), and
whether the output and error files hold every line exactly once. Linear growth shows as a steady
items-per-second figure across sizes. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from local_cloud.cloud import LocalCloud, LocalCloudConfig
from local_cloud.functions import free_port

TERMINAL = {"completed", "failed", "cancelled", "expired"}


def batch_file(lines: int) -> bytes:
    rows = []
    for i in range(lines):
        body = {"model": "deepseek-chat", "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Benchmark line {i}: summarise the number {i}."}]}
        rows.append(json.dumps({"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": body}))
    return ("\n".join(rows) + "\n").encode()


def transitions(cloud: LocalCloud, batch_id: str) -> dict[str, int]:
    """State transitions of the batch's execution, counted from its history like Step Functions bills them."""
    sfn = cloud.session.client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    for machine in machines:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            if execution["name"] != batch_id:
                continue
            events: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"executionArn": execution["executionArn"], "maxResults": 1000}
            while True:
                page = sfn.get_execution_history(**kwargs)
                events += page["events"]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            # The local cloud copies the Distributed Map's child events into this history (moto_stepfunctions).
            kinds = Counter(e["type"] for e in events)
            entered = sum(n for kind, n in kinds.items() if kind.endswith("StateEntered"))
            return {"events": len(events), "state_transitions": entered}
    return {"events": 0, "state_transitions": 0}


def invocations(cloud: LocalCloud) -> Counter[str]:
    """Invocations so far per function, from the sandboxes' own counters."""
    counts: Counter[str] = Counter()
    for pool in cloud.pools.values():
        counts[pool.spec.logical_id] = sum(worker.get("invocations", 0) for worker in pool.stats())
    return counts


def run_one(cloud: LocalCloud, client: Any, lines: int, timeout_s: float) -> dict[str, Any]:
    before = invocations(cloud)
    started = time.perf_counter()
    uploaded = client.files.create(file=("bench.jsonl", io.BytesIO(batch_file(lines))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    deadline = time.monotonic() + timeout_s
    while batch.status not in TERMINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{lines}-line batch still {batch.status} after {timeout_s} s")
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
    elapsed = time.perf_counter() - started
    seen: Counter[str] = Counter()
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            for line in client.files.content(file_id).text.splitlines():
                if line.strip():
                    seen[json.loads(line)["custom_id"]] += 1
    conserved = len(seen) == lines and set(seen.values()) == {1}
    counts = transitions(cloud, batch.id)
    invoked = invocations(cloud) - before
    workflow = sum(n for name, n in invoked.items() if not name.startswith(("FunctionsApi", "FunctionsAuthorizer")))
    return {
        "lines": lines, "status": batch.status, "seconds": round(elapsed, 2),
        "items_per_s": round(lines / elapsed, 1),
        "completed": batch.request_counts.completed if batch.request_counts else None,
        "failed": batch.request_counts.failed if batch.request_counts else None,
        "transitions_per_item": round(counts["state_transitions"] / lines, 1),
        "lambda_invocations_per_item": round(workflow / lines, 2),
        "invocations": dict(sorted(invoked.items())),
        "every_line_once": conserved,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated batch sizes (lines)")
    parser.add_argument("--concurrency", type=int, default=4, help="sandboxes per function")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for one batch")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    from openai import OpenAI

    state_dir = Path(tempfile.mkdtemp(prefix="dsg-bench-batch-"))
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    config = LocalCloudConfig(api_port=free_port(), aws_port=free_port(), provider_port=free_port(),
                              state_dir=state_dir, concurrency=args.concurrency, env=env)
    print(f"starting the local cloud (logs in {state_dir / 'logs'}) …", file=sys.stderr)
    cloud = LocalCloud(config, progress=lambda line: print(line, file=sys.stderr)).start()
    results = []
    try:
        client = OpenAI(base_url=cloud.info()["api_base_url"], api_key=cloud.keys["demo"], max_retries=2)
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            print(f"… {size}-line batch", file=sys.stderr)
            results.append(run_one(cloud, client, size, args.timeout))
    finally:
        cloud.stop()
    columns = ["lines", "status", "seconds", "items_per_s", "transitions_per_item",
               "lambda_invocations_per_item", "every_line_once"]
    print(f"\nbatch path, {os.cpu_count()} CPUs, {args.concurrency} sandboxes per function, "
          f"load average at end {os.getloadavg()[0]:.1f}")
    print(" | ".join(f"{c:>14}" for c in columns))
    for row in results:
        print(" | ".join(f"{row[c]!s:>14}" for c in columns))
    if len(results) >= 2 and results[0]["items_per_s"]:
        ratio = results[-1]["items_per_s"] / results[0]["items_per_s"]
        print(f"items/s at {results[-1]['lines']} lines vs {results[0]['lines']}: {ratio:.2f}x "
              "(about 1.0 means time grows linearly with the number of lines)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["status"] == "completed" and r["every_line_once"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
