"""The ingestion handler against moto: S3 notifications really delivered to the ingestion queue, the jobs,
tenants and idempotency tables, the results bucket, the notifications queue and a Step Functions state machine."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches import ingestion as ingestion_module
from deepseek_gateway.batches.ingestion import ExecutionStarter, count_lines
from deepseek_gateway.batches.ingestion_runtime import reset_runtime
from deepseek_gateway.batches.objects import OutputFiles
from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.files.store import FileStore, object_key
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.policy.models import PolicySettings, TenantPolicy
from deepseek_gateway.safety.settings import SafetySettings
from deepseek_gateway.tenancy.models import TenantCreate, TenantUpdate
from deepseek_gateway.tenancy.store import TenantStore
from deepseek_gateway.web.services import reset_services
from local_cloud.moto_resources import create_pass_state_machine, ingestion_resources

from tests.helpers import FakeLambdaContext, load_handler
from tests.integration.test_files_api import call

REGION = "us-east-1"
UPLOADS, RESULTS = "gateway-uploads", "gateway-results"
MACHINE = "batch-workflow"
ACME = Principal(tenant_id="acme", principal_id="keyacmeacmeacmea", kind="api_key",
                 scopes=frozenset({"batch", "files"}), key_id="keyacmeacmeacmea")
POLICY_SAFETY = SafetySettings(injection_threshold=0.8, deny_patterns=["project nightingale"])
LIMITS = {"MAX_BATCH_LINES": "10", "MAX_BATCH_LINE_BYTES": "2048", "MAX_BATCH_FILE_BYTES": "50000",
          "BATCH_CHUNK_ITEMS": "2", "BATCH_CHUNK_BYTES": "65536"}


def line(custom_id: str, *, model: str = "deepseek-chat", url: str = "/v1/chat/completions", **body) -> bytes:
    request = {"model": model, "messages": [{"role": "user", "content": f"Say {custom_id}"}], **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": request}).encode() + b"\n"


def valid_lines(count: int) -> bytes:
    return b"".join(line(f"r{i}") for i in range(1, count + 1))


# --- the cloud ---------------------------------------------------------------------------------


@pytest.fixture
def cloud(monkeypatch):
    from moto import mock_aws

    with mock_aws():
        made = ingestion_resources(REGION, uploads=UPLOADS, results=RESULTS, machine=MACHINE)
        s3, dynamodb = made.s3, made.dynamodb
        env = {**made.env, "TENANT_CACHE_TTL_S": "0", **LIMITS}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_runtime()
        reset_services()
        tenants = TenantStore("tenants", dynamodb)
        tenants.create_tenant(TenantCreate(tenant_id="acme", name="Acme"))
        tenants.put_policy("acme", TenantPolicy(settings=PolicySettings(safety=POLICY_SAFETY)))
        yield SimpleNamespace(
            s3=s3, dynamodb=dynamodb, sqs=made.sqs, sfn=made.sfn, machine=made.machine,
            ingestion_url=made.ingestion_url, notifications_url=made.notifications_url,
            ingestion_arn=made.ingestion_arn, tenants=tenants,
            files=FileStore("jobs", UPLOADS, dynamodb, lambda: s3), batches=BatchStore("jobs", dynamodb),
            handler=load_handler("ingestion"), api=load_handler("api"))
        reset_runtime()
        reset_services()


def received(cloud, url: str) -> list[dict]:
    """Every message waiting on the queue, taken off it."""
    messages: list[dict] = []
    while batch := cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        cloud.sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return messages


def sqs_event(cloud, bodies: list[str]) -> dict:
    """The event Lambda's SQS event source mapping hands the function, one record per body."""
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": f"handle-{i}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000", "SenderId": "S3",
                       "ApproximateFirstReceiveTimestamp": "1767225600000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": cloud.ingestion_arn,
        "awsRegion": REGION} for i, body in enumerate(bodies)]}


def run(cloud, bodies: list[str]) -> list[str]:
    """Hand `bodies` to the ingestion handler; the ids of the records it reports as failed."""
    event = sqs_event(cloud, bodies)
    response = cloud.handler.lambda_handler(event, FakeLambdaContext(function_name="ingestion"))
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    return [i for i, record in enumerate(event["Records"]) if record["messageId"] in failed]


