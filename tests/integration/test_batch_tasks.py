"""The batch function's tasks against moto (DynamoDB, S3, SQS): billing once, conservation, idempotent finalize."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from deepseek_gateway.batches.billing import Billing
from deepseek_gateway.batches.errors import BatchNotFoundError
from deepseek_gateway.batches.lines import chunk_bodies, chunk_key, validate_lines
from deepseek_gateway.batches.objects import OutputFiles, ResultsBucket
from deepseek_gateway.batches.runtime import reset_task_services, retention_lookup, sqs_sender
from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.batches.tasks import BatchTaskServices, run_task
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.cost import answer_cost
from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.files.store import FileStore
from deepseek_gateway.models.chat import Usage

from tests.fakes import FakeClock
from tests.helpers import ROOT, FakeLambdaContext, load_handler
from tests.integration.test_batch_store import ACME, GLOBEX, create_jobs_table

UPLOADS, RESULTS, JOBS = "gateway-uploads", "gateway-results", "jobs"
ENDPOINT = "/v1/chat/completions"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LEAK = "secret-stack-detail"


def _table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")


@pytest.fixture
def env(monkeypatch):
    import boto3
    from local_cloud.moto_patches import serialize_dynamodb
    from moto import mock_aws

    serialize_dynamodb()
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        create_jobs_table(db)
        _table(db, "usage")
        _table(db, "tenants")
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (UPLOADS, RESULTS):
            s3.create_bucket(Bucket=bucket)
        kms_key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        clock = FakeClock(now=NOW)
        services = BatchTaskServices(
            store=BatchStore(JOBS, db, clock=clock, sleep=clock.sleep), billing=Billing("usage", db, clock=clock),
            catalogue=load_catalogue(), results=ResultsBucket(RESULTS, lambda: s3),
            outputs=OutputFiles(JOBS, UPLOADS, db, lambda: s3, kms_key_id=kms_key),
            retention_days=lambda tenant_id: 30, notify=sqs_sender(queue, lambda: sqs), clock=clock)
        files = FileStore(JOBS, UPLOADS, db, lambda: s3)
        yield SimpleNamespace(db=db, s3=s3, sqs=sqs, queue=queue, clock=clock, services=services, files=files,
                              store=services.store, monkeypatch=monkeypatch, kms_key=kms_key)


def line(custom_id: str, **changes: Any) -> bytes:
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": f"Hi {custom_id}"}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body, **changes}).encode()


def submit(env, lines: list[bytes], *, principal=ACME, chunk_items: int = 2):
    """What the ingestion does with a file: the batch, invalid lines' results, chunks, then start."""
    tenant = principal.tenant_id
    batch = env.store.create(tenant, input_file_id="file-" + "i" * 24, endpoint=ENDPOINT, completion_window="24h",
                             metadata=None, principal=principal, window_s=86_400)
    checked = validate_lines(b"\n".join(lines), endpoint=ENDPOINT, catalogue=load_catalogue(), max_lines=100,
                             max_line_bytes=65_536)
    for error in checked.errors:
        env.store.write_line_result(tenant, batch.id, line=error.line, custom_id=error.custom_id, kind="error",
                                    result=error.result())
    chunks = []
    for index, body in enumerate(chunk_bodies(checked.items, max_items=chunk_items, max_bytes=1_000_000)):
        env.s3.put_object(Bucket=RESULTS, Key=chunk_key(tenant, batch.id, index), Body=body)
        chunks.append({"index": index, "key": chunk_key(tenant, batch.id, index)})
    env.store.start(tenant, batch.id, total=checked.total, execution_arn=f"arn:aws:states:::execution:b:{batch.id}")
    return batch, chunks


def completion(prompt: int = 100, answer: int = 50) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(NOW), "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}}


def state(batch_id: str, item: dict[str, Any], principal=ACME, **steps: Any) -> dict[str, Any]:
    return {"tenant_id": principal.tenant_id, "batch_id": batch_id, "principal": principal.model_dump(mode="json"),
            "safety": {}, "item": item, **steps}


