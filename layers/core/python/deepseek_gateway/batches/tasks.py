"""The `batch` function's bookkeeping tasks in the batch workflow: load_chunk, record, finalize, fail.

    {"action": "load_chunk", "tenant_id", "batch_id", "chunk": {"index", "key"}}  → {"items": [...]}
    {"action": "record", "state": {the item's whole state}}                        → {"kind": "output" | "error"}
    {"action": "finalize", "tenant_id", "batch_id"}                                → the Batch object
    {"action": "fail", "tenant_id", "batch_id", "error": {"Error", "Cause"}}       → the Batch object

Exactly once is the point: a line's result, its count and its billing are one transaction guarded
by the line result's condition, so Step Functions retries and redeliveries record (and bill) a line
once; finalize gives every line that never ran its error result, chooses the file ids once on the
batch record and derives the files from the stored results only, so running it again rewrites the
same files. See docs/batch_contract.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.billing import Billing
from deepseek_gateway.batches.errors import BatchCancelledError, BatchExpiredError
from deepseek_gateway.batches.lines import chunk_key, error_result, output_result, render_jsonl
from deepseek_gateway.batches.models import TERMINAL_STATUSES, Batch, BatchError, BatchItem, LineResult
from deepseek_gateway.batches.objects import OutputFiles, ResultsBucket
from deepseek_gateway.batches.outcomes import task_error
from deepseek_gateway.batches.store import BatchStore, LineResultConflict
from deepseek_gateway.catalogue import Catalogue
from deepseek_gateway.cost import answer_cost
from deepseek_gateway.errors import ConflictError, InvalidRequestError
from deepseek_gateway.ids import time_ordered_id
from deepseek_gateway.limits.usage import UsageRecord
from deepseek_gateway.models.chat import ChatCompletion
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.observability import logger, metrics
from deepseek_gateway.safety.verdicts import ContentPolicyViolation
from deepseek_gateway.validation import invalid_request

_MONTH_ROLL_ATTEMPTS = 3
_NOT_RUN_MESSAGE = "The request was not run."


@dataclass
class BatchTaskServices:
    """What the tasks need; built from settings by `runtime.get_task_services`, faked in tests."""

    store: BatchStore
    billing: Billing
    catalogue: Catalogue
    results: ResultsBucket
    outputs: OutputFiles
    retention_days: Callable[[str], int]  # tenant id → how long its usage records are kept
    notify: Callable[[NotificationEvent], None]
    clock: Callable[[], float] = field(default=time.time)
    # tenant id → its monthly budget (None: none), for budget.threshold events from batch spend
    budget: Callable[[str], Decimal | None] = field(default=lambda _tenant_id: None)


# --- events --------------------------------------------------------------------------------------


class TaskError(BaseModel):
    """A Catch's error output: the exception's class name and a JSON text with its message."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class ChunkRef(BaseModel):
    index: int = Field(ge=0)
    key: str


class _BatchRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant_id: str = Field(min_length=1)
    batch_id: str = Field(min_length=1)


class LoadChunk(_BatchRef):
    action: Literal["load_chunk"]
    chunk: ChunkRef


class Finalize(_BatchRef):
    action: Literal["finalize"]


class Fail(_BatchRef):
    action: Literal["fail"]
    error: TaskError | None = None


class Verdict(BaseModel):
    """What `record` reads of a safety verdict."""

    model_config = ConfigDict(extra="ignore")

    blocked: bool = False
    categories: list[str] = Field(default_factory=list)
    completion: dict[str, Any] | None = None


class RouteState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: str
    model: str
    failures: list[str] = Field(default_factory=list)


class ItemState(_BatchRef):
    """One line's state after the inner Map's steps; each step adds its part."""

    principal: Principal
    item: BatchItem
    input: Verdict | None = None
    route: RouteState | None = None
    completion: dict[str, Any] | None = None
    output: Verdict | None = None
    error: TaskError | None = None


# --- load_chunk ----------------------------------------------------------------------------------


def _window_passed(batch: Batch, now: float) -> bool:
    return batch.expires_at is not None and now > batch.expires_at