def deliver(cloud) -> list[str]:
    """Deliver what waits on the ingestion queue, until it is empty (a copy's event arrives after the copy)."""
    bodies: list[str] = []
    while waiting := [m["Body"] for m in received(cloud, cloud.ingestion_url)]:
        assert run(cloud, waiting) == []
        bodies += waiting
    return bodies


def notifications(cloud) -> list[NotificationEvent]:
    return [NotificationEvent.from_message(m["Body"]) for m in received(cloud, cloud.notifications_url)]


def executions(cloud) -> list[dict]:
    found = cloud.sfn.list_executions(stateMachineArn=cloud.machine)["executions"]
    return [{**e, "input": json.loads(cloud.sfn.describe_execution(executionArn=e["executionArn"])["input"])}
            for e in found]


def direct_upload(cloud, name: str, data: bytes, tenant: str = "acme") -> None:
    cloud.s3.put_object(Bucket=UPLOADS, Key=f"{tenant}/batches/{name}", Body=data)


def the_batch(cloud, tenant: str = "acme"):
    [batch] = cloud.batches.list(tenant).data
    return batch


def submitted_through_the_api(cloud, data: bytes) -> str:
    file = cloud.files.create("acme", filename="batch.jsonl", purpose="batch", data=data)
    response = call(cloud.api, "POST", "/v1/batches", principal=ACME, body={
        "input_file_id": file.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])["id"]


def forget_processed_messages(cloud) -> None:
    """As if the idempotency records had expired: only the repeatable steps stand between a repeat and harm."""
    for item in cloud.dynamodb.scan(TableName="idempotency")["Items"]:
        cloud.dynamodb.delete_item(TableName="idempotency", Key={"id": item["id"]})


# --- files/ ------------------------------------------------------------------------------------


def test_given_a_batch_file_uploaded_through_the_files_api_when_its_event_arrives_then_file_ingested_is_sent(cloud):
    file = cloud.files.create("acme", filename="prompts.jsonl", purpose="batch", data=valid_lines(3) + b"\n")

    deliver(cloud)

    [event] = notifications(cloud)
    assert (event.type, event.tenant_id) == ("file.ingested", "acme")
    assert event.data == {"file_id": file.id, "filename": "prompts.jsonl", "purpose": "batch",
                          "bytes": file.bytes, "status": "processed", "lines": 3}
    assert executions(cloud) == []


def test_given_a_presigned_upload_when_its_object_arrives_then_the_file_is_processed_and_announced(cloud):
    data = valid_lines(2)
    pending = call(cloud.api, "POST", "/v1/files/uploads", principal=ACME,
                   body={"filename": "big.jsonl", "purpose": "batch", "bytes": len(data)})
    file_id = json.loads(pending["body"])["file"]["id"]
    cloud.s3.put_object(Bucket=UPLOADS, Key=object_key("acme", file_id), Body=data)  # the client's PUT

    deliver(cloud)

    stored = cloud.dynamodb.get_item(TableName="jobs", Key={"pk": {"S": "TENANT#acme"},
                                                            "sk": {"S": f"FILE#{file_id}"}})["Item"]
    assert stored["status"] == {"S": "processed"}
    [event] = notifications(cloud)
    assert (event.type, event.data["file_id"], event.data["lines"]) == ("file.ingested", file_id, 2)


def test_given_a_batch_output_file_written_by_the_gateway_when_its_event_arrives_then_nothing_is_sent(cloud):
    OutputFiles("jobs", UPLOADS, cloud.dynamodb, lambda: cloud.s3).write(
        "acme", "file-" + "1" * 24, filename="batch_output.jsonl", data=b'{"id": "x"}\n', created_at=1)

    deliver(cloud)

    assert notifications(cloud) == []


# --- batch.submitted ---------------------------------------------------------------------------


