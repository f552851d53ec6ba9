"""File records in the jobs table and their bytes in the uploads bucket, always under the caller's tenant.

    s3://<uploads bucket>/<tenant_id>/files/<file_id>     the bytes, SSE-KMS (the bucket's key unless one is set)
    pk = TENANT#<tenant_id>   sk = FILE#<file_id>          id, bytes, created_at, filename, purpose, status

Every method takes the tenant id from the caller's credential; another tenant's file looks exactly like a
file that does not exist. File ids are `file-` + 24 base62 characters whose first 7 encode the creation
time in milliseconds, so the table's sort order is creation order: listing is one Query, newest first.

The record is written before the object, so whatever reacts to the bucket's event notification (the batch
ingestion) always finds the record of a file uploaded through the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.dynamo_types import serialize as _serialize
from deepseek_gateway.errors import ConflictError, InvalidRequestError, NotFoundError, PayloadTooLargeError, quoted_id
from deepseek_gateway.files.jsonl import check_jsonl
from deepseek_gateway.files.models import (
    FILE_ID,
    FileDeleted,
    FileObject,
    FilePage,
    PresignedUpload,
    UploadCreate,
    clean_filename,
)
from deepseek_gateway.ids import time_ordered_id

MAX_LIST_LIMIT = 10_000  # OpenAI's bound and default
# A presigned upload still missing this long after its URL expired is reported as failed (not persisted:
# a PUT that started just before the expiry may still land).
UPLOAD_GRACE_S = 3600
# A pending record the client never completes disappears through the table's TTL after this long.
PENDING_RECORD_TTL_S = 86_400
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def new_file_id(now_s: float) -> str:
    """`file-` + 24 base62 characters, ordered by creation time (see deepseek_gateway.ids)."""
    return time_ordered_id("file-", now_s)


def object_key(tenant_id: str, file_id: str) -> str:
    return f"{tenant_id}/files/{file_id}"


def parse_object_key(key: str) -> tuple[str, str] | None:
    """(tenant_id, file_id) of an object under a tenant's files prefix, else None."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] and parts[1] == "files" and parts[2]:
        return parts[0], parts[2]
    return None


class FileObjectNotFoundError(NotFoundError):
    code = "file_not_found"

    def __init__(self, file_id: str) -> None:
        super().__init__(f"No such File object: {quoted_id(file_id)}", param="file_id")


@dataclass(frozen=True)
class FileLimits:
    max_file_bytes: int = 4 * 1024 * 1024  # POST /v1/files (see Settings.max_file_bytes)
    max_presigned_bytes: int = 512 * 1024 * 1024  # POST /v1/files/uploads
    max_inline_content_bytes: int = 4 * 1024 * 1024  # larger content answers with a presigned GET URL
    upload_url_ttl_s: int = 900
    download_url_ttl_s: int = 300