def answered(batch_id: str, item: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    done = completion(**kwargs)
    return state(batch_id, item, input={"blocked": False, "categories": []}, completion=done,
                 route={"provider": "deepseek", "model": "deepseek-chat", "remaining": [], "failures": []},
                 output={"blocked": False, "categories": [], "completion": done})


def failed(batch_id: str, item: dict[str, Any], error: str, message: str = "") -> dict[str, Any]:
    cause = json.dumps({"errorType": error, "errorMessage": message, "stackTrace": [LEAK]})
    return state(batch_id, item, error={"Error": error, "Cause": cause})


def task(env, **event: Any) -> dict[str, Any]:
    return run_task(event, env.services)


def items_of(env, batch, chunks) -> list[dict[str, Any]]:
    return [i for c in chunks for i in task(env, action="load_chunk", tenant_id="acme", batch_id=batch.id,
                                            chunk=c)["items"]]


def usage_items(env) -> list[dict[str, Any]]:
    return env.db.scan(TableName="usage")["Items"]


def counter(env, tenant: str = "acme") -> dict[str, Any]:
    return env.db.get_item(TableName="usage", Key={"pk": {"S": f"LIMITS#T#{tenant}"}, "sk": {"S": "STATE"}})["Item"]


def messages(env) -> list[dict[str, Any]]:
    got = env.sqs.receive_message(QueueUrl=env.queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def file_lines(env, file_id: str | None, tenant: str = "acme") -> list[dict[str, Any]]:
    assert file_id is not None
    content = env.files.read(tenant, file_id)
    assert content.file.purpose == "batch_output" and content.file.status == "processed"
    return [json.loads(text) for text in content.data.decode().splitlines()]


# --- record --------------------------------------------------------------------------------------


def test_given_an_answered_line_recorded_twice_then_it_is_billed_once_and_counted_once(env):
    batch, chunks = submit(env, [line("a")])
    (item,) = items_of(env, batch, chunks)
    cost = answer_cost(load_catalogue().resolve("deepseek-chat"), Usage(prompt_tokens=100, completion_tokens=50))

    first = task(env, action="record", state=answered(batch.id, item))
    env.clock.advance(1)
    second = task(env, action="record", state=answered(batch.id, item))

    assert first == second == {"kind": "output"}
    assert env.store.get("acme", batch.id).request_counts.completed == 1
    records = [i for i in usage_items(env) if i["sk"]["S"].startswith("REQ#")]
    assert len(records) == 1 and Decimal(records[0]["cost_usd"]["N"]) == cost > 0
    assert records[0]["request_id"]["S"] == f"{batch.id}:1" and records[0]["provider"]["S"] == "deepseek"
    assert int(records[0]["expires_at"]["N"]) == int(NOW) + 30 * 86_400
    day = env.db.get_item(TableName="usage", Key={"pk": {"S": "TENANT#acme"}, "sk": {"S": "DAY#2026-01-01"}})["Item"]
    assert day["requests"]["N"] == "1" and day["prompt_tokens"]["N"] == "100"
    spend = counter(env)
    assert Decimal(spend["committed"]["N"]) == cost and spend["month"]["S"] == "2026-01"
    assert Decimal(spend[f"k_{ACME.key_id}_cost"]["N"]) == cost


def test_given_a_budget_when_batch_lines_spend_past_its_thresholds_then_each_is_announced_once(env):
    # Given a tenant whose monthly budget one answered line takes past 50 % and two lines past 100 %
    cost = answer_cost(load_catalogue().resolve("deepseek-chat"), Usage(prompt_tokens=100, completion_tokens=50))
    env.services.budget = lambda tenant_id: cost * Decimal("1.5") if tenant_id == "acme" else None
    batch, chunks = submit(env, [line("a"), line("b")])
    first, second = items_of(env, batch, chunks)
    # When the first line is recorded (twice: a retry), then the second
    task(env, action="record", state=answered(batch.id, first))
    task(env, action="record", state=answered(batch.id, first))
    after_first = [m for m in messages(env) if m.get("type") == "budget.threshold"]
    task(env, action="record", state=answered(batch.id, second))
    after_second = [m for m in messages(env) if m.get("type") == "budget.threshold"]
    # Then 50 % is announced once after the first, 80 % and 100 % after the second, as the chat path does
    assert [e["data"]["threshold_percent"] for e in after_first] == [50]
    assert sorted(e["data"]["threshold_percent"] for e in after_second) == [80, 100]
    assert all(e["tenant_id"] == "acme" and e["correlation_id"] == batch.id for e in after_first + after_second)


def test_given_a_counter_of_last_month_when_a_line_is_billed_then_the_month_rolls_over_first(env):
    env.db.put_item(TableName="usage", Item={"pk": {"S": "LIMITS#T#acme"}, "sk": {"S": "STATE"},
                                             "month": {"S": "2025-12"}, "committed": {"N": "50"}, "win": {"N": "1"},
                                             "req": {"N": "3"}, "tok": {"N": "9"}, "leases": {"M": {}},
                                             f"k_{ACME.key_id}_cost": {"N": "7"}})
    batch, chunks = submit(env, [line("a"), line("b")])
    first, second = items_of(env, batch, chunks)

    for item in (first, second):
        task(env, action="record", state=answered(batch.id, item, prompt=1_000_000, answer=0))

    spend = counter(env)
    price = load_catalogue().resolve("deepseek-chat").prices.input
    assert spend["month"]["S"] == "2026-01" and Decimal(spend["committed"]["N"]) == 2 * price
    assert Decimal(spend[f"k_{ACME.key_id}_cost"]["N"]) == 2 * price


@pytest.mark.parametrize(("steps", "code", "message"), [
    ({"error": {"Error": "ModelNotFoundError", "Cause": json.dumps({"errorMessage": "No model x."})}},
     "model_not_found", "No model x."),
    ({"error": {"Error": "PolicyViolation", "Cause": json.dumps({"errorMessage": "Denied by rule r1."})}},
     "policy_violation", "Denied by rule r1."),
    ({"error": {"Error": "ProviderClientError", "Cause": json.dumps({"errorMessage": "Bad temperature."})}},
     "upstream_invalid_request", "Bad temperature."),
    ({"error": {"Error": "BatchCancelledError", "Cause": "not json"}}, "batch_cancelled", None),
    ({"error": {"Error": "KeyError", "Cause": json.dumps({"errorMessage": LEAK})}}, "internal_error", None),
    ({"error": {"Error": "GatewayError", "Cause": json.dumps({"errorMessage": LEAK})}}, "internal_error", None),
    ({"error": {"Error": "States.Timeout", "Cause": LEAK}}, "timeout", None),
    ({"input": {"blocked": True, "categories": ["prompt_injection"]}}, "content_policy_violation", None),
    ({"input": {"blocked": False}, "output": {"blocked": True, "categories": ["pii"], "completion": completion()},
      "completion": completion(), "route": {"provider": "deepseek", "model": "deepseek-chat"}}, "content_filter", None),
])
def test_given_a_line_that_did_not_succeed_when_recorded_then_its_error_code_comes_from_its_class(env, steps, code,
                                                                                                  message):
    batch, chunks = submit(env, [line("a")])
    (item,) = items_of(env, batch, chunks)

    assert task(env, action="record", state=state(batch.id, item, **steps)) == {"kind": "error"}

    (result,) = env.store.line_results("acme", batch.id)
    assert result.kind == "error" and result.result["response"] is None
    assert result.result["error"]["code"] == code and LEAK not in json.dumps(result.result)
    if message:
        assert result.result["error"]["message"] == message
    assert env.store.get("acme", batch.id).request_counts.failed == 1
    assert usage_items(env) == []  # nothing billed


def test_given_a_state_whose_principal_is_another_tenants_when_recorded_then_it_is_refused(env):
    batch, chunks = submit(env, [line("a")])
    (item,) = items_of(env, batch, chunks)
    forged = {**answered(batch.id, item), "principal": GLOBEX.model_dump(mode="json")}

    with pytest.raises(InvalidRequestError):
        task(env, action="record", state=forged)
    with pytest.raises(BatchNotFoundError):
        task(env, action="record", state=answered(batch.id, item) | {"tenant_id": "globex",
                                                                   "principal": GLOBEX.model_dump(mode="json")})
    assert list(env.store.line_results("acme", batch.id)) == [] and usage_items(env) == []


# --- load_chunk ----------------------------------------------------------------------------------


def test_given_chunks_when_loaded_then_items_come_back_until_the_batch_is_cancelled(env):
    batch, chunks = submit(env, [line("a"), line("b"), line("c")])

    loaded = items_of(env, batch, chunks)
    env.store.request_cancel("acme", batch.id)

    assert [(i["line"], i["custom_id"]) for i in loaded] == [(1, "a"), (2, "b"), (3, "c")]
    assert items_of(env, batch, chunks) == []


def test_given_a_chunk_key_outside_the_batch_when_loaded_then_it_is_refused(env):
    batch, chunks = submit(env, [line("a")])
    other, other_chunks = submit(env, [line("z")], principal=GLOBEX)

    with pytest.raises(InvalidRequestError):
        task(env, action="load_chunk", tenant_id="acme", batch_id=batch.id, chunk=other_chunks[0])
    with pytest.raises(BatchNotFoundError):
        task(env, action="load_chunk", tenant_id="acme", batch_id=other.id,
             chunk={"index": 0, "key": chunk_key("acme", other.id, 0)})


# --- finalize ------------------------------------------------------------------------------------


def mixed_batch(env):
    """Lines: 1 answered, 2 invalid, 3 failed, 4 blank (not counted), 5 answered, 6 and 7 never run (cancelled)."""
    batch, chunks = submit(env, [line("a"), line("bad", method="GET"), line("c"), b"", line("e"), line("f"),
                                 line("g")])
    items = {i["custom_id"]: i for i in items_of(env, batch, chunks)}
    task(env, action="record", state=answered(batch.id, items["a"]))
    task(env, action="record", state=failed(batch.id, items["c"], "UpstreamError", "Every provider failed."))
    task(env, action="record", state=answered(batch.id, items["e"]))
    env.store.request_cancel("acme", batch.id)
    return batch


def test_given_every_kind_of_line_when_finalized_then_each_line_is_in_exactly_one_file_exactly_once(env):
    batch = mixed_batch(env)

    done = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)

    assert done["status"] == "cancelled" and done["request_counts"] == {"total": 6, "completed": 2, "failed": 4}
    outputs, errors = file_lines(env, done["output_file_id"]), file_lines(env, done["error_file_id"])
    assert [o["custom_id"] for o in outputs] == ["a", "e"]
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("bad", "invalid_request"), ("c", "upstream_error"), ("f", "batch_cancelled"), ("g", "batch_cancelled")]
    every = [r["custom_id"] for r in outputs + errors]
    assert sorted(every) == ["a", "bad", "c", "e", "f", "g"] and len(set(r["id"] for r in outputs + errors)) == 6
    for output in outputs:
        assert output["id"].startswith("batch_req_") and output["error"] is None
        assert output["response"]["status_code"] == 200 and output["response"]["body"]["object"] == "chat.completion"
        assert output["response"]["request_id"].startswith(batch.id)
    for error in errors:
        assert error["response"] is None and set(error["error"]) == {"code", "message"}
    assert sum(1 for r in env.store.line_results("acme", batch.id)) == 6


