"""The Batch API against moto (DynamoDB, S3, KMS, SQS), driven through the api handler and the real OpenAI SDK."""

from __future__ import annotations

import json
from types import SimpleNamespace

import openai
import pytest
from deepseek_gateway.auth.authenticator import principal_from_context
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.models import BATCH_ID
from deepseek_gateway.batches.objects import OutputFiles
from deepseek_gateway.web.services import reset_services
from local_cloud.moto_resources import create_encrypted_bucket, create_table

from tests.helpers import load_handler
from tests.integration.test_files_api import BATCH_LINES, call, error_of, sdk, upload

BUCKET = "gateway-uploads"
TABLE = "jobs"
ALICE = Principal(tenant_id="tenant-a", principal_id="keybatchaaaaaaaa", kind="api_key",
                  scopes=frozenset({"batch", "files"}), key_id="keybatchaaaaaaaa")
BOB = Principal(tenant_id="tenant-b", principal_id="keybatchbbbbbbbb", kind="api_key",
                scopes=frozenset({"batch", "files"}), key_id="keybatchbbbbbbbb")
FILES_ONLY = Principal(tenant_id="tenant-a", principal_id="keyfilesonlyaaaa", kind="api_key",
                       scopes=frozenset({"files"}), key_id="keyfilesonlyaaaa")
UNKNOWN_BATCH = "batch_" + "0" * 24


def _aws(monkeypatch, *, with_queue: bool = True) -> SimpleNamespace:
    import boto3

    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="uploads")["KeyMetadata"]["KeyId"]
    s3 = boto3.client("s3", region_name="us-east-1")
    create_encrypted_bucket(s3, BUCKET, key_id)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_table(dynamodb, TABLE)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="ingestion")["QueueUrl"]
    monkeypatch.setenv("UPLOADS_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("JOBS_TABLE_NAME", TABLE)
    if with_queue:
        monkeypatch.setenv("INGESTION_QUEUE_URL", queue_url)
    else:
        monkeypatch.delenv("INGESTION_QUEUE_URL", raising=False)
    reset_services()
    return SimpleNamespace(s3=s3, dynamodb=dynamodb, sqs=sqs, queue_url=queue_url)


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    with mock_aws():
        yield _aws(monkeypatch)
        reset_services()


@pytest.fixture
def api(aws):
    return load_handler("api")


def queued(aws) -> list[dict]:
    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def uploaded_file(api, principal: Principal = ALICE) -> str:
    response = upload(api, BATCH_LINES, principal=principal)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])["id"]


def create(api, body, principal: Principal = ALICE) -> dict:
    return call(api, "POST", "/v1/batches", principal=principal, body=body)


def batch_body(file_id: str, **extra) -> dict:
    return {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h", **extra}


def body_of(response: dict) -> dict:
    return json.loads(response["body"])


# --- the SDK, unchanged ------------------------------------------------------------------------


def test_given_an_uploaded_file_when_the_sdk_creates_retrieves_lists_and_cancels_then_it_sees_openai_batches(api, aws):
    client = sdk(api, ALICE)
    file = client.files.create(file=("batch.jsonl", BATCH_LINES), purpose="batch")

    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h",
                                  metadata={"run": "nightly"})

    assert BATCH_ID.match(batch.id)
    assert (batch.object, batch.status, batch.endpoint, batch.input_file_id, batch.completion_window) == (
        "batch", "validating", "/v1/chat/completions", file.id, "24h")
    assert batch.metadata == {"run": "nightly"}
    assert batch.expires_at == batch.created_at + 86_400
    assert (batch.request_counts.total, batch.output_file_id, batch.errors) == (0, None, None)
    assert client.batches.retrieve(batch.id) == batch
    assert [b.id for b in client.batches.list()] == [batch.id]
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling" and cancelled.cancelling_at is not None


