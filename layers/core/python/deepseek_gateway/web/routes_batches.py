"""OpenAI's Batch API (scope `batch`): create, retrieve, list and cancel batches of chat completions.

Creating a batch checks its input file (the caller's tenant's, purpose `batch`, status `processed`), writes
the record in `validating` and hands the rest to the ingestion function through its queue: the lines are
validated there, not here, so a 200 MB file never passes through this function.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.batches.models import Batch, BatchCreate, BatchError
from deepseek_gateway.errors import ConflictError, InvalidRequestError
from deepseek_gateway.files.store import FileObjectNotFoundError
from deepseek_gateway.observability import logger
from deepseek_gateway.validation import parse_model
from deepseek_gateway.web.auth import require
from deepseek_gateway.web.body import read_json_body, request_text
from deepseek_gateway.web.query import int_param
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services

router = Router()

CREATE_REQUEST_LIMIT = 16 * 1024  # four fields and up to 16 metadata pairs
DEFAULT_LIST_LIMIT = 20


def _batch_response(batch: Batch) -> Response:
    # OpenAI's batch object shows every field, unset ones as null.
    return json_response(200, batch.model_dump(mode="json"))


@router.post("/batches")
def create_batch() -> Response:
    """`{"input_file_id", "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata"?}`."""
    principal = require(router, "batch")
    services = get_services()
    request = parse_model(BatchCreate, read_json_body(request_text(router.current_event), CREATE_REQUEST_LIMIT))
    try:
        file = services.files.get(principal.tenant_id, request.input_file_id)
    except FileObjectNotFoundError as exc:
        exc.param = "input_file_id"  # the same 404 as for any unknown file, named after this body's field
        raise
    if file.purpose != "batch":
        raise InvalidRequestError(f"File {file.id} has purpose `{file.purpose}`; a batch's input file must be "
                                  "uploaded with purpose `batch`.", param="input_file_id", code="invalid_input_file")
    if file.status == "pending_upload":
        raise ConflictError(f"File {file.id} has no content yet: its upload has not arrived.",
                            param="input_file_id", code="file_not_ready")
    if file.status != "processed":
        raise InvalidRequestError(f"File {file.id} cannot be used: its status is `{file.status}`.",
                                  param="input_file_id", code="invalid_input_file")
    store = services.batches
    settings = services.settings
    batch = store.create(principal.tenant_id, input_file_id=file.id, endpoint=request.endpoint,
                         completion_window=request.completion_window, metadata=request.metadata,
                         principal=principal, window_s=settings.batch_completion_window_s)
    try:
        services.submit_batch(principal.tenant_id, batch.id, router.context.get("request_id"))
    except Exception:
        # Nothing would ever validate it: fail it rather than leave it `validating` for good.
        logger.exception("batch could not be queued", extra={"tenant_id": principal.tenant_id, "batch_id": batch.id})
        store.fail(principal.tenant_id, batch.id, [BatchError(
            code="internal_error", message="The batch could not be queued for validation; create it again.")])
        raise
    logger.info("batch created", extra={"tenant_id": principal.tenant_id, "batch_id": batch.id,
                                        "input_file_id": file.id, "bytes": file.bytes})
    return _batch_response(batch)


@router.get("/batches")
def list_batches() -> Response:
    """Newest first; `limit` 1-100 (default 20), `after` the last id of the previous page."""
    principal = require(router, "batch")
    query = router.current_event.query_string_parameters or {}
    limit = int_param(query, "limit", DEFAULT_LIST_LIMIT)
    page = get_services().batches.list(principal.tenant_id, limit=limit, after=query.get("after") or None)
    return json_response(200, page.model_dump(mode="json"))


@router.get("/batches/<batch_id>")
def retrieve_batch(batch_id: str) -> Response:
    principal = require(router, "batch")
    return _batch_response(get_services().batches.get(principal.tenant_id, batch_id))


@router.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Response:
    """`cancelling` at once; the workflow stops routing new lines and finalize moves it to `cancelled`."""
    principal = require(router, "batch")
    batch = get_services().batches.request_cancel(principal.tenant_id, batch_id)
    logger.info("batch cancel requested", extra={"tenant_id": principal.tenant_id, "batch_id": batch_id,
                                                 "status": batch.status})
    return _batch_response(batch)