def test_given_a_batch_created_through_the_api_when_ingested_then_chunks_are_written_and_the_workflow_starts(cloud):
    batch_id = submitted_through_the_api(cloud, valid_lines(5))

    deliver(cloud)

    batch = cloud.batches.get("acme", batch_id)
    assert (batch.status, batch.request_counts.total, batch.request_counts.failed) == ("in_progress", 5, 0)
    assert batch.in_progress_at is not None
    [execution] = executions(cloud)
    assert execution["name"] == batch_id
    chunks = execution["input"].pop("chunks")
    assert execution["input"] == {
        "tenant_id": "acme", "batch_id": batch_id,
        "principal": {**ACME.model_dump(mode="json"), "scopes": ["batch", "files"]},
        "safety": POLICY_SAFETY.model_dump(mode="json", exclude={"canary_seed"})}
    prefix = f"acme/batches/{batch_id}/chunks/"
    assert chunks == [{"index": i, "key": f"{prefix}{i:05d}.json"} for i in range(3)]  # 2 + 2 + 1 items
    items = [json.loads(cloud.s3.get_object(Bucket=RESULTS, Key=c["key"])["Body"].read()) for c in chunks]
    assert [[item["line"] for item in chunk] for chunk in items] == [[1, 2], [3, 4], [5]]
    first = items[0][0]
    assert first.pop("prompt_tokens") > 0  # enriched with the sync path's estimate
    assert first == {"line": 1, "custom_id": "r1", "body": json.loads(valid_lines(1))["body"]}
    assert [e.type for e in notifications(cloud)] == ["file.ingested"]


def test_given_bad_lines_when_ingested_then_each_gets_its_error_result_and_the_good_ones_run(cloud):
    data = b"".join([
        line("r1"),                                              # 1: valid
        b'{"custom_id": "r2", "method": \n',                     # 2: not JSON
        b"   \n",                                                # 3: blank, not counted
        line("r4", model="gpt-nonexistent"),                     # 4: unknown model
        line("r5", url="/v1/embeddings"),                        # 5: not the batch's endpoint
        line("r6", stream=True),                                 # 6: streaming
        line("r1"),                                              # 7: duplicate custom_id
        line("r8"),                                              # 8: valid
        line("r9", messages=[{"role": "user", "content": "x" * 3000}]),  # 9: over MAX_BATCH_LINE_BYTES
    ])
    direct_upload(cloud, "mixed.jsonl", data)

    deliver(cloud)

    batch = the_batch(cloud)
    assert (batch.status, batch.request_counts.total, batch.request_counts.failed) == ("in_progress", 8, 6)
    results = {r.line: r for r in cloud.batches.line_results("acme", batch.id)}
    assert {n: r.result["error"]["code"] for n, r in results.items()} == {
        2: "invalid_json_line", 4: "model_not_found", 5: "invalid_request", 6: "invalid_request",
        7: "duplicate_custom_id", 9: "request_too_large"}
    assert all(r.kind == "error" and r.result["response"] is None for r in results.values())
    assert (results[4].custom_id, results[2].custom_id) == ("r4", None)
    [execution] = executions(cloud)
    [chunk] = execution["input"]["chunks"]
    items = json.loads(cloud.s3.get_object(Bucket=RESULTS, Key=chunk["key"])["Body"].read())
    assert [(item["line"], item["custom_id"]) for item in items] == [(1, "r1"), (8, "r8")]


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_file"),
    (b"\n  \n", "empty_file"),
    (b"\xff\xfe not utf-8\n", "invalid_file_encoding"),
    (b"\n" * 50_001, "file_too_large"),
    (valid_lines(11), "too_many_requests"),
    (line("a", model="nope") + line("b", url="/v1/embeddings"), "no_valid_requests"),
])
def test_given_a_file_that_cannot_be_a_batch_when_ingested_then_the_batch_fails_and_batch_failed_is_sent(
        cloud, data, code):
    direct_upload(cloud, "bad.jsonl", data)

    deliver(cloud)

    batch = the_batch(cloud)
    assert batch.status == "failed" and batch.failed_at is not None and batch.errors is not None
    assert executions(cloud) == []
    failed = [e for e in notifications(cloud) if e.type == "batch.failed"]
    assert [(e.data["batch_id"], e.data["code"]) for e in failed] == [(batch.id, code)]
    assert failed[0].data["errors"] == [e.model_dump(mode="json", exclude_none=True) for e in batch.errors.data]
    if code == "no_valid_requests":  # the errors are the lines', as OpenAI lists them
        assert [(e.line, e.code) for e in batch.errors.data] == [(1, "model_not_found"), (2, "invalid_request")]
    else:
        assert [e.code for e in batch.errors.data] == [code]