def test_given_a_finalized_batch_then_its_work_chunks_are_gone_in_every_version(env):
    # Given a batch whose chunks (the request bodies) were written twice, as a redelivered ingestion does
    batch = mixed_batch(env)
    env.s3.put_bucket_versioning(Bucket=RESULTS, VersioningConfiguration={"Status": "Enabled"})
    for key in [o["Key"] for o in env.s3.list_objects_v2(Bucket=RESULTS).get("Contents", [])]:
        body = env.s3.get_object(Bucket=RESULTS, Key=key)["Body"].read()
        env.s3.put_object(Bucket=RESULTS, Key=key, Body=body)
    # When it is finalized
    done = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)
    # Then the files hold every line and no version of any chunk is left in the results bucket
    assert done["request_counts"]["total"] == 6
    versions = env.s3.list_object_versions(Bucket=RESULTS, Prefix=f"acme/batches/{batch.id}/")
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []


def test_given_a_finalize_that_runs_twice_then_the_file_ids_and_contents_are_the_same(env):
    batch = mixed_batch(env)

    first = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)
    contents = [env.files.read("acme", first[k]).data for k in ("output_file_id", "error_file_id")]
    env.clock.advance(60)
    second = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)

    assert second == first
    assert [env.files.read("acme", first[k]).data for k in ("output_file_id", "error_file_id")] == contents
    events = messages(env)
    assert [e["type"] for e in events] == ["batch.completed"] * 2 and events[0] == events[1]
    assert events[0]["correlation_id"] == batch.id and events[0]["data"]["status"] == "cancelled"


