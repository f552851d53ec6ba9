"""The ingestion function's work: uploads and `batch.submitted` messages in, validated and started batches out.

One message of the ingestion queue is one of (docs/batch_contract.md, Flow step 4):

- an S3 event notification of the uploads bucket (keys URL-encoded), per record:
  `<tenant>/files/<file_id>`: the file's record exists (the Files API writes it before the object) → a
  pending presigned upload becomes `processed` → `file.ingested` for a `batch` file;
  `<tenant>/batches/<name>`: a data team's direct upload → a file record, the object copied to
  `<tenant>/files/<file_id>`, a batch run by the service principal, and on as for `batch.submitted`;
- `s3:TestEvent` (sent when the notification is configured): ignored;
- `{"type": "batch.submitted", "tenant_id", "batch_id"}` from `POST /v1/batches`: every line validated,
  the valid ones written in work chunks to the results bucket, each invalid one recorded as an error
  result, then `validating → in_progress` and the state machine started with `name = batch_id`.

A batch file (up to 200 MB, 50,000 lines) is streamed from S3 and validated line by line; the valid lines
are held as their chunks' JSON (about the file's size), and nothing is written before the whole file is
valid, so a file-level failure leaves nothing behind. The chunks (a 200 MB file makes ~1,070 PutObjects of
up to 192 KiB) are then written CHUNK_WRITERS at a time: one after the other, at S3's ~25 ms a call, they
would take half of the function's 60 s. Figures: `python -m local_cloud.bench_ingestion`.

Exactly once: a unit of work (one S3 object version, one submitted batch) runs under Powertools
idempotency, so a duplicate S3 event or an SQS redelivery after success is not processed again. A unit
that failed half way runs again from the start, and every step is repeatable: the direct upload's file id
is derived from the object's identity, its batch is found again by that file id, the same file gives the
same chunk objects (overwritten with the same bytes), a line result is written once, `start` is
conditional, and a second StartExecution with the same name is `ExecutionAlreadyExists` (or, with the
same input, the same execution), which counts as success.

A message about nothing left to do (an unknown tenant, an object deleted meanwhile, another bucket) is
logged and dropped. An unreadable message is poison: it raises, so after maxReceiveCount SQS moves it to
the DLQ, whose alarm tells the operator. Anything else that fails raises too, so SQS redelivers the
message and, if it keeps failing, moves it to the DLQ. File contents and prompts are never logged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.errors import BatchNotFoundError
from deepseek_gateway.batches.lines import (
    BatchFileError,
    LineChecker,
    chunk_bodies,
    chunk_key,
)
from deepseek_gateway.batches.models import BATCH_ID, TERMINAL_STATUSES, Batch, BatchError
from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.catalogue import Catalogue
from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.errors import ConflictError
from deepseek_gateway.files.models import FileObject, clean_filename
from deepseek_gateway.files.store import FileObjectNotFoundError, FileStore, object_key, parse_object_key
from deepseek_gateway.ids import BASE62, RANDOM_CHARS, TIME_CHARS
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.observability import logger, metrics
from deepseek_gateway.safety.settings import SafetySettings
from deepseek_gateway.tenancy.models import TENANT_ID
from deepseek_gateway.tenancy.store import TenantStore

DIRECT_ENDPOINT = "/v1/chat/completions"
DIRECT_WINDOW = "24h"
SERVICE_PRINCIPAL_ID = "s3-upload"
# A direct upload's batch is created after the upload's event time; this much clock skew between S3's
# clock and the function's is tolerated when a retry looks for the batch it created before.
CLOCK_SKEW_S = 300
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_STREAM_CHUNK = 1024 * 1024
# Chunk objects written at once (botocore's connection pool holds 10).
CHUNK_WRITERS = 8

Outcome = dict[str, Any]


def service_principal(tenant_id: str, plan: str = "default") -> Principal:
    """Who a direct S3 upload's batch runs as: never issued by the authorizer; its Cedar uid is User::s3-upload."""
    return Principal(tenant_id=tenant_id, principal_id=SERVICE_PRINCIPAL_ID, kind="service",
                     scopes=frozenset({"batch"}), plan=plan)


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _not_found(exc: BaseException) -> bool:
    return _error_code(exc) in _NOT_FOUND_CODES