def test_given_a_file_read_in_pieces_that_split_lines_and_characters_when_ingested_then_it_is_as_if_read_whole(
        cloud, monkeypatch):
    monkeypatch.setattr(ingestion_module, "_STREAM_CHUNK", 5)  # S3's body in 5-byte reads
    text = "caf\u00e9 \U0001f642 \u6f22\u5b57"
    data = b"".join([b"\xef\xbb\xbf" + line("r1", messages=[{"role": "user", "content": text}]).rstrip(b"\n") + b"\r\n",
                     b"\n", b"{broken\n", line("r4"), line("r4"), line("r6").rstrip(b"\n")])
    direct_upload(cloud, "pieces.jsonl", data)

    deliver(cloud)

    batch = the_batch(cloud)
    assert (batch.status, batch.request_counts.total, batch.request_counts.failed) == ("in_progress", 5, 2)
    results = {r.line: r.result["error"]["code"] for r in cloud.batches.line_results("acme", batch.id)}
    assert results == {3: "invalid_json_line", 5: "duplicate_custom_id"}
    [execution] = executions(cloud)
    items = [item for chunk in execution["input"]["chunks"]
             for item in json.loads(cloud.s3.get_object(Bucket=RESULTS, Key=chunk["key"])["Body"].read())]
    assert [(item["line"], item["custom_id"]) for item in items] == [(1, "r1"), (4, "r4"), (6, "r6")]
    assert items[0]["body"]["messages"] == [{"role": "user", "content": text}]


def test_given_an_object_larger_than_its_file_record_says_when_ingested_then_the_batch_fails_as_too_large(cloud):
    batch_id = submitted_through_the_api(cloud, valid_lines(2))
    file_id = cloud.batches.get("acme", batch_id).input_file_id
    too_large = valid_lines(1) * 400  # over MAX_BATCH_FILE_BYTES
    cloud.s3.put_object(Bucket=UPLOADS, Key=object_key("acme", file_id), Body=too_large)

    deliver(cloud)

    batch = cloud.batches.get("acme", batch_id)
    assert batch.status == "failed" and batch.errors is not None
    assert [(e.code, e.message) for e in batch.errors.data] == [
        ("file_too_large", f"The file is {len(too_large)} bytes; a batch file may have at most 50000.")]
    assert executions(cloud) == []


def test_given_the_results_bucket_refuses_the_chunks_when_retried_later_then_the_batch_starts_once(cloud):
    cloud.s3.delete_bucket(Bucket=RESULTS)
    batch_id = submitted_through_the_api(cloud, valid_lines(7) + line("bad", model="nope"))
    [submitted] = [m["Body"] for m in received(cloud, cloud.ingestion_url) if "batch.submitted" in m["Body"]]

    assert run(cloud, [submitted]) == [0]  # raised: SQS brings it back
    assert cloud.batches.get("acme", batch_id).status == "validating" and executions(cloud) == []
    cloud.s3.create_bucket(Bucket=RESULTS)
    assert run(cloud, [submitted]) == []

    batch = cloud.batches.get("acme", batch_id)
    assert (batch.status, batch.request_counts.total, batch.request_counts.failed) == ("in_progress", 8, 1)
    [execution] = executions(cloud)
    chunks = execution["input"]["chunks"]
    items = [json.loads(cloud.s3.get_object(Bucket=RESULTS, Key=c["key"])["Body"].read()) for c in chunks]
    assert [[item["line"] for item in chunk] for chunk in items] == [[1, 2], [3, 4], [5, 6], [7]]


def test_given_a_batch_cancelled_while_validating_when_ingested_then_its_workflow_starts_to_finalize_it(cloud):
    batch_id = submitted_through_the_api(cloud, valid_lines(3))
    call(cloud.api, "POST", f"/v1/batches/{batch_id}/cancel", principal=ACME)

    deliver(cloud)

    batch = cloud.batches.get("acme", batch_id)
    assert (batch.status, batch.request_counts.total) == ("cancelling", 3)
    assert [e["name"] for e in executions(cloud)] == [batch_id]


