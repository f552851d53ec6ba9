"""The Files API against moto (S3, DynamoDB, KMS), driven through the api handler and the real OpenAI SDK."""

from __future__ import annotations

import base64
import json
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import openai
import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.files.models import FILE_ID, UploadCreate, clean_filename
from deepseek_gateway.files.multipart import parse_form
from deepseek_gateway.files.store import FileLimits, FileStore, object_key
from deepseek_gateway.web.services import reset_services
from local_cloud.moto_resources import create_encrypted_bucket, create_table

from tests.helpers import FakeLambdaContext, api_event, load_handler

BUCKET = "gateway-uploads"
TABLE = "jobs"
TENANT_A = Principal(tenant_id="tenant-a", principal_id="keyfilesaaaaaaaa", kind="api_key",
                     scopes=frozenset({"files"}), key_id="keyfilesaaaaaaaa")
TENANT_B = Principal(tenant_id="tenant-b", principal_id="keyfilesbbbbbbbb", kind="api_key",
                     scopes=frozenset({"files"}), key_id="keyfilesbbbbbbbb")
CHAT_ONLY = Principal(tenant_id="tenant-a", principal_id="keychatonlyaaaaa", kind="api_key",
                      scopes=frozenset({"chat"}), key_id="keychatonlyaaaaa")
BATCH_LINES = b"".join(
    json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "deepseek-chat", "messages": [{"role": "user", "content": f"Hi {i} \u00e9\u4f60"}]}},
               ensure_ascii=False).encode() + b"\n"
    for i in range(3)
)
# API Gateway's binaryMediaTypes for this API: such request bodies reach Lambda base64-encoded.
BINARY_MEDIA_TYPES = ("multipart/form-data", "application/octet-stream")


# --- fixtures and the SDK bridge ---------------------------------------------------------------