# --- messages ---------------------------------------------------------------------------------------


class S3Object(BaseModel):
    """One `ObjectCreated` record: which object version arrived, and when."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str  # decoded (S3 sends keys URL-encoded, spaces as `+`)
    identity: str  # the version id, else the sequencer, else ETag and event time: the same for a duplicate
    event_time_ms: int
    version_id: str | None = None

    @property
    def idempotency_key(self) -> str:
        return f"s3:{self.bucket}/{self.key}@{self.identity}"


class BatchSubmitted(BaseModel):
    """`POST /v1/batches` → ingestion: validate this batch's input file and start it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["batch.submitted"]
    tenant_id: str = Field(pattern=TENANT_ID.pattern)
    batch_id: str = Field(pattern=BATCH_ID.pattern)
    correlation_id: str | None = Field(default=None, max_length=256)

    @property
    def idempotency_key(self) -> str:
        return f"batch.submitted:{self.tenant_id}/{self.batch_id}"


class UnreadableMessage(ValueError):
    """A message body that is none of the shapes the ingestion queue carries."""


def _s3_object(record: dict[str, Any]) -> S3Object:
    s3 = record["s3"]
    raw = s3["object"]
    key = unquote_plus(raw["key"])
    event_time = datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))
    millis = int(event_time.timestamp() * 1000)
    version = raw.get("versionId") or None
    identity = version or raw.get("sequencer") or f"{raw.get('eTag', '')}@{millis}"
    return S3Object(bucket=s3["bucket"]["name"], key=key, identity=identity, event_time_ms=millis,
                    version_id=version)


def parse_message(body: str) -> list[S3Object | BatchSubmitted]:
    """The units of work in one queue message (none for a test event); UnreadableMessage when it is no message."""
    try:
        value = json.loads(body)
    except ValueError:
        raise UnreadableMessage("not JSON") from None
    if not isinstance(value, dict):
        raise UnreadableMessage("not a JSON object")
    if value.get("Event") == "s3:TestEvent":
        return []
    if value.get("type") == "batch.submitted":
        try:
            return [BatchSubmitted.model_validate(value)]
        except ValidationError:
            raise UnreadableMessage("a batch.submitted message without a valid tenant_id and batch_id") from None
    records = value.get("Records")
    if not isinstance(records, list):
        raise UnreadableMessage("neither an S3 event notification nor batch.submitted")
    jobs: list[S3Object | BatchSubmitted] = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise UnreadableMessage("an event record that is not from S3")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue  # removals and restores: nothing to ingest
        try:
            jobs.append(_s3_object(record))
        except (KeyError, TypeError, ValueError):
            raise UnreadableMessage("an S3 record without bucket, key or event time") from None
    return jobs


def direct_upload_key(key: str) -> tuple[str, str] | None:
    """(tenant_id, name) of an object under a tenant's batch prefix, `<tenant>/batches/<name>`, else None."""
    tenant, _, rest = key.partition("/")
    folder, _, name = rest.partition("/")
    if tenant and folder == "batches" and name and not name.endswith("/"):
        return tenant, name
    return None


def derived_file_id(obj: S3Object) -> str:
    """A file id that is the same for every delivery of one upload: time-ordered by the event's time, the rest
    from a hash of the object version's identity."""
    millis = obj.event_time_ms
    stamp = ""
    for _ in range(TIME_CHARS):
        millis, digit = divmod(millis, 62)
        stamp = BASE62[digit] + stamp
    number = int.from_bytes(hashlib.sha256(f"{obj.bucket}\n{obj.key}\n{obj.identity}".encode()).digest(), "big")
    rest = ""
    for _ in range(RANDOM_CHARS):
        number, digit = divmod(number, 62)
        rest += BASE62[digit]
    return "file-" + stamp + rest


# --- collaborators ----------------------------------------------------------------------------------


class ExecutionStarter:
    """Starts the batch workflow (Step Functions, a standard state machine) once per batch."""

    def __init__(self, state_machine_arn: str, client: Any) -> None:
        self._arn = state_machine_arn
        self._client = client

    def execution_arn(self, name: str) -> str:
        """The ARN StartExecution gives an execution of this name (known before it starts)."""
        head, _, machine = self._arn.rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            return str(self._client.start_execution(stateMachineArn=self._arn, name=name,
                                                    input=json.dumps(payload, separators=(",", ":")))["executionArn"])
        except Exception as exc:
            if _error_code(exc) != "ExecutionAlreadyExists":
                raise
            return self.execution_arn(name)  # a redelivery: the execution of this batch is there already