# --- direct uploads into <tenant>/batches/ ---------------------------------------------------------


def test_given_a_direct_upload_when_ingested_then_a_file_and_a_batch_run_by_the_service_principal_start(cloud):
    data = valid_lines(3)
    direct_upload(cloud, "nightly run (1).jsonl", data)  # the key arrives URL-encoded: spaces as +

    deliver(cloud)

    batch = the_batch(cloud)
    assert (batch.status, batch.endpoint, batch.completion_window) == ("in_progress", "/v1/chat/completions", "24h")
    assert batch.metadata == {"source": "s3", "key": "acme/batches/nightly run (1).jsonl"}
    assert batch.request_counts.total == 3
    file = cloud.files.get("acme", batch.input_file_id)
    assert (file.filename, file.purpose, file.status, file.bytes) == ("nightly run (1).jsonl", "batch", "processed",
                                                                      len(data))
    assert cloud.s3.get_object(Bucket=UPLOADS, Key=object_key("acme", file.id))["Body"].read() == data
    principal = cloud.batches.principal("acme", batch.id)
    assert (principal.kind, principal.principal_id, principal.scopes) == ("service", "s3-upload",
                                                                          frozenset({"batch"}))
    [execution] = executions(cloud)
    assert execution["input"]["principal"]["kind"] == "service"
    assert execution["input"]["safety"] == POLICY_SAFETY.model_dump(mode="json", exclude={"canary_seed"})
    # The copy into files/ is announced like any upload.
    assert [(e.type, e.data["file_id"]) for e in notifications(cloud)] == [("file.ingested", file.id)]


@pytest.mark.parametrize("tenant", ["ghost", "retired"])
def test_given_a_direct_upload_of_an_unknown_or_disabled_tenant_when_ingested_then_it_is_dropped(cloud, tenant):
    cloud.tenants.create_tenant(TenantCreate(tenant_id="retired", name="Retired"))
    cloud.tenants.update_tenant("retired", TenantUpdate(status="disabled"))
    direct_upload(cloud, "x.jsonl", valid_lines(1), tenant=tenant)

    deliver(cloud)  # succeeds: nobody could be told, a retry would change nothing

    assert cloud.batches.list(tenant).data == []
    assert cloud.files.list(tenant).data == []
    assert notifications(cloud) == [] and executions(cloud) == []


def test_given_the_same_s3_event_twice_when_ingested_then_it_is_processed_once(cloud):
    direct_upload(cloud, "twice.jsonl", valid_lines(2))
    [body] = [m["Body"] for m in received(cloud, cloud.ingestion_url) if "twice.jsonl" in m["Body"]]

    assert run(cloud, [body, body]) == []  # a duplicate in the same delivery
    assert run(cloud, [body]) == []  # and a later one
    records = cloud.dynamodb.scan(TableName="idempotency")["Items"]
    assert [r["status"]["S"] for r in records if r["id"]["S"].startswith("ingestion#")] == ["COMPLETED"]
    forget_processed_messages(cloud)
    assert run(cloud, [body]) == []  # and one after the idempotency record expired

    batch = the_batch(cloud)
    assert batch.status == "in_progress"
    assert len(cloud.files.list("acme").data) == 1
    assert [e["name"] for e in executions(cloud)] == [batch.id]


def test_given_a_redelivered_batch_submitted_when_ingested_again_then_nothing_changes(cloud):
    batch_id = submitted_through_the_api(cloud, valid_lines(2) + line("bad", model="nope"))
    bodies = deliver(cloud)
    [submitted] = [b for b in bodies if '"batch.submitted"' in b]
    before = cloud.batches.get("acme", batch_id)

    assert run(cloud, [submitted]) == []
    forget_processed_messages(cloud)
    assert run(cloud, [submitted]) == []

    assert cloud.batches.get("acme", batch_id) == before
    assert before.request_counts.failed == 1 and len(list(cloud.batches.line_results("acme", batch_id))) == 1
    assert [e["name"] for e in executions(cloud)] == [batch_id]