def test_when_a_batch_is_created_then_batch_submitted_is_queued_for_the_ingestion(api, aws):
    file_id = uploaded_file(api)

    response = create(api, batch_body(file_id))

    assert response["statusCode"] == 200
    batch = body_of(response)
    [message] = queued(aws)
    assert message["type"] == "batch.submitted"
    assert (message["tenant_id"], message["batch_id"]) == ("tenant-a", batch["id"])
    assert message["correlation_id"]  # the request id, so the ingestion's logs join the request's
    # OpenAI's batch object shows unset fields as null.
    assert batch["output_file_id"] is None and batch["errors"] is None and batch["completed_at"] is None


# --- the input file ----------------------------------------------------------------------------


def test_given_another_tenants_file_when_creating_a_batch_then_404_exactly_like_an_unknown_file(api, aws):
    bobs = uploaded_file(api, BOB)
    unknown = "file-" + "0" * 24

    theirs = create(api, batch_body(bobs))
    missing = create(api, batch_body(unknown))

    assert theirs["statusCode"] == missing["statusCode"] == 404
    assert error_of(theirs) == {**error_of(missing), "message": error_of(missing)["message"].replace(unknown, bobs)}
    assert (error_of(theirs)["code"], error_of(theirs)["param"]) == ("file_not_found", "input_file_id")
    assert queued(aws) == []


def test_given_a_batch_output_file_when_creating_a_batch_from_it_then_400_naming_the_input_file(api, aws):
    output = OutputFiles(TABLE, BUCKET, aws.dynamodb, lambda: aws.s3).write(
        "tenant-a", "file-" + "1" * 24, filename="batch_x_output.jsonl", data=b'{"id": "x"}\n', created_at=1)

    response = create(api, batch_body(output.id))

    assert response["statusCode"] == 400
    assert (error_of(response)["param"], error_of(response)["code"]) == ("input_file_id", "invalid_input_file")
    assert "`batch_output`" in error_of(response)["message"]


def test_given_a_presigned_upload_not_yet_arrived_when_creating_a_batch_then_409_file_not_ready(api, aws):
    pending = call(api, "POST", "/v1/files/uploads", principal=ALICE,
                   body={"filename": "big.jsonl", "purpose": "batch", "bytes": 1000})
    file_id = body_of(pending)["file"]["id"]

    response = create(api, batch_body(file_id))

    assert response["statusCode"] == 409
    assert (error_of(response)["code"], error_of(response)["param"]) == ("file_not_ready", "input_file_id")


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id", "invalid_request"),
    ({"input_file_id": "file-x", "endpoint": "/v1/embeddings", "completion_window": "24h"}, "endpoint",
     "invalid_request"),
    ({"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "48h"},
     "completion_window", "invalid_request"),
    ({"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h", "tenant_id": "b"},
     "tenant_id", "unrecognized_argument"),
    ({"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h",
      "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_request"),
])
def test_given_a_bad_body_when_creating_a_batch_then_400_names_the_parameter(api, aws, body, param, code):
    response = create(api, body)

    assert response["statusCode"] == 400
    assert (error_of(response)["param"], error_of(response)["code"]) == (param, code)
    assert queued(aws) == []


def test_given_a_body_that_is_not_json_when_creating_a_batch_then_400_invalid_json(api):
    response = call(api, "POST", "/v1/batches", principal=ALICE, raw_body="{not json")

    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "invalid_json"


# --- retrieve, list, cancel --------------------------------------------------------------------


def test_given_another_tenants_batch_when_retrieving_or_cancelling_it_then_404_like_an_unknown_batch(api):
    mine = body_of(create(api, batch_body(uploaded_file(api))))["id"]

    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        theirs = call(api, method, f"/v1/batches/{mine}{suffix}", principal=BOB)
        unknown = call(api, method, f"/v1/batches/{UNKNOWN_BATCH}{suffix}", principal=BOB)
        assert theirs["statusCode"] == unknown["statusCode"] == 404
        assert error_of(theirs)["message"] == error_of(unknown)["message"].replace(UNKNOWN_BATCH, mine)
        assert error_of(theirs)["code"] == "batch_not_found"
    assert body_of(call(api, "GET", "/v1/batches", principal=BOB))["data"] == []
    assert body_of(call(api, "GET", f"/v1/batches/{mine}", principal=ALICE))["status"] == "validating"