@dataclass(frozen=True)
class IngestionLimits:
    max_file_bytes: int = 200 * 1024 * 1024
    max_lines: int = 50_000
    max_line_bytes: int = 64 * 1024
    chunk_items: int = 100
    chunk_bytes: int = 192 * 1024
    window_s: int = 86_400


@dataclass(frozen=True)
class Buckets:
    uploads: str
    results: str
    uploads_kms_key_id: str | None = None


Idempotent = Callable[[Callable[..., Outcome]], Callable[..., Outcome]]


class Ingestion:
    def __init__(self, *, files: FileStore, batches: BatchStore, tenants: TenantStore, catalogue: Catalogue,
                 s3: Any, starter: ExecutionStarter, notify: Callable[[NotificationEvent], None],
                 buckets: Buckets, limits: IngestionLimits | None = None,
                 idempotent: Idempotent | None = None) -> None:
        self._files = files
        self._batches = batches
        self._tenants = tenants
        self._catalogue = catalogue
        self._s3 = s3
        self._starter = starter
        self._notify = notify
        self._buckets = buckets
        self.limits = limits or IngestionLimits()
        self._run = idempotent(self._process) if idempotent else self._process

    # --- entry --------------------------------------------------------------------------------------

    def handle(self, body: str, *, message_id: str | None = None) -> list[Outcome]:
        """Process one queue message; returns what became of each unit of work in it."""
        logger.remove_keys(["correlation_id", "tenant_id", "batch_id"])  # left by the previous message
        try:
            jobs = parse_message(body)
        except UnreadableMessage as exc:
            # Poison: no retry will help, but dropping it would hide a producer's bug. Raising sends it
            # through SQS's redrive to the DLQ after maxReceiveCount, where the DLQ alarm shows it.
            logger.error("unreadable ingestion message", extra={"message_id": message_id, "detail": str(exc),
                                                                "bytes": len(body)})
            metrics.add_metric(name="IngestionPoisonMessages", unit=MetricUnit.Count, value=1)
            raise
        if not jobs:
            logger.info("ingestion message ignored", extra={"message_id": message_id})
        outcomes = []
        for job in jobs:
            outcome = self._run(idempotency={"key": job.idempotency_key}, job=job)
            logger.info("ingestion done", extra={"message_id": message_id, **outcome})
            outcomes.append(outcome)
        return outcomes

    def _process(self, *, idempotency: dict[str, str], job: S3Object | BatchSubmitted) -> Outcome:
        """One unit of work; `idempotency` is what Powertools keys the run on."""
        if isinstance(job, BatchSubmitted):
            if job.correlation_id:  # the request id of POST /v1/batches
                logger.set_correlation_id(job.correlation_id)
            return self.submit(job.tenant_id, job.batch_id)
        return self.object_created(job)

    @staticmethod
    def _dropped(reason: str, **extra: Any) -> Outcome:
        logger.warning("ingestion message dropped", extra={"reason": reason, **extra})
        metrics.add_metric(name="IngestionDropped", unit=MetricUnit.Count, value=1)
        return {"outcome": "dropped", "reason": reason}

    # --- S3 objects ---------------------------------------------------------------------------------

    def object_created(self, obj: S3Object) -> Outcome:
        if obj.bucket != self._buckets.uploads:
            return self._dropped("not the uploads bucket", bucket=obj.bucket)
        if (file_key := parse_object_key(obj.key)) is not None:
            return self.file_arrived(*file_key)
        if (direct := direct_upload_key(obj.key)) is not None:
            return self.direct_upload(obj, *direct)
        return self._dropped("outside the tenants' files/ and batches/ prefixes")

    def file_arrived(self, tenant_id: str, file_id: str) -> Outcome:
        """An object under `<tenant>/files/`: promote a presigned upload; tell the tenant a batch file is in."""
        try:
            file = self._files.get(tenant_id, file_id)  # promotes a pending presigned upload
        except FileObjectNotFoundError:
            return self._dropped("no file record (deleted, or not written through the Files API)",
                                 tenant_id=tenant_id, file_id=file_id)
        if file.purpose != "batch":
            return {"outcome": "ignored", "tenant_id": tenant_id, "file_id": file_id, "purpose": file.purpose}
        if file.status != "processed":
            return self._dropped("the object is gone", tenant_id=tenant_id, file_id=file_id)
        data: dict[str, Any] = {"file_id": file.id, "filename": file.filename, "purpose": file.purpose,
                                "bytes": file.bytes, "status": file.status}
        if file.bytes <= self.limits.max_file_bytes:
            lines = self._count_lines(object_key(tenant_id, file.id))
            if lines is None:
                return self._dropped("the object is gone", tenant_id=tenant_id, file_id=file_id)
            data["lines"] = lines
        # One id per file: a repeated event (the object written again) is one notification.
        self._notify(NotificationEvent(id=f"evt_{file.id}_ingested", type="file.ingested", tenant_id=tenant_id,
                                       created_at=file.created_at, correlation_id=file.id, data=data))
        return {"outcome": "file_ingested", "tenant_id": tenant_id, "file_id": file.id}

    def _count_lines(self, key: str) -> int | None:
        """Non-blank lines, streamed (the file may be far larger than memory allows to hold twice)."""
        try:
            body = self._s3.get_object(Bucket=self._buckets.uploads, Key=key)["Body"]
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        with body:
            return count_lines(iter(lambda: body.read(_STREAM_CHUNK), b""))

    def direct_upload(self, obj: S3Object, tenant_id: str, name: str) -> Outcome:
        """A data team's upload into `<tenant>/batches/`: file record, copy, batch, then as `batch.submitted`."""
        if not TENANT_ID.match(tenant_id):
            return self._dropped("not a tenant id", key_bytes=len(obj.key))
        tenant = self._tenants.get_tenant(tenant_id)
        if tenant is None or tenant.status != "active":
            return self._dropped("tenant unknown or disabled", tenant_id=tenant_id)
        source: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            source["VersionId"] = obj.version_id
        try:
            head = self._s3.head_object(**source)
        except Exception as exc:
            if _not_found(exc):
                return self._dropped("the object is gone", tenant_id=tenant_id)
            raise
        file = FileObject(id=derived_file_id(obj), bytes=int(head["ContentLength"]),
                          created_at=obj.event_time_ms // 1000, filename=clean_filename(name), purpose="batch",
                          status="processed")
        self._register_file(tenant_id, file)
        self._copy(source, object_key(tenant_id, file.id))
        batch = self._batch_of(tenant_id, file)
        if batch is None:
            batch = self._batches.create(
                tenant_id, input_file_id=file.id, endpoint=DIRECT_ENDPOINT, completion_window=DIRECT_WINDOW,
                metadata={"source": "s3", "key": obj.key[:512]}, principal=service_principal(tenant_id, tenant.plan),
                window_s=self.limits.window_s)
            logger.info("batch created from a direct upload", extra={"tenant_id": tenant_id, "batch_id": batch.id,
                                                                     "file_id": file.id, "bytes": file.bytes})
        return self.submit(tenant_id, batch.id)

    def _register_file(self, tenant_id: str, file: FileObject) -> None:
        """The file's record, once: a retry finds it there (the id is derived from the upload)."""
        try:
            self._files.register(tenant_id, file)
        except Exception as exc:
            if not condition_failed(exc):
                raise

    def _copy(self, source: dict[str, str], key: str) -> None:
        """Copy the upload to the file's key unless a previous attempt did (multipart above 5 GB)."""
        bucket = self._buckets.uploads
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
            return
        except Exception as exc:
            if not _not_found(exc):
                raise
        extra = {"ServerSideEncryption": "aws:kms"}
        if self._buckets.uploads_kms_key_id:
            extra["SSEKMSKeyId"] = self._buckets.uploads_kms_key_id
        self._s3.copy(source, bucket, key, ExtraArgs=extra)

    def _batch_of(self, tenant_id: str, file: FileObject) -> Batch | None:
        """The batch an earlier attempt created for this file: among the batches created since the upload."""
        after = None
        while True:
            page = self._batches.list(tenant_id, limit=100, after=after)
            for batch in page.data:
                if batch.input_file_id == file.id:
                    return batch
                if batch.created_at < file.created_at - CLOCK_SKEW_S:
                    return None
            if not page.has_more:
                return None
            after = page.last_id

    # --- batch.submitted ----------------------------------------------------------------------------

    def submit(self, tenant_id: str, batch_id: str) -> Outcome:
        """Validate the batch's input file, write its work chunks and error results, and start its workflow."""
        logger.append_keys(tenant_id=tenant_id, batch_id=batch_id)
        try:
            batch = self._batches.get(tenant_id, batch_id)
        except BatchNotFoundError:
            return self._dropped("no such batch", tenant_id=tenant_id, batch_id=batch_id)
        if batch.status == "failed" and batch.in_progress_at is None:
            # Failed in validation by an earlier attempt, which may have died before its notification.
            self._notify_failed(tenant_id, batch)
            return {"outcome": "failed", "tenant_id": tenant_id, "batch_id": batch_id}
        if batch.status in TERMINAL_STATUSES or batch.status == "finalizing":
            return {"outcome": "skipped", "tenant_id": tenant_id, "batch_id": batch_id, "status": batch.status}
        # `validating`, or started by an earlier attempt that may have died before StartExecution: the same
        # file gives the same chunks, results already written stay as they are, and the start is repeatable.
        return self._validate_and_start(tenant_id, batch)

    def _validate_and_start(self, tenant_id: str, batch: Batch) -> Outcome:
        limits = self.limits
        checker = LineChecker(endpoint=batch.endpoint, catalogue=self._catalogue, max_lines=limits.max_lines,
                              max_line_bytes=limits.max_line_bytes)
        try:
            with self._input_pieces(tenant_id, batch) as pieces:
                # The valid lines as their chunks' JSON only: never the file, its text or its parsed lines.
                bodies = list(chunk_bodies(checker.items(pieces), max_items=limits.chunk_items,
                                           max_bytes=limits.chunk_bytes))
        except BatchFileError as exc:
            if batch.in_progress_at is not None:
                # Started before and its file deleted since: its chunks are written, its workflow most likely
                # running; failing it here could fail a batch that is fine.
                logger.error("a started batch's input file is gone", extra={"code": exc.code})
                return {"outcome": "skipped", "tenant_id": tenant_id, "batch_id": batch.id, "code": exc.code}
            return self._fail(tenant_id, batch, exc)
        chunks = self._write_chunks(tenant_id, batch.id, bodies)
        del bodies
        self._batches.write_error_results(tenant_id, batch.id,
                                          ((e.line, e.custom_id, e.result()) for e in checker.errors))
        try:
            self._batches.start(tenant_id, batch.id, total=checker.total,
                                execution_arn=self._starter.execution_arn(batch.id))
        except ConflictError:
            # Failed meanwhile (nothing else leaves `validating`): there is nothing to run.
            return {"outcome": "skipped", "tenant_id": tenant_id, "batch_id": batch.id}
        self._start_workflow(tenant_id, batch.id, chunks)
        metrics.add_metric(name="BatchesStarted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BatchPromptTokensEstimated", unit=MetricUnit.Count, value=checker.prompt_tokens)
        logger.info("batch validated", extra={"lines": checker.total, "valid": checker.valid,
                                              "invalid": len(checker.errors), "chunks": len(chunks),
                                              "prompt_tokens_estimated": checker.prompt_tokens})
        return {"outcome": "started", "tenant_id": tenant_id, "batch_id": batch.id, "total": checker.total,
                "invalid": len(checker.errors), "chunks": len(chunks)}

    def _write_chunks(self, tenant_id: str, batch_id: str, bodies: list[bytes]) -> list[dict[str, Any]]:
        """Each chunk object, CHUNK_WRITERS at a time; the first failure raises (writes not begun are cancelled)."""
        chunks = [{"index": index, "key": chunk_key(tenant_id, batch_id, index)} for index in range(len(bodies))]

        def put(index: int) -> None:
            self._s3.put_object(Bucket=self._buckets.results, Key=chunks[index]["key"], Body=bodies[index],
                                ContentType="application/json")

        pool = ThreadPoolExecutor(max_workers=CHUNK_WRITERS, thread_name_prefix="chunk-writer")
        try:
            for _ in pool.map(put, range(len(bodies))):
                pass
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return chunks

    @contextmanager
    def _input_pieces(self, tenant_id: str, batch: Batch) -> Iterator[Iterator[bytes]]:
        """The input file's bytes as they stream from S3, in pieces; BatchFileError when it is gone or too large
        to read (refused before reading: the object may be larger than the function's memory)."""
        gone = BatchFileError(f"The input file {batch.input_file_id} no longer exists.", code="file_not_found")
        try:
            file = self._files.get(tenant_id, batch.input_file_id)
        except FileObjectNotFoundError:
            raise gone from None
        limit = self.limits.max_file_bytes
        if file.bytes > limit:
            raise BatchFileError(f"The file is {file.bytes} bytes; a batch file may have at most {limit}.",
                                 code="file_too_large")
        try:
            response = self._s3.get_object(Bucket=self._buckets.uploads, Key=object_key(tenant_id, file.id))
        except Exception as exc:
            if _not_found(exc):
                raise gone from None
            raise
        body = response["Body"]
        with body:
            size = response.get("ContentLength")
            if size is not None and int(size) > limit:  # the object itself, whatever its record says
                raise BatchFileError(f"The file is {int(size)} bytes; a batch file may have at most {limit}.",
                                     code="file_too_large")
            yield iter(lambda: body.read(_STREAM_CHUNK), b"")

    def _start_workflow(self, tenant_id: str, batch_id: str, chunks: list[dict[str, Any]]) -> None:
        principal = self._batches.principal(tenant_id, batch_id)
        payload = {
            "tenant_id": tenant_id,
            "batch_id": batch_id,
            # Scopes sorted: a redelivery sends the same input (StartExecution then answers the same execution).
            "principal": {**principal.model_dump(mode="json"), "scopes": sorted(principal.scopes)},
            # Without the canary seed, a tenant secret: the safety function reads it by tenant id.
            "safety": self._safety(tenant_id).model_dump(mode="json", exclude={"canary_seed"}),
            "chunks": chunks,
        }
        self._starter.start(batch_id, payload)

    def _safety(self, tenant_id: str) -> SafetySettings:
        policy = self._tenants.get_policy(tenant_id)
        return policy.settings.safety if policy is not None else SafetySettings()

    # --- failures -----------------------------------------------------------------------------------

    def _fail(self, tenant_id: str, batch: Batch, problem: BatchFileError) -> Outcome:
        try:
            failed = self._batches.fail(tenant_id, batch.id, problem.errors)
        except ConflictError:
            return {"outcome": "skipped", "tenant_id": tenant_id, "batch_id": batch.id}
        metrics.add_metric(name="BatchesFailedValidation", unit=MetricUnit.Count, value=1)
        logger.info("batch failed validation", extra={"code": problem.code})
        self._notify_failed(tenant_id, failed, code=str(problem.code), reason=problem.message)
        return {"outcome": "failed", "tenant_id": tenant_id, "batch_id": batch.id, "code": problem.code}

    def _notify_failed(self, tenant_id: str, batch: Batch, *, code: str | None = None,
                       reason: str | None = None) -> None:
        """`batch.failed` as the workflow's `fail` task sends it, plus the batch's errors (line errors included)."""
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        first = errors[0] if errors else BatchError(code="invalid_batch_file", message="The input file is not valid.")
        self._notify(NotificationEvent(
            id=f"evt_{batch.id}_failed", type="batch.failed", tenant_id=tenant_id,  # one per batch: it fails once
            created_at=batch.failed_at or batch.created_at, correlation_id=batch.id,
            data={"batch_id": batch.id, "status": "failed", "code": code or first.code,
                  "reason": reason or first.message, "input_file_id": batch.input_file_id,
                  "errors": [e.model_dump(mode="json", exclude_none=True) for e in errors]}))


def count_lines(chunks: Iterator[bytes]) -> int:
    """Non-blank lines across `chunks` (the file's bytes in pieces), as the validation counts them."""
    count, blank = 0, True  # `blank`: the line in progress has only whitespace so far
    for chunk in chunks:
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            if not blank or part.strip():
                count += 1
            blank = True
        if parts[-1].strip():
            blank = False
    return count + (0 if blank else 1)