def test_given_the_workflow_cannot_start_when_retried_later_then_it_starts_once_with_nothing_doubled(
        cloud, monkeypatch):
    arn = cloud.machine.replace(MACHINE, "not-yet-deployed")
    monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", arn)
    reset_runtime()
    batch_id = submitted_through_the_api(cloud, valid_lines(1) + line("bad", model="nope"))
    [submitted] = [m["Body"] for m in received(cloud, cloud.ingestion_url) if "batch.submitted" in m["Body"]]

    assert run(cloud, [submitted]) == [0]  # raised: SQS brings it back
    create_pass_state_machine(cloud.sfn, "not-yet-deployed")
    assert run(cloud, [submitted]) == []

    batch = cloud.batches.get("acme", batch_id)
    assert (batch.status, batch.request_counts.total, batch.request_counts.failed) == ("in_progress", 2, 1)
    assert [e["executionArn"] for e in cloud.sfn.list_executions(stateMachineArn=arn)["executions"]] == [
        f"{arn.replace(':stateMachine:', ':execution:')}:{batch_id}"]


# --- messages ----------------------------------------------------------------------------------


def test_given_a_mixed_delivery_when_one_record_fails_then_only_that_record_is_reported(cloud, monkeypatch):
    monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", cloud.machine.replace(MACHINE, "missing"))
    reset_runtime()
    cloud.files.create("acme", filename="a.jsonl", purpose="batch", data=valid_lines(1))
    [file_event] = [m["Body"] for m in received(cloud, cloud.ingestion_url) if "ObjectCreated" in m["Body"]]
    batch_id = submitted_through_the_api(cloud, valid_lines(1))
    submitted = json.dumps({"type": "batch.submitted", "tenant_id": "acme", "batch_id": batch_id})
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": UPLOADS})

    failed = run(cloud, [file_event, "not json at all", test_event, submitted,
                         json.dumps({"type": "batch.submitted", "tenant_id": "acme", "batch_id": "../x"})])

    # Then the record that could not start and the two unreadable ones (poison: to the DLQ after
    # maxReceiveCount) are reported; the file event is done and the test event ignored
    assert failed == [1, 3, 4]
    assert [e.type for e in notifications(cloud)] == ["file.ingested"]


def test_given_a_batch_submitted_for_a_batch_that_does_not_exist_then_it_is_dropped(cloud):
    missing = json.dumps({"type": "batch.submitted", "tenant_id": "acme", "batch_id": "batch_" + "0" * 24})

    assert run(cloud, [missing]) == []
    assert notifications(cloud) == [] and executions(cloud) == []


def test_given_an_object_in_another_bucket_then_it_is_dropped_so_results_never_loop_back(cloud):
    foreign = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                       "eventTime": "2026-01-01T00:00:00.000Z",
                                       "s3": {"bucket": {"name": RESULTS},
                                              "object": {"key": "acme/batches/batch_x/chunks/00000.json"}}}]})

    assert run(cloud, [foreign]) == []
    assert cloud.batches.list("acme").data == []


# --- parts -------------------------------------------------------------------------------------


class FakeStepFunctions:
    """Answers StartExecution as Step Functions does for a name already used with another input."""

    def __init__(self) -> None:
        self.started: dict[str, str] = {}

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:  # noqa: N803 - boto3's names
        if name in self.started and self.started[name] != input:
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}}, "StartExecution")
        self.started[name] = input
        return {"executionArn": f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"}


def test_given_an_execution_already_there_when_started_again_then_it_is_a_success_with_the_same_arn():
    client = FakeStepFunctions()
    starter = ExecutionStarter("arn:aws:states:us-east-1:123456789012:stateMachine:batch", client)

    first = starter.start("batch_1", {"chunks": []})
    again = starter.start("batch_1", {"chunks": [], "safety": {"changed": True}})

    assert first == again == starter.execution_arn("batch_1") == (
        "arn:aws:states:us-east-1:123456789012:execution:batch:batch_1")


def test_lines_are_counted_across_chunk_boundaries_without_blank_ones():
    data = b'{"a": 1}\n\n  \r\n{"b":\n 2}\r\n{"c": 3}'

    assert count_lines(iter([data[i:i + 3] for i in range(0, len(data), 3)])) == 4
    assert count_lines(iter([])) == 0