class FailingOutputs:
    """Writes the first file, then fails, as a finalize killed half-way through would."""

    def __init__(self, outputs: OutputFiles) -> None:
        self._outputs = outputs
        self.writes = 0

    def write(self, *args: Any, **kwargs: Any) -> Any:
        self.writes += 1
        if self.writes > 1:
            raise TimeoutError("finalize interrupted")
        return self._outputs.write(*args, **kwargs)


def test_given_a_finalize_interrupted_after_the_claim_when_run_again_then_it_writes_the_claimed_files(env):
    batch = mixed_batch(env)
    real = env.services.outputs
    env.services.outputs = FailingOutputs(real)

    with pytest.raises(TimeoutError):
        task(env, action="finalize", tenant_id="acme", batch_id=batch.id)
    claimed = env.store.get("acme", batch.id)
    env.services.outputs = real
    done = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)

    assert claimed.status == "cancelling" and claimed.output_file_id and claimed.error_file_id
    assert (done["output_file_id"], done["error_file_id"]) == (claimed.output_file_id, claimed.error_file_id)
    assert len(file_lines(env, done["output_file_id"])) == 2 and len(file_lines(env, done["error_file_id"])) == 4
    listed = [f.id for f in env.files.list("acme").data if f.purpose == "batch_output"]
    assert sorted(listed) == sorted([claimed.output_file_id, claimed.error_file_id])