def _new_aws(monkeypatch, **env: str):
    import boto3

    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="uploads")["KeyMetadata"]["KeyId"]
    s3 = boto3.client("s3", region_name="us-east-1")
    create_encrypted_bucket(s3, BUCKET, key_id, versioned=True, bucket_key=True)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    create_table(dynamodb, TABLE)
    monkeypatch.setenv("UPLOADS_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("JOBS_TABLE_NAME", TABLE)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_services()
    return SimpleNamespace(s3=s3, dynamodb=dynamodb, kms_key_id=key_id)


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    with mock_aws():
        yield _new_aws(monkeypatch)
        reset_services()


@pytest.fixture
def api(aws):
    return load_handler("api")


def handler_transport(handler, principal: Principal | None) -> httpx.MockTransport:
    """httpx request → REST proxy event as API Gateway builds it (binary media base64-encoded) → handler."""

    def send(request: httpx.Request) -> httpx.Response:
        headers = {k.title(): v for k, v in request.headers.items()}
        content = request.read()
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        binary = media in BINARY_MEDIA_TYPES
        raw = base64.b64encode(content).decode() if binary else content.decode()
        event = api_event(request.method, request.url.path, headers=headers, raw_body=raw or None,
                          principal=principal)
        event["isBase64Encoded"] = binary and bool(content)
        if request.url.query:
            event["queryStringParameters"] = dict(httpx.QueryParams(request.url.query))
        result = handler.lambda_handler(event, FakeLambdaContext())
        out_headers = dict(result.get("headers") or {})
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = values[-1]
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return httpx.Response(result["statusCode"], headers=out_headers, content=data)

    return httpx.MockTransport(send)


def sdk(handler, principal: Principal = TENANT_A) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url="https://gateway.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=handler_transport(handler, principal)))


def call(handler, method: str, path: str, *, principal: Principal | None = TENANT_A, body=None,
         raw_body: str | None = None, headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
         base64_encoded: bool = False) -> dict:
    event = api_event(method, path, body, headers=headers, raw_body=raw_body, principal=principal)
    event["isBase64Encoded"] = base64_encoded
    event["queryStringParameters"] = query
    return handler.lambda_handler(event, FakeLambdaContext())


def headers_of(response: dict) -> dict[str, str]:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    headers |= {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return headers


def error_of(response: dict) -> dict:
    return json.loads(response["body"])["error"]


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    """A multipart/form-data body as httpx (the SDK's client) encodes it; without a file, an unrelated part."""
    files = {"file": file} if file else {"unrelated": ("x.txt", b"")}
    request = httpx.Request("POST", "https://gateway.test/v1/files", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def upload(handler, content: bytes, *, principal: Principal = TENANT_A, purpose: str = "batch",
           filename: str = "batch.jsonl") -> dict:
    body, content_type = multipart({"purpose": purpose}, (filename, content))
    return call(handler, "POST", "/v1/files", principal=principal, raw_body=base64.b64encode(body).decode(),
                headers={"Content-Type": content_type}, base64_encoded=True)


# --- the SDK, unchanged ------------------------------------------------------------------------


def test_sdk_create_retrieve_content_list_and_delete_round_trip(api):
    client = sdk(api)
    created = client.files.create(file=("batch.jsonl", BATCH_LINES), purpose="batch")
    assert FILE_ID.match(created.id)
    assert (created.object, created.bytes, created.filename, created.purpose, created.status) == (
        "file", len(BATCH_LINES), "batch.jsonl", "batch", "processed")
    assert abs(created.created_at - time.time()) < 5

    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == BATCH_LINES
    listed = client.files.list()
    assert [f.id for f in listed.data] == [created.id]
    assert listed.has_more is False

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    assert client.files.list().data == []


def test_sdk_errors_are_typed_in_openai_shape(api):
    client = sdk(api)
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("train.jsonl", BATCH_LINES), purpose="fine-tune")
    assert refused.value.body["param"] == "purpose"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(api, CHAT_ONLY).files.list()
    assert denied.value.body["code"] == "insufficient_scope"


# --- tenancy -----------------------------------------------------------------------------------


def test_another_tenant_gets_404_on_get_content_and_delete_and_does_not_list_it(api):
    mine = sdk(api, TENANT_A).files.create(file=("a.jsonl", BATCH_LINES), purpose="batch")
    missing = "file-" + "0" * 24
    for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        theirs = call(api, method, f"/v1/files/{mine.id}{suffix}", principal=TENANT_B)
        unknown = call(api, method, f"/v1/files/{missing}{suffix}", principal=TENANT_B)
        assert theirs["statusCode"] == unknown["statusCode"] == 404
        assert error_of(theirs)["message"] == error_of(unknown)["message"].replace(missing, mine.id)
        assert error_of(theirs)["code"] == "file_not_found"
    assert sdk(api, TENANT_B).files.list().data == []
    assert sdk(api, TENANT_A).files.retrieve(mine.id).id == mine.id  # still there for its owner


@pytest.mark.parametrize("file_id", ["file-short", "..%2F..%2Fsecret", "FILE-" + "a" * 24])
def test_ids_that_are_not_file_ids_are_404_without_touching_storage(api, file_id):
    response = call(api, "GET", f"/v1/files/{file_id}")
    assert response["statusCode"] == 404
    assert error_of(response)["code"] == "file_not_found"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/files", None),
    ("POST", "/v1/files/uploads", {"filename": "a.jsonl", "purpose": "batch", "bytes": 10}),
    ("GET", "/v1/files", None),
    ("GET", "/v1/files/file-" + "0" * 24, None),
    ("GET", "/v1/files/file-" + "0" * 24 + "/content", None),
    ("DELETE", "/v1/files/file-" + "0" * 24, None),
])
def test_every_files_route_needs_the_files_scope(api, method, path, body):
    response = call(api, method, path, principal=CHAT_ONLY, body=body)
    assert response["statusCode"] == 403
    assert error_of(response)["code"] == "insufficient_scope"
    assert call(api, method, path, principal=None, body=body)["statusCode"] == 401


# --- upload checks -----------------------------------------------------------------------------


def test_a_purpose_other_than_batch_is_400(api):
    response = upload(api, BATCH_LINES, purpose="assistants")
    assert response["statusCode"] == 400
    assert error_of(response)["param"] == "purpose"
    assert "'batch'" in error_of(response)["message"]


