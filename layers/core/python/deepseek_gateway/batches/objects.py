"""The workflow's objects: work chunks in the results bucket, output and error files in the uploads bucket.

Output and error files are ordinary files (purpose `batch_output`), laid out as the Files API lays
out uploads (`files/store.py`): the record `TENANT#<t>` / `FILE#<id>` in the jobs table, written
before the bytes at `<tenant>/files/<id>`, so the ingestion finds the record of every object the
bucket tells it about (and ignores `batch_output` ones). Writing a file again with the same id and
content (a second finalize) leaves the same file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from deepseek_gateway.batches.lines import chunk_prefix
from deepseek_gateway.batches.models import BatchItem
from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.dynamo_types import serialize as _serialize
from deepseek_gateway.files.models import FileObject
from deepseek_gateway.files.store import object_key

OUTPUT_PURPOSE = "batch_output"


class ResultsBucket:
    """Work chunks: `<tenant>/batches/<batch_id>/chunks/<index:05d>.json`, each a JSON array of items."""

    def __init__(self, bucket: str, s3: Callable[[], Any]) -> None:
        self._bucket = bucket
        self._s3_factory = s3
        self._s3_client: Any = None

    @property
    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def chunk_keys(self, tenant_id: str, batch_id: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=chunk_prefix(tenant_id, batch_id)):
            keys += [entry["Key"] for entry in page.get("Contents", []) if entry["Key"].endswith(".json")]
        return sorted(keys)

    def delete_chunks(self, tenant_id: str, batch_id: str) -> int:
        """Every version of the batch's chunks (they hold the request bodies); the number of versions removed."""
        versions: list[dict[str, str]] = []
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=chunk_prefix(tenant_id, batch_id)):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                versions.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
        for start in range(0, len(versions), 1000):
            result = self._s3.delete_objects(Bucket=self._bucket,
                                             Delete={"Objects": versions[start:start + 1000], "Quiet": True})
            if result.get("Errors"):
                raise RuntimeError(f"could not delete the chunks of {batch_id}: {result['Errors'][0]}")
        return len(versions)

    def read_chunk(self, key: str) -> list[BatchItem]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        with body:
            return [BatchItem.model_validate(item) for item in json.loads(body.read())]


class OutputFiles:
    """Writes a batch's output and error files as `batch_output` files of the tenant."""

    def __init__(self, table_name: str, bucket: str, dynamodb: Any, s3: Callable[[], Any], *,
                 kms_key_id: str | None = None) -> None:
        self._table = table_name
        self._bucket = bucket
        self._db = dynamodb
        self._s3_factory = s3
        self._s3_client: Any = None
        self._kms_key_id = kms_key_id

    @property
    def _s3(self) -> Any:
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def write(self, tenant_id: str, file_id: str, *, filename: str, data: bytes, created_at: int) -> FileObject:
        """The record (kept if it exists, its size set), then the bytes: safe to repeat."""
        file = FileObject(id=file_id, bytes=len(data), created_at=created_at, filename=filename,
                          purpose=OUTPUT_PURPOSE, status="processed")
        key = {"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": f"FILE#{file_id}"}}
        values = file.model_dump(exclude={"object", "status_details"})
        try:
            self._db.put_item(TableName=self._table, Item={**key, **{k: _serialize(v) for k, v in values.items()}},
                              ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if not condition_failed(exc):
                raise
            self._db.update_item(TableName=self._table, Key=key, UpdateExpression="SET #bytes = :bytes",
                                 ExpressionAttributeNames={"#bytes": "bytes"},
                                 ExpressionAttributeValues={":bytes": {"N": str(len(data))}})
        sse = {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": self._kms_key_id} if self._kms_key_id else {})}
        self._s3.put_object(Bucket=self._bucket, Key=object_key(tenant_id, file_id), Body=data,
                            ContentType="application/jsonl", **sse)
        return file
