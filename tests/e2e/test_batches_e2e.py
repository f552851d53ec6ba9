"""The asynchronous path end to end: Files and Batch APIs through the OpenAI SDK, S3 → SQS → ingestion →
Step Functions over the safety, router and backend functions → output files → notifications."""

from __future__ import annotations

import io
import json
import time

import pytest

from tests.e2e.test_auth_e2e import cli, sdk

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]

TERMINAL = {"completed", "failed", "cancelled", "expired"}


def jsonl(lines: list[dict]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chat_line(custom_id: str, text: str, model: str = "deepseek-chat", **extra) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 20, **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def wait_for(client, batch_id: str, statuses=TERMINAL, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status} after {timeout_s} s"
        time.sleep(0.25)


def read_lines(client, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line.strip()]


def submit(client, lines: list[dict], **metadata):
    uploaded = client.files.create(file=("batch.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                 completion_window="24h", metadata=metadata or None)


def test_openai_sdk_batch_gives_the_same_answers_as_chat_completions_and_conserves_every_line(client, provider):
    """Given a batch file with answerable lines and a line naming an unknown model,
    when it is submitted with the OpenAI SDK and runs to completion,
    then every answered line carries exactly the body /v1/chat/completions returns for the same request,
    the bad line is in the error file, and each input line appears exactly once across the two files."""
    lines = [chat_line(f"req-{i}", f"Say the number {i}") for i in range(4)]
    lines.append(chat_line("req-gpt", "Hello from the batch", model="gpt-4.1-mini"))
    lines.append(chat_line("req-bad", "Nobody serves this", model="no-such-model"))
    batch = submit(client, lines, purpose="e2e")
    assert batch.status == "validating"
    assert batch.metadata == {"purpose": "e2e"}

    done = wait_for(client, batch.id)

    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (6, 5, 1)
    output, errors = read_lines(client, done.output_file_id), read_lines(client, done.error_file_id)
    ids = [line["custom_id"] for line in output + errors]
    assert sorted(ids) == sorted(line["custom_id"] for line in lines)  # each exactly once
    assert [e["custom_id"] for e in errors] == ["req-bad"]
    assert errors[0]["error"]["code"] == "model_not_found"
    by_id = {line["custom_id"]: line for line in lines}
    for answered in output:
        assert answered["response"]["status_code"] == 200
        assert answered["id"].startswith("batch_req_")
        body = by_id[answered["custom_id"]]["body"]
        synchronous = client.chat.completions.create(**body).model_dump(exclude_none=True)
        batched = answered["response"]["body"]
        assert batched["choices"] == synchronous["choices"]
        assert batched["usage"] == synchronous["usage"]
        assert batched["model"] == synchronous["model"]


@pytest.fixture
def closed_breakers(cloud, aws):
    """The batch path's failures open the providers' shared circuit breakers (as they should): closed
    again afterwards, once the api sandboxes' cached copy (2 s) has expired, so later tests start clean."""
    yield
    table = next(cloud.deployment.ref(i) for i, _ in cloud.deployment.template.of_type("AWS::DynamoDB::Table")
                 if "Breaker" in i)
    dynamodb = aws.client("dynamodb")
    for item in dynamodb.scan(TableName=table).get("Items", []):
        dynamodb.delete_item(TableName=table, Key={"provider": item["provider"]})
    time.sleep(2.5)


def test_batch_falls_back_to_the_next_provider_when_deepseek_fails(client, provider, closed_breakers):
    """Given DeepSeek answering 500 to everything, when a batch of DeepSeek lines runs,
    then every line is answered by the fallback provider and none is lost."""
    provider.set_fault("deepseek", status=500)
    batch = submit(client, [chat_line(f"fb-{i}", f"Fallback {i}") for i in range(3)])

    done = wait_for(client, batch.id)

    assert done.status == "completed"
    assert done.request_counts.completed == 3
    output = read_lines(client, done.output_file_id)
    assert len(output) == 3
    assert all(not line["response"]["body"]["model"].startswith("deepseek") for line in output)
    assert provider.request_count("deepseek") >= 3


def test_a_file_dropped_into_the_tenants_batch_prefix_runs_as_a_batch(cloud, client, aws, provider):
    """Given a data team with S3 access, when it copies a JSONL file into <tenant>/batches/,
    then the gateway creates the file and the batch itself, runs it, and lists it to the tenant."""
    key = f"demo/batches/nightly-{time.time_ns()}.jsonl"
    aws.client("s3").put_object(Bucket=cloud.bucket("uploads"), Key=key,
                                Body=jsonl([chat_line("s3-1", "From S3"), chat_line("s3-2", "Also from S3")]))
    deadline = time.monotonic() + 60
    batch = None
    while batch is None:
        batch = next((b for b in client.batches.list(limit=20).data
                      if (b.metadata or {}).get("key") == key), None)
        assert batch is not None or time.monotonic() < deadline, "no batch was created for the S3 upload"
        time.sleep(0.25)
    assert batch.metadata["source"] == "s3"

    done = wait_for(client, batch.id)

    assert done.status == "completed"
    assert sorted(line["custom_id"] for line in read_lines(client, done.output_file_id)) == ["s3-1", "s3-2"]
    assert client.files.retrieve(done.input_file_id).purpose == "batch"


def test_cancelling_mid_way_stops_new_work_and_accounts_for_every_line(client, provider, closed_breakers):
    """Given a slow provider and a batch larger than one chunk of work, when the batch is cancelled
    while it runs, then it ends `cancelled`, and every line is in the output file or, with
    `batch_cancelled`, in the error file — exactly once."""
    provider.set_fault("deepseek", delay_ms=400)
    lines = [chat_line(f"c-{i}", f"Slow {i}") for i in range(30)]
    batch = submit(client, lines)
    wait_for(client, batch.id, statuses={"in_progress", *TERMINAL})
    time.sleep(1.0)

    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in {"cancelling", "cancelled"}
    done = wait_for(client, batch.id)

    assert done.status == "cancelled"
    output, errors = read_lines(client, done.output_file_id), read_lines(client, done.error_file_id)
    assert sorted(line["custom_id"] for line in output + errors) == sorted(line["custom_id"] for line in lines)
    cancelled = [e for e in errors if e["error"]["code"] == "batch_cancelled"]
    assert cancelled, "nothing was left to cancel: the batch finished before the cancel arrived"
    assert done.request_counts.total == 30


def test_another_tenants_file_cannot_be_batched(cloud, client):
    """Given a file uploaded by tenant demo, when another tenant names it in a batch, then 404."""
    from openai import NotFoundError

    uploaded = client.files.create(file=("mine.jsonl", io.BytesIO(jsonl([chat_line("x", "mine")]))), purpose="batch")
    cli(cloud, "tenants", "create", "intruder", "--name", "Intruder")
    intruder = sdk(cloud, cli(cloud, "keys", "create", "intruder", "--scopes", "chat,batch,files")["key"])
    with pytest.raises(NotFoundError):
        intruder.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