@pytest.mark.parametrize(("content", "says"), [
    (b"", "empty"),
    (b"\n  \n\n", "empty"),
    (b'{"a": 1}\n\xff\xfe not text\n', "not UTF-8"),
    (b"\xef\xbb\xbf" + BATCH_LINES, "byte order mark"),
    (b'{"a": 1}\nthis is not json\n', "line 2: not valid JSON"),
    (b'{"a": 1}\n[1, 2]\n"text"\n', "line 2: an array, not a JSON object; line 3: a string"),
    (b'{"custom_id": "a", "body": {"model": "deepseek-chat"}', "line 1: not valid JSON"),
    (b'{"a": 1}\n' + b"[" * 5000 + b"]" * 5000 + b"\n", "line 2: nested too deep"),  # was a 500
    (b'{"a": ' + b"9" * 5000 + b"}\n", "line 1: not valid JSON"),  # was a 500 (int() refuses 5,000 digits)
    (b'{"a": NaN}\n', "line 1: not valid JSON"),
])
def test_a_batch_file_that_is_not_utf8_json_lines_is_400_saying_why(api, content, says):
    response = upload(api, content)
    assert response["statusCode"] == 400
    error = error_of(response)
    assert (error["code"], error["param"], error["type"]) == ("invalid_file_format", "file", "invalid_request_error")
    assert says in error["message"]


def test_semantic_line_checks_are_left_to_ingestion(api):
    content = b'{"anything": "goes"}\r\n{"custom_id": 1}\n\n'  # CRLF and blank lines are fine too
    response = upload(api, content)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["bytes"] == len(content)


def test_a_file_over_max_file_bytes_is_413_pointing_at_presigned_uploads(aws, monkeypatch):
    monkeypatch.setenv("MAX_FILE_BYTES", "1000")
    reset_services()
    api = load_handler("api")
    fits = b'{"a": "' + b"x" * 980 + b'"}\n'
    assert len(fits) <= 1000 and upload(api, fits)["statusCode"] == 200
    too_big = b'{"a": "' + b"x" * 1000 + b'"}\n'
    response = upload(api, too_big)
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "file_too_large" and error["type"] == "invalid_request_error"
    assert "1000 bytes" in error["message"] and "10 MB" in error["message"]
    assert "POST /v1/files/uploads" in error["message"]
    # A body far beyond the limit is refused before it is parsed.
    huge = upload(api, b'{"a": "' + b"x" * 200_000 + b'"}\n')
    assert huge["statusCode"] == 413


def test_the_default_file_limit_fits_a_base64_event_in_a_lambda_invocation(aws):
    from deepseek_gateway.settings import Settings

    limit = Settings().max_file_bytes
    event_allowance = 64 * 1024  # headers, request context, multipart envelope
    assert limit * 4 / 3 + event_allowance < 6 * 1024 * 1024


def test_missing_parts_and_wrong_content_types_are_400(api):
    body, content_type = multipart({"purpose": "batch"}, None)
    no_file = call(api, "POST", "/v1/files", raw_body=body.decode(), headers={"Content-Type": content_type})
    assert (no_file["statusCode"], error_of(no_file)["param"]) == (400, "file")
    body, content_type = multipart({}, ("a.jsonl", BATCH_LINES))
    no_purpose = call(api, "POST", "/v1/files", raw_body=body.decode(), headers={"Content-Type": content_type})
    assert (no_purpose["statusCode"], error_of(no_purpose)["param"]) == (400, "purpose")
    as_json = call(api, "POST", "/v1/files", body={"purpose": "batch"}, headers={"Content-Type": "application/json"})
    assert (as_json["statusCode"], error_of(as_json)["code"]) == (400, "invalid_content_type")
    no_boundary = call(api, "POST", "/v1/files", raw_body="x", headers={"Content-Type": "multipart/form-data"})
    assert (no_boundary["statusCode"], error_of(no_boundary)["code"]) == (400, "invalid_multipart")


def test_a_text_multipart_body_not_base64_encoded_is_accepted_too(api):
    """What API Gateway sends when multipart/form-data is not a binary media type (and the local cloud for UTF-8)."""
    body, content_type = multipart({"purpose": "batch"}, ("plain.jsonl", BATCH_LINES))
    response = call(api, "POST", "/v1/files", raw_body=body.decode("utf-8"), headers={"Content-Type": content_type})
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["bytes"] == len(BATCH_LINES)