def load_chunk(event: LoadChunk, services: BatchTaskServices) -> dict[str, Any]:
    """The chunk's items; none once the batch is cancelling, finished or past its window."""
    if event.chunk.key != chunk_key(event.tenant_id, event.batch_id, event.chunk.index):
        raise InvalidRequestError("The chunk key is not this batch's chunk.", param="chunk.key")
    batch = services.store.get(event.tenant_id, event.batch_id)
    if batch.status != "in_progress" or _window_passed(batch, services.clock()):
        logger.info("chunk skipped", extra={"batch_id": batch.id, "status": batch.status,
                                            "chunk": event.chunk.index})
        return {"items": []}
    items = services.results.read_chunk(event.chunk.key)
    return {"items": [item.model_dump(mode="json") for item in items]}


# --- record --------------------------------------------------------------------------------------


def _outcome(state: ItemState) -> tuple[Literal["output", "error"], dict[str, Any]]:
    """The line's line of the output or error file, decided from its state (nothing billed yet)."""
    custom_id = state.item.custom_id
    if state.error is not None:
        code, message = task_error(state.error.error, state.error.cause)
        return "error", error_result(custom_id, code, message)
    if state.input is not None and state.input.blocked:
        blocked = ContentPolicyViolation(state.input.categories)
        return "error", error_result(custom_id, str(blocked.code), blocked.message)
    if state.output is not None and state.output.blocked:
        named = ", ".join(sorted(set(state.output.categories))) or "unspecified"
        return "error", error_result(custom_id, "content_filter",
                                     f"The response was blocked by the gateway's content policy. Categories: {named}.")
    completion = state.output.completion if state.output is not None else None
    completion = completion or state.completion
    if completion is None or state.route is None:
        logger.error("record: an item without an answer or an error", extra={"batch_id": state.batch_id,
                                                                             "line": state.item.line})
        return "error", error_result(custom_id, "internal_error", "The request could not be processed.")
    return "output", output_result(custom_id, request_id(state.batch_id, state.item.line), completion)


def request_id(batch_id: str, line: int) -> str:
    """A line's request id: in the output file's `response.request_id` and in its usage record."""
    return f"{batch_id}:{line}"


def _usage_record(state: ItemState, services: BatchTaskServices, now: float) -> UsageRecord:
    assert state.route is not None
    raw = state.completion or (state.output.completion if state.output else None) or {}
    try:
        usage = ChatCompletion.model_validate(raw).usage
    except ValidationError:
        usage = None  # unusable for billing, but the client still gets its answer
    entry = services.catalogue.find(state.route.model) or services.catalogue.find(str(state.item.body.get("model")))
    cost = answer_cost(entry, usage) if entry is not None else Decimal(0)
    if entry is None:
        logger.warning("record: a model not in the catalogue, billed at 0", extra={"model": state.route.model})
    return UsageRecord(
        tenant_id=state.tenant_id, key_id=state.principal.key_id,
        request_id=request_id(state.batch_id, state.item.line),
        model=str(state.item.body.get("model")), served_by=entry.id if entry else state.route.model,
        provider=state.route.provider, prompt_tokens=usage.prompt_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0, completion_tokens=usage.completion_tokens if usage else 0,
        cost_usd=cost, fallbacks=len(state.route.failures), status=200, at=now,
    )


def record(state: ItemState, services: BatchTaskServices) -> dict[str, Any]:
    """Write the line's result once; an answered line is billed in the same transaction."""
    if state.principal.tenant_id != state.tenant_id:
        raise InvalidRequestError("The item's principal belongs to another tenant.", param="principal")
    kind, result = _outcome(state)
    extra: list[dict[str, Any]] = []
    now = services.clock()
    usage = None
    if kind == "output":
        usage = _usage_record(state, services, now)
        extra = services.billing.items(usage, services.retention_days(state.tenant_id))
    for _ in range(_MONTH_ROLL_ATTEMPTS):
        try:
            written = services.store.write_line_result(state.tenant_id, state.batch_id, line=state.item.line,
                                                       custom_id=state.item.custom_id, kind=kind, result=result,
                                                       extra_items=extra)
            break
        except LineResultConflict as conflict:  # the month spend's counter is in an old month
            assert usage is not None
            services.billing.open_month(state.tenant_id, usage.at, conflict.item)
    else:
        raise RuntimeError("the tenant's month counter could not be opened")
    if not written:
        logger.info("line already recorded", extra={"batch_id": state.batch_id, "line": state.item.line})
        return {"kind": kind}
    metrics.add_metric(name="BatchLinesAnswered" if kind == "output" else "BatchLinesFailed", unit=MetricUnit.Count,
                       value=1)
    if usage is not None:  # the same metric as the synchronous path: spend is spend
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=float(usage.cost_usd))
        _budget_thresholds(state, services)
    return {"kind": kind}