@dataclass(frozen=True)
class FileContent:
    """A file's bytes, or (too large for a Lambda response) a presigned URL to fetch them from."""

    file: FileObject
    data: bytes | None = None
    redirect_url: str | None = None


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class FileStore:
    def __init__(
        self,
        table_name: str,
        bucket: str,
        dynamodb: Any,
        s3: Callable[[], Any],
        *,
        limits: FileLimits | None = None,
        kms_key_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._bucket = bucket
        self._db = dynamodb
        self._s3_factory = s3  # built on first use: the chat path never pays for an S3 client
        self._s3_client: Any = None
        self.limits = limits or FileLimits()
        self._kms_key_id = kms_key_id
        self._clock = clock

    @property
    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def _sse(self) -> dict[str, str]:
        params = {"ServerSideEncryption": "aws:kms"}
        if self._kms_key_id:
            params["SSEKMSKeyId"] = self._kms_key_id
        return params

    @staticmethod
    def _key(tenant_id: str, file_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": f"FILE#{file_id}"}}

    # --- creating ------------------------------------------------------------------------------

    def create(self, tenant_id: str, *, filename: str | None, purpose: str, data: bytes,
               content_type: str = "application/jsonl") -> FileObject:
        """Store an uploaded file. A batch file must be UTF-8 JSON Lines; its lines are checked by ingestion."""
        limit = self.limits.max_file_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(
                f"The file is {len(data)} bytes; POST /v1/files takes files up to {limit} bytes (requests pass "
                "through API Gateway, 10 MB at most, and Lambda, 6 MB at most). Upload larger files with "
                "POST /v1/files/uploads.", param="file", code="file_too_large")
        if purpose == "batch":
            check_jsonl(data)
        now = self._clock()
        file = FileObject(id=new_file_id(now), bytes=len(data), created_at=int(now),
                          filename=clean_filename(filename), purpose=purpose, status="processed")
        self._put_record(tenant_id, file)
        try:
            self._s3.put_object(Bucket=self._bucket, Key=object_key(tenant_id, file.id), Body=data,
                                ContentType=content_type, **self._sse())
        except Exception:
            self._db.delete_item(TableName=self._table, Key=self._key(tenant_id, file.id))
            raise
        return file

    def create_upload(self, tenant_id: str, request: UploadCreate) -> PresignedUpload:
        """A pending record and a presigned PUT URL for it; the object's size and encryption are signed."""
        limit = self.limits.max_presigned_bytes
        if request.bytes > limit:
            raise InvalidRequestError(f"`bytes` is {request.bytes}; presigned uploads take files up to {limit} bytes.",
                                      param="bytes", code="file_too_large")
        now = self._clock()
        ttl = self.limits.upload_url_ttl_s
        expires_at = int(now) + ttl
        file = FileObject(id=new_file_id(now), bytes=request.bytes, created_at=int(now),
                          filename=clean_filename(request.filename), purpose=request.purpose, status="pending_upload")
        self._put_record(tenant_id, file, upload_expires_at=expires_at,
                         expires_at=expires_at + UPLOAD_GRACE_S + PENDING_RECORD_TTL_S)
        sse = self._sse()
        url = self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": object_key(tenant_id, file.id), "ContentLength": request.bytes,
                    "IfNoneMatch": "*", **sse},
            ExpiresIn=ttl,
            HttpMethod="PUT",
        )
        headers = {"Content-Length": str(request.bytes), "If-None-Match": "*",
                   "x-amz-server-side-encryption": sse["ServerSideEncryption"]}
        if "SSEKMSKeyId" in sse:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = sse["SSEKMSKeyId"]
        return PresignedUpload(file=file, upload_url=url, upload_headers=headers, expires_at=expires_at)

    def register(self, tenant_id: str, file: FileObject) -> None:
        """The record of a file whose object is put by someone else (a data team's direct upload copied by
        the ingestion); refused (ConditionalCheckFailed) when the id already has one."""
        self._put_record(tenant_id, file)

    def _put_record(self, tenant_id: str, file: FileObject, **extra: int) -> None:
        values = {**file.model_dump(exclude={"object", "status_details"}), **extra}
        item = {**self._key(tenant_id, file.id), **{k: _serialize(v) for k, v in values.items()}}
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    # --- reading -------------------------------------------------------------------------------

    def _record(self, tenant_id: str, file_id: str) -> tuple[FileObject, dict[str, Any]]:
        if not FILE_ID.match(file_id):
            raise FileObjectNotFoundError(file_id)
        item = self._db.get_item(TableName=self._table, Key=self._key(tenant_id, file_id),
                                 ConsistentRead=True).get("Item")
        if item is None:
            raise FileObjectNotFoundError(file_id)
        plain = {k: _deserialize(v) for k, v in item.items() if k not in {"pk", "sk"}}
        return FileObject.model_validate({k: plain[k] for k in FileObject.model_fields if k in plain}), plain

    def get(self, tenant_id: str, file_id: str) -> FileObject:
        """The file; a pending presigned upload becomes `processed` here once its object exists."""
        file, plain = self._record(tenant_id, file_id)
        if file.status == "pending_upload":
            file = self._refresh(tenant_id, file, plain)
        return file

    def _refresh(self, tenant_id: str, file: FileObject, plain: dict[str, Any]) -> FileObject:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=object_key(tenant_id, file.id))
        except Exception as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES:
                raise
            if self._clock() > int(plain.get("upload_expires_at", 0)) + UPLOAD_GRACE_S:
                return file.model_copy(update={"status": "error",
                                               "status_details": "The upload URL expired before the file arrived."})
            return file
        size = int(head["ContentLength"])
        try:
            self._db.update_item(
                TableName=self._table, Key=self._key(tenant_id, file.id),
                UpdateExpression="SET #status = :processed, #bytes = :bytes REMOVE expires_at, upload_expires_at",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status", "#bytes": "bytes"},
                ExpressionAttributeValues={":processed": {"S": "processed"}, ":pending": {"S": "pending_upload"},
                                           ":bytes": {"N": str(size)}},
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self._record(tenant_id, file.id)[0]  # changed meanwhile (promoted or deleted): read it again
        return file.model_copy(update={"status": "processed", "bytes": size})

    def list(self, tenant_id: str, *, purpose: str | None = None, limit: int = MAX_LIST_LIMIT,
             after: str | None = None, order: Literal["asc", "desc"] = "desc") -> FilePage:
        """A page of the tenant's files by creation time (`after`: the last id of the previous page).

        Statuses are as stored: a pending upload shows `processed` here once it was retrieved.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"`limit` must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        if order not in ("asc", "desc"):
            raise InvalidRequestError("`order` must be `asc` or `desc`.", param="order")
        if after is not None and not FILE_ID.match(after):
            raise InvalidRequestError("`after` must be a file id from a previous page.", param="after")
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"TENANT#{tenant_id}"}, ":prefix": {"S": "FILE#"}},
            "ScanIndexForward": order == "asc",
        }
        if purpose:
            query["FilterExpression"] = "purpose = :purpose"
            query["ExpressionAttributeValues"][":purpose"] = {"S": purpose}
        else:
            query["Limit"] = limit + 1
        if after:
            query["ExclusiveStartKey"] = self._key(tenant_id, after)
        files: list[FileObject] = []
        while len(files) <= limit:
            page = self._db.query(**query)
            for item in page.get("Items", []):
                plain = {k: _deserialize(v) for k, v in item.items() if k in FileObject.model_fields}
                files.append(FileObject.model_validate(plain))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        data = files[:limit]
        return FilePage(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                        has_more=len(files) > limit)

    def read(self, tenant_id: str, file_id: str) -> FileContent:
        """The bytes, or a short-lived presigned GET URL when they are too large for a Lambda response."""
        file = self.get(tenant_id, file_id)
        if file.status != "processed":
            raise ConflictError(f"File {file_id} has no content yet: its upload has not arrived.",
                                param="file_id", code="file_not_ready")
        key = object_key(tenant_id, file.id)
        if file.bytes > self.limits.max_inline_content_bytes:
            url = self._s3.generate_presigned_url("get_object", Params={"Bucket": self._bucket, "Key": key},
                                                  ExpiresIn=self.limits.download_url_ttl_s, HttpMethod="GET")
            return FileContent(file=file, redirect_url=url)
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise FileObjectNotFoundError(file_id) from None
            raise
        with body:
            return FileContent(file=file, data=body.read())

    # --- deleting ------------------------------------------------------------------------------

    def delete(self, tenant_id: str, file_id: str) -> FileDeleted:
        """Every version of the object (the bucket is versioned), then the record: a retry finishes the job."""
        self._record(tenant_id, file_id)
        key = object_key(tenant_id, file_id)
        versions: list[dict[str, str]] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=key):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if entry["Key"] == key:
                    versions.append({"Key": key, "VersionId": entry["VersionId"]})
        for start in range(0, len(versions), 1000):
            result = self._s3.delete_objects(Bucket=self._bucket,
                                             Delete={"Objects": versions[start:start + 1000], "Quiet": True})
            if result.get("Errors"):
                raise RuntimeError(f"could not delete {key}: {result['Errors'][0]}")
        self._db.delete_item(TableName=self._table, Key=self._key(tenant_id, file_id))
        return FileDeleted(id=file_id)