def test_the_multipart_parser_keeps_the_file_bytes_exactly():
    tricky = b"\r\n--not-the-boundary\r\n\x00\xff\r" + bytes(range(256)) + b"\n\r\n"
    body, content_type = multipart({"purpose": "batch"}, ('dir/na"me.jsonl', tricky))
    parts = parse_form(body, content_type)
    assert parts["file"].data == tricky
    assert parts["purpose"].data == b"batch"
    assert parts["file"].filename.endswith(".jsonl")


def test_filenames_lose_paths_and_control_characters(api):
    response = upload(api, BATCH_LINES, filename="C:\\data\\input.jsonl")
    assert json.loads(response["body"])["filename"] == "input.jsonl"
    assert clean_filename("../../etc/pa\x07ss\nwd") == "passwd"
    assert clean_filename("") == clean_filename("/") == "file"
    assert len(clean_filename("x" * 1000)) == 255


# --- storage -----------------------------------------------------------------------------------


def test_the_object_lives_under_the_tenant_prefix_kms_encrypted_with_its_record(api, aws):
    created = json.loads(upload(api, BATCH_LINES)["body"])
    head = aws.s3.head_object(Bucket=BUCKET, Key=f"tenant-a/files/{created['id']}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ContentLength"] == len(BATCH_LINES)
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "TENANT#tenant-a"},
                                                       "sk": {"S": f"FILE#{created['id']}"}})["Item"]
    assert {k: next(iter(v.values())) for k, v in item.items()} == {
        "pk": "TENANT#tenant-a", "sk": f"FILE#{created['id']}", "id": created["id"],
        "bytes": str(len(BATCH_LINES)), "created_at": str(created["created_at"]), "filename": "batch.jsonl",
        "purpose": "batch", "status": "processed"}


def test_a_configured_kms_key_is_named_on_every_object(aws, monkeypatch):
    monkeypatch.setenv("UPLOADS_KMS_KEY_ID", aws.kms_key_id)
    reset_services()
    api = load_handler("api")
    created = json.loads(upload(api, BATCH_LINES)["body"])
    head = aws.s3.head_object(Bucket=BUCKET, Key=f"tenant-a/files/{created['id']}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(aws.kms_key_id)
    presigned = json.loads(call(api, "POST", "/v1/files/uploads",
                                body={"filename": "big.jsonl", "purpose": "batch", "bytes": 10})["body"])
    assert presigned["upload_headers"]["x-amz-server-side-encryption-aws-kms-key-id"] == aws.kms_key_id


def test_content_is_returned_base64_encoded_by_the_handler(api):
    created = json.loads(upload(api, BATCH_LINES)["body"])
    response = call(api, "GET", f"/v1/files/{created['id']}/content")
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == BATCH_LINES
    assert headers_of(response)["content-type"] == "application/octet-stream"


def test_delete_removes_every_version_of_the_object_and_the_record(api, aws):
    created = json.loads(upload(api, BATCH_LINES)["body"])
    key = f"tenant-a/files/{created['id']}"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"v": 2}\n')  # a second version, e.g. a direct upload
    other = json.loads(upload(api, BATCH_LINES)["body"])  # a neighbour under the same prefix stays
    assert call(api, "DELETE", f"/v1/files/{created['id']}")["statusCode"] == 200
    versions = aws.s3.list_object_versions(Bucket=BUCKET, Prefix="tenant-a/files/")
    remaining = {v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])}
    assert remaining == {f"tenant-a/files/{other['id']}"}
    assert call(api, "GET", f"/v1/files/{created['id']}")["statusCode"] == 404
    assert call(api, "DELETE", f"/v1/files/{created['id']}")["statusCode"] == 404


# --- listing -----------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_with_limit_and_after(api):
    client = sdk(api)
    ids = [client.files.create(file=(f"{i}.jsonl", BATCH_LINES), purpose="batch").id for i in range(5)]
    assert [f.id for f in client.files.list().data] == ids[::-1]
    first = client.files.list(limit=2)
    assert [f.id for f in first.data] == [ids[4], ids[3]]
    assert first.has_more is True
    assert [f.id for f in client.files.list(limit=2, after=ids[3]).data] == [ids[2], ids[1]]
    assert client.files.list(limit=2, after=ids[1]).has_more is False
    assert [f.id for f in client.files.list(limit=2)] == ids[::-1]  # the SDK's auto-pagination follows `after`
    assert [f.id for f in client.files.list(order="asc", limit=3).data] == ids[:3]