def test_given_a_batch_whose_window_passed_when_finalized_then_unrun_lines_expire_and_so_does_the_batch(env):
    batch, chunks = submit(env, [line("a"), line("b"), line("c")])
    first = items_of(env, batch, chunks)[0]
    task(env, action="record", state=answered(batch.id, first))
    env.clock.advance(86_401)

    assert items_of(env, batch, chunks) == []
    done = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)

    assert done["status"] == "expired" and done["expired_at"] == int(env.clock.now)
    assert [e["error"]["code"] for e in file_lines(env, done["error_file_id"])] == ["batch_expired"] * 2
    assert [o["custom_id"] for o in file_lines(env, done["output_file_id"])] == ["a"]


def test_given_a_batch_where_every_line_failed_when_finalized_then_it_completes_without_an_output_file(env):
    batch, chunks = submit(env, [line("a")])
    (item,) = items_of(env, batch, chunks)
    task(env, action="record", state=failed(batch.id, item, "QuotaExceededError", "Budget used up."))

    done = task(env, action="finalize", tenant_id="acme", batch_id=batch.id)

    assert done["status"] == "completed" and done["output_file_id"] is None
    assert [e["error"]["code"] for e in file_lines(env, done["error_file_id"])] == ["insufficient_quota"]
    (event,) = messages(env)
    assert event["type"] == "batch.completed" and event["data"]["request_counts"]["failed"] == 1


def test_given_another_tenants_batch_when_finalized_or_failed_then_it_does_not_exist(env):
    batch, _ = submit(env, [line("a")])

    for action in ("finalize", "fail"):
        with pytest.raises(BatchNotFoundError) as raised:
            task(env, action=action, tenant_id="globex", batch_id=batch.id)
        assert raised.value.status == 404
    assert env.store.get("acme", batch.id).status == "in_progress" and messages(env) == []


# --- fail and dispatch ---------------------------------------------------------------------------


def test_given_a_workflow_failure_when_failed_then_the_batch_fails_with_a_generic_message_and_says_so(env):
    batch, _ = submit(env, [line("a")])
    error = {"Error": "RuntimeError", "Cause": json.dumps({"errorMessage": LEAK})}

    done = task(env, action="fail", tenant_id="acme", batch_id=batch.id, error=error)
    again = task(env, action="fail", tenant_id="acme", batch_id=batch.id, error=error)

    assert done["status"] == "failed" and done["errors"]["data"][0]["code"] == "internal_error"
    assert again == done and LEAK not in json.dumps(done)
    events = messages(env)
    assert {e["id"] for e in events} == {f"evt_{batch.id}_failed"}
    assert events[0]["type"] == "batch.failed" and events[0]["correlation_id"] == batch.id


