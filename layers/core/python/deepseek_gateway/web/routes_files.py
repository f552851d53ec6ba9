"""OpenAI's Files API (scope `files`): upload, list, retrieve, download and delete batch input files.

The tenant is the caller's, from the authorizer context only; another tenant's file id is a 404 exactly
like an unknown one. Files larger than a request through API Gateway and Lambda can carry go through
`POST /v1/files/uploads` (a presigned S3 PUT) instead of `POST /v1/files`.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.errors import InvalidRequestError, PayloadTooLargeError
from deepseek_gateway.files.models import UPLOAD_PURPOSES, UploadCreate
from deepseek_gateway.files.multipart import parse_form
from deepseek_gateway.observability import logger
from deepseek_gateway.validation import parse_model
from deepseek_gateway.web.auth import require
from deepseek_gateway.web.body import read_json_body, request_bytes, request_text
from deepseek_gateway.web.query import int_param
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services

router = Router()

# Room for the multipart envelope (boundaries, part headers, the purpose field) beyond the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
UPLOAD_REQUEST_LIMIT = 16 * 1024


@router.post("/files")
def create_file() -> Response:
    """multipart/form-data with `file` (a UTF-8 JSONL file for `batch`) and `purpose` (`batch`)."""
    principal = require(router, "files")
    store = get_services().files
    raw = request_bytes(router.current_event)  # multipart/form-data arrives base64-encoded
    limit = store.limits.max_file_bytes
    if len(raw) > limit + MULTIPART_OVERHEAD_BYTES:
        raise PayloadTooLargeError(
            f"The request body is {len(raw)} bytes; POST /v1/files takes files up to {limit} bytes (requests pass "
            "through API Gateway, 10 MB at most, and Lambda, 6 MB at most). Upload larger files with "
            "POST /v1/files/uploads.", param="file", code="file_too_large")
    form = parse_form(raw, router.current_event.headers.get("content-type"))
    purpose_part = form.get("purpose")
    if purpose_part is None:
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose",
                                  code="missing_required_parameter")
    purpose = purpose_part.data.decode("utf-8", "replace").strip()
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequestError(f"Invalid value for 'purpose': '{purpose}'. Supported values: "
                                  + ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES) + ".", param="purpose")
    file_part = form.get("file")
    if file_part is None:
        raise InvalidRequestError("Missing required parameter: 'file'.", param="file",
                                  code="missing_required_parameter")
    file = store.create(principal.tenant_id, filename=file_part.filename, purpose=purpose, data=file_part.data)
    logger.info("file uploaded", extra={"tenant_id": principal.tenant_id, "file_id": file.id, "bytes": file.bytes,
                                        "purpose": file.purpose})
    return json_response(200, file.model_dump(mode="json", exclude_none=True))


@router.post("/files/uploads")
def create_upload() -> Response:
    """A presigned S3 PUT URL for a file too large for POST /v1/files (up to `max_presigned_bytes`).

    The client must PUT exactly `bytes` bytes to `upload_url` before `expires_at` (15 minutes) and send every
    header in `upload_headers` as given — `x-amz-server-side-encryption: aws:kms` (and the key id when one is
    configured), `Content-Length` and `If-None-Match: *` are signed, and S3 refuses a PUT without them. The
    file's status is `pending_upload` until the object exists; `GET /v1/files/{id}` then reports `processed`.
    """
    principal = require(router, "files")
    store = get_services().files
    request = parse_model(UploadCreate, read_json_body(request_text(router.current_event), UPLOAD_REQUEST_LIMIT))
    upload = store.create_upload(principal.tenant_id, request)
    logger.info("presigned upload created", extra={"tenant_id": principal.tenant_id, "file_id": upload.file.id,
                                                   "bytes": request.bytes})
    return json_response(200, upload.model_dump(mode="json", exclude_none=True))


@router.get("/files")
def list_files() -> Response:
    principal = require(router, "files")
    query = router.current_event.query_string_parameters or {}
    limit = int_param(query, "limit", 10000)
    page = get_services().files.list(principal.tenant_id, purpose=query.get("purpose") or None, limit=limit,
                                     after=query.get("after") or None, order=query.get("order", "desc"))  # type: ignore[arg-type]
    return json_response(200, page.model_dump(mode="json", exclude_none=True))


@router.get("/files/<file_id>")
def retrieve_file(file_id: str) -> Response:
    principal = require(router, "files")
    file = get_services().files.get(principal.tenant_id, file_id)
    return json_response(200, file.model_dump(mode="json", exclude_none=True))


@router.get("/files/<file_id>/content")
def download_file(file_id: str) -> Response:
    """The raw bytes (base64 in the Lambda response, decoded by API Gateway), or a 302 to a presigned URL."""
    principal = require(router, "files")
    content = get_services().files.read(principal.tenant_id, file_id)
    if content.redirect_url is not None:
        return Response(status_code=302, headers={"Location": content.redirect_url}, body="")
    # As OpenAI answers. (Not application/jsonl: Powertools would take it for JSON, by prefix, and re-encode it.)
    return Response(status_code=200, content_type="application/octet-stream", body=content.data or b"",
                    headers={"Content-Disposition": f'attachment; filename="{file_id}"'})


@router.delete("/files/<file_id>")
def delete_file(file_id: str) -> Response:
    principal = require(router, "files")
    deleted = get_services().files.delete(principal.tenant_id, file_id)
    logger.info("file deleted", extra={"tenant_id": principal.tenant_id, "file_id": file_id})
    return json_response(200, deleted.model_dump(mode="json"))