def test_list_filters_by_purpose_and_checks_its_parameters(api, aws):
    client = sdk(api)
    created = client.files.create(file=("a.jsonl", BATCH_LINES), purpose="batch")
    # An output file as the batch workflow will record it.
    aws.dynamodb.put_item(TableName=TABLE, Item={
        "pk": {"S": "TENANT#tenant-a"}, "sk": {"S": "FILE#file-zzzzzzzzzzzzzzzzzzzzzzzz"},
        "id": {"S": "file-zzzzzzzzzzzzzzzzzzzzzzzz"}, "bytes": {"N": "1"}, "created_at": {"N": "1"},
        "filename": {"S": "out.jsonl"}, "purpose": {"S": "batch_output"}, "status": {"S": "processed"}})
    assert [f.id for f in client.files.list(purpose="batch").data] == [created.id]
    assert [f.id for f in client.files.list(purpose="batch_output").data] == ["file-zzzzzzzzzzzzzzzzzzzzzzzz"]
    for query, param in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order"),
                         ({"after": "nope"}, "after")):
        response = call(api, "GET", "/v1/files", query=query)
        assert (response["statusCode"], error_of(response)["param"]) == (400, param)


# --- presigned uploads -------------------------------------------------------------------------


def test_presigned_upload_signs_key_expiry_and_encryption_then_becomes_processed(api, aws):
    import requests  # moto intercepts `requests` in-process, as it does boto3

    content = BATCH_LINES * 4
    response = call(api, "POST", "/v1/files/uploads",
                    body={"filename": "large.jsonl", "purpose": "batch", "bytes": len(content)})
    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    file = answer["file"]
    assert FILE_ID.match(file["id"])
    assert (file["status"], file["bytes"], file["filename"], file["purpose"]) == (
        "pending_upload", len(content), "large.jsonl", "batch")
    assert answer["upload_method"] == "PUT"
    assert 0 < answer["expires_at"] - time.time() <= 900

    url = urlsplit(answer["upload_url"])
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert url.hostname.startswith(BUCKET) or url.path.startswith(f"/{BUCKET}/")
    assert url.path.removeprefix(f"/{BUCKET}").lstrip("/") == f"tenant-a/files/{file['id']}"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    signed = set(query["X-Amz-SignedHeaders"][0].split(";"))
    assert {"content-length", "host", "if-none-match", "x-amz-server-side-encryption"} <= signed
    assert answer["upload_headers"] == {"Content-Length": str(len(content)), "If-None-Match": "*",
                                        "x-amz-server-side-encryption": "aws:kms"}

    # Before the object arrives: still pending, no content yet.
    assert json.loads(call(api, "GET", f"/v1/files/{file['id']}")["body"])["status"] == "pending_upload"
    not_ready = call(api, "GET", f"/v1/files/{file['id']}/content")
    assert (not_ready["statusCode"], error_of(not_ready)["code"]) == (409, "file_not_ready")

    # The client PUTs with the returned headers; a second PUT to the same URL is refused.
    put = requests.put(answer["upload_url"], data=content, headers=answer["upload_headers"], timeout=10)
    assert put.status_code == 200
    again = requests.put(answer["upload_url"], data=content, headers=answer["upload_headers"], timeout=10)
    assert again.status_code == 412
    head = aws.s3.head_object(Bucket=BUCKET, Key=f"tenant-a/files/{file['id']}")
    assert head["ServerSideEncryption"] == "aws:kms"

    retrieved = sdk(api).files.retrieve(file["id"])
    assert (retrieved.status, retrieved.bytes) == ("processed", len(content))
    assert sdk(api).files.content(file["id"]).content == content
    assert [f.status for f in sdk(api).files.list().data] == ["processed"]  # persisted, not recomputed