def _budget_thresholds(state: ItemState, services: BatchTaskServices) -> None:
    """Batch spend crosses budget thresholds too. The line is recorded and billed already: a failure here is
    logged, not raised (a retried record would find the line written and never come back here)."""
    try:
        budget = services.budget(state.tenant_id)
        if budget:
            services.billing.announce_thresholds(
                state.tenant_id, budget, state.batch_id,
                lambda event: services.notify(NotificationEvent.model_validate(event)))
    except Exception:
        logger.exception("budget thresholds not checked", extra={"batch_id": state.batch_id})


# --- finalize ------------------------------------------------------------------------------------


def _never_run_error(batch: Batch, now: float) -> tuple[str, str]:
    if batch.status == "cancelling":
        return BatchCancelledError.code, BatchCancelledError(batch.id).message
    if _window_passed(batch, now):
        return BatchExpiredError.code, BatchExpiredError(batch.id).message
    return "internal_error", _NOT_RUN_MESSAGE


def _record_never_run(batch: Batch, tenant_id: str, services: BatchTaskServices) -> None:
    """An error result for every line of the chunks without a result: conservation at the end."""
    done = {result.line for result in services.store.line_results(tenant_id, batch.id)}
    missing = [item for key in services.results.chunk_keys(tenant_id, batch.id)
               for item in services.results.read_chunk(key) if item.line not in done]
    if not missing:
        return
    code, message = _never_run_error(batch, services.clock())
    logger.info("lines never run", extra={"batch_id": batch.id, "lines": len(missing), "code": code})
    for item in missing:
        services.store.write_line_result(tenant_id, batch.id, line=item.line, custom_id=item.custom_id, kind="error",
                                         result=error_result(item.custom_id, code, message))


def _write_files(batch: Batch, tenant_id: str, results: list[LineResult], services: BatchTaskServices) -> None:
    outputs = render_jsonl(r.result for r in results if r.kind == "output")
    errors = render_jsonl(r.result for r in results if r.kind == "error")
    now = services.clock()
    output_id, error_id = services.store.claim_output_files(
        tenant_id, batch.id, time_ordered_id("file-", now) if outputs else None,
        time_ordered_id("file-", now) if errors else None)
    for file_id, data, suffix in ((output_id, outputs, "output"), (error_id, errors, "error")):
        if file_id is None:
            if data:  # a result stored after the ids were chosen (cannot happen in the workflow): say so
                logger.error("results without a file", extra={"batch_id": batch.id, "file": suffix})
            continue
        services.outputs.write(tenant_id, file_id, filename=f"{batch.id}_{suffix}.jsonl", data=data,
                               created_at=int(now))


def _completed_event(tenant_id: str, batch: Batch) -> NotificationEvent:
    at = batch.completed_at or batch.cancelled_at or batch.expired_at or batch.created_at
    return NotificationEvent(
        id=f"evt_{batch.id}_completed", type="batch.completed", tenant_id=tenant_id, created_at=at,
        correlation_id=batch.id,
        data={"batch_id": batch.id, "status": batch.status, "input_file_id": batch.input_file_id,
              "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
              "request_counts": batch.request_counts.model_dump(), "metadata": batch.metadata})


def finalize(event: Finalize, services: BatchTaskServices) -> dict[str, Any]:
    """Error results for lines never run, the output and error files, the final status, `batch.completed`."""
    tenant_id = event.tenant_id
    batch = services.store.get(tenant_id, event.batch_id)
    if batch.status not in TERMINAL_STATUSES:
        if batch.status == "validating":
            raise ConflictError(f"Batch {batch.id} has not started.", param="batch_id")
        batch = services.store.begin_finalizing(tenant_id, batch.id)
        _record_never_run(batch, tenant_id, services)
        results = list(services.store.line_results(tenant_id, batch.id))
        _write_files(batch, tenant_id, results, services)
        expired = _window_passed(batch, services.clock()) and any(
            (r.result.get("error") or {}).get("code") == BatchExpiredError.code for r in results)
        batch = services.store.finish(tenant_id, batch.id, expired=expired)
    if batch.status != "failed":  # sent again by a second run: the notifier drops the same event id
        services.notify(_completed_event(tenant_id, batch))
    _delete_chunks(tenant_id, batch.id, services)
    return batch.model_dump(mode="json")