@pytest.mark.parametrize("event", [{}, {"action": "nope"}, {"action": "finalize"}, {"action": "record", "state": {}}])
def test_given_a_malformed_event_when_run_then_it_is_an_invalid_request(env, event):
    with pytest.raises(InvalidRequestError):
        run_task(event, env.services)


def test_given_the_handler_and_its_sample_event_when_invoked_then_it_records_through_settings_built_services(env):
    for name, value in {"JOBS_TABLE_NAME": JOBS, "USAGE_TABLE_NAME": "usage", "TENANTS_TABLE_NAME": "tenants",
                        "UPLOADS_BUCKET_NAME": UPLOADS, "RESULTS_BUCKET_NAME": RESULTS,
                        "NOTIFICATIONS_QUEUE_URL": env.queue}.items():
        env.monkeypatch.setenv(name, value)
    reset_task_services()
    handler = load_handler("batch")
    sample = json.loads((ROOT / "events" / "batch_record.json").read_text())
    batch = env.store.create("acme", input_file_id="file-" + "i" * 24, endpoint=ENDPOINT, completion_window="24h",
                             metadata=None, principal=ACME, window_s=86_400)
    sample["state"]["batch_id"] = batch.id
    try:
        result = handler.lambda_handler(sample, FakeLambdaContext(function_name="batch"))
    finally:
        reset_task_services()

    assert result == {"kind": "output"}
    (stored,) = env.store.line_results("acme", batch.id)
    assert stored.line == 3 and stored.result["response"]["body"]["choices"][0]["message"]["content"]


def test_given_a_tenant_policy_when_retention_is_looked_up_then_it_is_read_once_per_ttl(env):
    from deepseek_gateway.policy.models import PolicySettings, TenantPolicy

    class Tenants:
        calls = 0

        def get_policy(self, tenant_id: str) -> TenantPolicy | None:
            Tenants.calls += 1
            return TenantPolicy(settings=PolicySettings(retention_days=7)) if tenant_id == "acme" else None

    clock = FakeClock()
    lookup = retention_lookup(Tenants(), ttl_s=30, clock=clock)

    assert [lookup("acme"), lookup("acme"), lookup("globex")] == [7, 7, 90] and Tenants.calls == 2
    clock.advance(31)
    assert lookup("acme") == 7 and Tenants.calls == 3


def execution_event(batch_id: str, status: str) -> dict[str, Any]:
    """EventBridge's Step Functions status-change event for the batch's execution (the input is JSON text)."""
    return {"version": "0", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
            "detail": {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:batch:{batch_id}",
                       "status": status, "name": batch_id,
                       "input": json.dumps({"tenant_id": "acme", "batch_id": batch_id, "chunks": []})}}


def test_given_a_running_batch_whose_execution_was_stopped_then_the_batch_fails_and_the_tenant_is_told(env):
    # Given a batch in progress whose execution an operator stopped (no FailBatch ran)
    batch, _ = submit(env, [line("a")])
    assert env.store.get("acme", batch.id).status == "in_progress"
    # When EventBridge reports the execution ABORTED to the batch function
    done = run_task(execution_event(batch.id, "ABORTED"), env.services)
    # Then the batch is failed (not left in_progress forever) and batch.failed goes out
    assert done["status"] == "failed" and env.store.get("acme", batch.id).status == "failed"
    assert [m["type"] for m in messages(env)] == ["batch.failed"]


def test_given_a_finished_batch_when_its_execution_event_arrives_then_nothing_changes(env):
    batch = mixed_batch(env)
    task(env, action="finalize", tenant_id="acme", batch_id=batch.id)
    messages(env)  # what finalize sent
    done = run_task(execution_event(batch.id, "FAILED"), env.services)
    assert done["status"] == "cancelled" == env.store.get("acme", batch.id).status
    assert [m["type"] for m in messages(env) if m["type"] == "batch.failed"] == []