def test_presigned_upload_checks_its_request(api):
    too_big = call(api, "POST", "/v1/files/uploads",
                   body={"filename": "x.jsonl", "purpose": "batch", "bytes": 512 * 1024 * 1024 + 1})
    assert (too_big["statusCode"], error_of(too_big)["param"], error_of(too_big)["code"]) == (
        400, "bytes", "file_too_large")
    for body, param in (({"filename": "x.jsonl", "purpose": "assistants", "bytes": 5}, "purpose"),
                        ({"filename": "../x.jsonl", "purpose": "batch", "bytes": 5}, "filename"),
                        ({"filename": "x.jsonl", "purpose": "batch", "bytes": 0}, "bytes"),
                        ({"filename": "x.jsonl", "purpose": "batch", "bytes": 5, "tenant_id": "b"}, "tenant_id")):
        response = call(api, "POST", "/v1/files/uploads", body=body)
        assert (response["statusCode"], error_of(response)["param"]) == (400, param)


def test_another_tenant_cannot_see_a_pending_upload(api):
    created = json.loads(call(api, "POST", "/v1/files/uploads",
                              body={"filename": "x.jsonl", "purpose": "batch", "bytes": 5})["body"])
    assert call(api, "GET", f"/v1/files/{created['file']['id']}", principal=TENANT_B)["statusCode"] == 404


def test_binary_content_round_trips_through_base64(api):
    """Objects put through a presigned URL need not be text; the content route returns them byte for byte."""
    import requests

    content = bytes(range(256)) * 3
    answer = json.loads(call(api, "POST", "/v1/files/uploads",
                             body={"filename": "blob.bin", "purpose": "batch", "bytes": len(content)})["body"])
    requests.put(answer["upload_url"], data=content, headers=answer["upload_headers"], timeout=10)
    assert sdk(api).files.content(answer["file"]["id"]).content == content


def test_content_above_the_inline_limit_redirects_to_a_presigned_get(aws, monkeypatch):
    monkeypatch.setenv("MAX_INLINE_CONTENT_BYTES", "100")
    reset_services()
    api = load_handler("api")
    created = json.loads(upload(api, BATCH_LINES)["body"])
    assert created["bytes"] > 100
    response = call(api, "GET", f"/v1/files/{created['id']}/content")
    assert response["statusCode"] == 302
    location = urlsplit(headers_of(response)["location"])
    assert location.path.removeprefix(f"/{BUCKET}").lstrip("/") == f"tenant-a/files/{created['id']}"
    assert parse_qs(location.query)["X-Amz-Expires"] == ["300"]


# --- the store on its own, with a fake clock ---------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_presigned_upload_that_never_arrives_reports_error_after_its_url_expires(aws):
    clock = FakeClock()
    store = FileStore(TABLE, BUCKET, aws.dynamodb, lambda: aws.s3, limits=FileLimits(), clock=clock)
    pending = store.create_upload("tenant-a", UploadCreate(filename="x.jsonl", purpose="batch", bytes=5)).file
    clock.now += 900 + 60
    assert store.get("tenant-a", pending.id).status == "pending_upload"  # within the grace period
    clock.now += 3600
    late = store.get("tenant-a", pending.id)
    assert late.status == "error" and "expired" in late.status_details
    # A PUT that started in time and lands late still counts.
    aws.s3.put_object(Bucket=BUCKET, Key=object_key("tenant-a", pending.id), Body=b"12345",
                      ServerSideEncryption="aws:kms")
    assert store.get("tenant-a", pending.id).status == "processed"
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "TENANT#tenant-a"},
                                                       "sk": {"S": f"FILE#{pending.id}"}})["Item"]
    assert "expires_at" not in item and "upload_expires_at" not in item  # the record no longer expires


def test_pending_records_expire_through_the_table_ttl(aws):
    clock = FakeClock()
    store = FileStore(TABLE, BUCKET, aws.dynamodb, lambda: aws.s3, clock=clock)
    pending = store.create_upload("tenant-a", UploadCreate(filename="x.jsonl", purpose="batch", bytes=5)).file
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "TENANT#tenant-a"},
                                                       "sk": {"S": f"FILE#{pending.id}"}})["Item"]
    assert int(item["expires_at"]["N"]) > clock.now + 900


def test_file_ids_sort_by_creation_time():
    from deepseek_gateway.files.store import new_file_id

    ids = [new_file_id(t) for t in (1_700_000_000.000, 1_700_000_000.001, 1_800_000_000.0, 3_000_000_000.0)]
    assert ids == sorted(ids)
    assert all(FILE_ID.match(i) for i in ids)
    assert len({new_file_id(1_700_000_000.0) for _ in range(100)}) == 100