def _delete_chunks(tenant_id: str, batch_id: str, services: BatchTaskServices) -> None:
    """The work chunks hold the requests, which now live on only in the files the tenant controls. A failure
    here must not fail a finished batch: it is logged, and the results bucket's lifecycle expires them."""
    try:
        removed = services.results.delete_chunks(tenant_id, batch_id)
    except Exception:
        logger.exception("work chunks not deleted", extra={"batch_id": batch_id})
        metrics.add_metric(name="BatchChunksNotDeleted", unit=MetricUnit.Count, value=1)
        return
    logger.info("work chunks deleted", extra={"batch_id": batch_id, "versions": removed})


# --- fail ----------------------------------------------------------------------------------------


def fail(event: Fail, services: BatchTaskServices) -> dict[str, Any]:
    """The workflow failed as a whole: the batch is `failed` and `batch.failed` is sent."""
    code, message = task_error(event.error.error, event.error.cause) if event.error else (
        "internal_error", "The batch could not be processed.")
    try:
        batch = services.store.fail(event.tenant_id, event.batch_id, [BatchError(code=code, message=message)])
    except ConflictError:  # finished before the failure arrived: nothing to change
        return services.store.get(event.tenant_id, event.batch_id).model_dump(mode="json")
    first = batch.errors.data[0] if batch.errors and batch.errors.data else BatchError(code=code, message=message)
    services.notify(NotificationEvent(
        id=f"evt_{batch.id}_failed", type="batch.failed", tenant_id=event.tenant_id,
        created_at=batch.failed_at or int(services.clock()), correlation_id=batch.id,
        data={"batch_id": batch.id, "status": "failed", "code": first.code, "reason": first.message,
              "input_file_id": batch.input_file_id}))
    return batch.model_dump(mode="json")


# --- dispatch ------------------------------------------------------------------------------------


EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def execution_ended(event: dict[str, Any], services: BatchTaskServices) -> dict[str, Any]:
    """EventBridge's notice that a batch's execution ended without its own FailBatch: stopped by hand
    (ABORTED) or past its timeout (TIMED_OUT), or FAILED (also after FailBatch, then a no-op). The batch
    would otherwise stay `in_progress` forever: it is failed here, and `batch.failed` is sent."""
    detail = event.get("detail") or {}
    try:
        execution_input = json.loads(detail.get("input") or "{}")
        tenant_id, batch_id = execution_input["tenant_id"], execution_input["batch_id"]
    except (ValueError, KeyError, TypeError):
        logger.warning("execution event without a batch", extra={"execution": detail.get("executionArn")})
        return {"outcome": "ignored"}
    status = str(detail.get("status") or "FAILED")
    cause = json.dumps({"errorType": f"Execution{status.capitalize()}",
                        "errorMessage": f"The batch's workflow ended {status.lower().replace('_', ' ')}."})
    return fail(Fail(action="fail", tenant_id=tenant_id, batch_id=batch_id,
                     error=TaskError(Error=f"Execution{status.capitalize()}", Cause=cause)), services)


def run_task(event: dict[str, Any], services: BatchTaskServices) -> dict[str, Any]:
    """One bookkeeping task; a malformed event is an InvalidRequestError (never retried by the workflow)."""
    if isinstance(event, dict) and event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        return execution_ended(event, services)
    action = event.get("action") if isinstance(event, dict) else None
    try:
        if action == "load_chunk":
            return load_chunk(LoadChunk.model_validate(event), services)
        if action == "record":
            return record(ItemState.model_validate(event.get("state")), services)
        if action == "finalize":
            return finalize(Finalize.model_validate(event), services)
        if action == "fail":
            return fail(Fail.model_validate(event), services)
    except ValidationError as exc:
        raise invalid_request(exc) from None
    raise InvalidRequestError("`action` must be load_chunk, record, finalize or fail.", param="action")