def test_given_three_batches_when_listing_two_at_a_time_then_pages_run_newest_first(api):
    file_id = uploaded_file(api)
    ids = [body_of(create(api, batch_body(file_id)))["id"] for _ in range(3)]

    first = body_of(call(api, "GET", "/v1/batches", principal=ALICE, query={"limit": "2"}))
    second = body_of(call(api, "GET", "/v1/batches", principal=ALICE, query={"limit": "2", "after": first["last_id"]}))

    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    assert [b["id"] for b in second["data"]] == ids[:1] and second["has_more"] is False
    assert first["object"] == "list" and first["first_id"] == ids[2]


@pytest.mark.parametrize(("query", "param"), [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                                               ({"limit": "ten"}, "limit"), ({"after": "file-abc"}, "after")])
def test_given_a_bad_page_request_when_listing_then_400_names_the_parameter(api, query, param):
    response = call(api, "GET", "/v1/batches", principal=ALICE, query=query)

    assert response["statusCode"] == 400
    assert error_of(response)["param"] == param


def test_given_a_cancelling_batch_when_cancelled_again_then_it_is_unchanged(api):
    batch_id = body_of(create(api, batch_body(uploaded_file(api))))["id"]

    first = body_of(call(api, "POST", f"/v1/batches/{batch_id}/cancel", principal=ALICE))
    again = call(api, "POST", f"/v1/batches/{batch_id}/cancel", principal=ALICE)

    assert again["statusCode"] == 200
    assert body_of(again) == first and first["status"] == "cancelling"


# --- scopes and credentials --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/batches"), ("GET", "/v1/batches"),
                                              ("GET", f"/v1/batches/{UNKNOWN_BATCH}"),
                                              ("POST", f"/v1/batches/{UNKNOWN_BATCH}/cancel")])
def test_given_a_credential_without_the_batch_scope_when_calling_any_batch_route_then_403(api, method, path):
    response = call(api, method, path, principal=FILES_ONLY, body=batch_body("file-x") if method == "POST" else None)

    assert response["statusCode"] == 403
    assert error_of(response)["code"] == "insufficient_scope"


def test_given_no_authorizer_context_when_listing_batches_then_401(api):
    assert call(api, "GET", "/v1/batches", principal=None)["statusCode"] == 401


def test_given_an_authorizer_context_claiming_the_service_kind_then_it_is_read_as_an_api_key():
    # Only the gateway itself acts as `service` (direct S3 uploads); a request never can.
    context = {"tenant_id": "tenant-a", "principal_id": "s3-upload", "kind": "service", "scopes": "batch"}

    principal = principal_from_context(context)

    assert principal is not None and principal.kind == "api_key"


def test_given_the_sdk_without_the_batch_scope_then_it_raises_permission_denied(api):
    with pytest.raises(openai.PermissionDeniedError):
        sdk(api, FILES_ONLY).batches.list()


# --- the queue ---------------------------------------------------------------------------------


def test_given_no_ingestion_queue_when_creating_a_batch_then_500_and_the_batch_is_failed_not_left_validating(
        monkeypatch):
    from moto import mock_aws

    with mock_aws():
        _aws(monkeypatch, with_queue=False)
        api = load_handler("api")
        file_id = uploaded_file(api)

        response = create(api, batch_body(file_id))

        assert response["statusCode"] == 500
        [batch] = body_of(call(api, "GET", "/v1/batches", principal=ALICE))["data"]
        assert batch["status"] == "failed"
        assert batch["errors"]["data"][0]["code"] == "internal_error"
        reset_services()
