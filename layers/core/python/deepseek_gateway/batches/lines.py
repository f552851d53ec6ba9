"""A batch input file's lines: validated as the ingestion reads them, and the output and error file lines.

Each non-empty line must be `{"custom_id": str, "method": "POST", "url": <the batch's endpoint>,
"body": {chat completion request}}`; the body is checked exactly as `POST /v1/chat/completions` checks
it. Line numbers are the file's 1-based physical line numbers; blank lines are skipped and not
counted. A bad line becomes an error result; a problem with the file as a whole raises BatchFileError.

The output and error files are OpenAI's:

    {"id": "batch_req_…", "custom_id": "…", "response": {"status_code": 200, "request_id": "…", "body": {…}},
     "error": null}
    {"id": "batch_req_…", "custom_id": "…", "response": null, "error": {"code": "…", "message": "…"}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from deepseek_gateway.batches.models import LINE_ID_PREFIX, MAX_CUSTOM_ID, BatchError, BatchItem
from deepseek_gateway.catalogue import Catalogue
from deepseek_gateway.errors import GatewayError, InvalidRequestError
from deepseek_gateway.ids import time_ordered_id

_LINE_FIELDS = ("custom_id", "method", "url", "body")
MAX_FILE_ERRORS = 100  # line errors repeated in a failed batch's `errors` when no line is valid


class BatchFileError(InvalidRequestError):
    """The file as a whole cannot be a batch: `errors` become the failed batch's `errors.data`."""

    code = "invalid_batch_file"

    def __init__(self, message: str, *, code: str | None = None, errors: list[BatchError] | None = None) -> None:
        super().__init__(message, param="input_file_id", code=code)
        self.errors = errors or [BatchError(code=str(self.code), message=message)]


class LineError(BaseModel):
    """Why one input line cannot run; it goes to the error file."""

    line: int = Field(ge=1)
    custom_id: str | None = None
    code: str
    message: str
    param: str | None = None

    def result(self) -> dict[str, Any]:
        """This line's line of the error file."""
        return error_result(self.custom_id, self.code, self.message)


class ValidatedFile(BaseModel):
    items: list[BatchItem]
    errors: list[LineError]

    @property
    def total(self) -> int:
        """Every counted line of the file: `request_counts.total`."""
        return len(self.items) + len(self.errors)

    @property
    def prompt_tokens(self) -> int:
        """The valid lines' estimated prompt tokens, as the synchronous path estimates them before admission."""
        return sum(item.prompt_tokens for item in self.items)


# --- output and error file lines ----------------------------------------------------------------


def new_line_id() -> str:
    return time_ordered_id(LINE_ID_PREFIX)


def output_result(custom_id: str, request_id: str, completion: dict[str, Any], *,
                  line_id: str | None = None) -> dict[str, Any]:
    """An answered line, as the output file holds it."""
    return {"id": line_id or new_line_id(), "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": request_id, "body": completion}, "error": None}


def error_result(custom_id: str | None, code: str, message: str, *, line_id: str | None = None) -> dict[str, Any]:
    """A line that has no answer, as the error file holds it."""
    return {"id": line_id or new_line_id(), "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}


def render_jsonl(results: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON object per line, each line ending with a newline."""
    return b"".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for r in results)


# --- validation ---------------------------------------------------------------------------------


def _line_error(number: int, custom_id: str | None, code: str, message: str, param: str | None = None) -> LineError:
    return LineError(line=number, custom_id=custom_id, code=code, message=message, param=param)


def _check_line(number: int, raw: str, *, endpoint: str, catalogue: Catalogue,
                seen: set[str]) -> BatchItem | LineError:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return _line_error(number, None, "invalid_json_line", f"Line {number} is not valid JSON ({exc.msg}).")
    if not isinstance(value, dict):
        return _line_error(number, None, "invalid_json_line", f"Line {number} is not a JSON object.")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        return _line_error(number, None, "invalid_request",
                           f"`custom_id` must be a string of 1 to {MAX_CUSTOM_ID} characters.", "custom_id")
    if custom_id in seen:
        return _line_error(number, custom_id, "duplicate_custom_id",
                           f"The custom_id `{custom_id}` appears on an earlier line; each must be unique.", "custom_id")
    seen.add(custom_id)
    unknown = sorted(key for key in value if key not in _LINE_FIELDS)
    if unknown:
        return _line_error(number, custom_id, "unrecognized_argument",
                           f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    if value.get("method") != "POST":
        return _line_error(number, custom_id, "invalid_request", "`method` must be `POST`.", "method")
    if value.get("url") != endpoint:
        return _line_error(number, custom_id, "invalid_request",
                           f"`url` must be the batch's endpoint, `{endpoint}`.", "url")
    body = value.get("body")
    if not isinstance(body, dict):
        return _line_error(number, custom_id, "invalid_request", "`body` must be a JSON object.", "body")
    from deepseek_gateway.chat_service import parse_request  # the ingestion's need: the batch function skips it
    from deepseek_gateway.tokens import estimate_prompt_tokens

    try:
        request = parse_request(body, catalogue)
    except GatewayError as exc:
        return _line_error(number, custom_id, str(exc.code or "invalid_request"), exc.message,
                           f"body.{exc.param}" if exc.param else "body")
    if body.get("stream") is True:
        return _line_error(number, custom_id, "invalid_request",
                           "Streaming is not available in a batch: omit `stream` or set it to false.", "body.stream")
    return BatchItem(line=number, custom_id=custom_id, body=body, prompt_tokens=estimate_prompt_tokens(request))


def validate_lines(data: bytes, *, endpoint: str, catalogue: Catalogue, max_lines: int, max_line_bytes: int,
                   max_file_bytes: int | None = None) -> ValidatedFile:
    """Every counted line, either valid (an item) or not (an error); BatchFileError for the file as a whole."""
    if max_file_bytes is not None and len(data) > max_file_bytes:
        raise BatchFileError(f"The file is {len(data)} bytes; a batch file may have at most {max_file_bytes}.",
                             code="file_too_large")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte order mark is not part of the first line
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BatchFileError(f"The file is not UTF-8 text (invalid byte at offset {exc.start}, line {line}).",
                             code="invalid_file_encoding") from None
    items: list[BatchItem] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    for number, physical in enumerate(text.split("\n"), start=1):
        raw = physical[:-1] if physical.endswith("\r") else physical
        if not raw.strip():
            continue
        if len(items) + len(errors) >= max_lines:
            raise BatchFileError(f"The file has more than {max_lines} requests; a batch takes at most {max_lines}.",
                                 code="too_many_requests")
        size = len(raw.encode("utf-8"))
        if size > max_line_bytes:
            errors.append(_line_error(number, _custom_id_of(raw), "request_too_large",
                                      f"Line {number} is {size} bytes; a batch request may be at most "
                                      f"{max_line_bytes} bytes."))
            continue
        checked = _check_line(number, raw, endpoint=endpoint, catalogue=catalogue, seen=seen)
        (items if isinstance(checked, BatchItem) else errors).append(checked)  # type: ignore[arg-type]
    if not items and not errors:
        raise BatchFileError("The file is empty; a batch file has one JSON request per line.", code="empty_file")
    if not items:
        shown = [BatchError(code=e.code, message=e.message, param=e.param, line=e.line)
                 for e in errors[:MAX_FILE_ERRORS]]
        raise BatchFileError(f"No line of the file is a valid request ({len(errors)} invalid); the first: "
                             f"line {errors[0].line}: {errors[0].message}", code="no_valid_requests", errors=shown)
    return ValidatedFile(items=items, errors=errors)


def _custom_id_of(raw: str) -> str | None:
    """The custom_id of a line too large to check, when it is a JSON object with a string one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) and 0 < len(custom_id) <= MAX_CUSTOM_ID else None


# --- work chunks in the results bucket ----------------------------------------------------------


def chunk_prefix(tenant_id: str, batch_id: str) -> str:
    return f"{tenant_id}/batches/{batch_id}/chunks/"


def chunk_key(tenant_id: str, batch_id: str, index: int) -> str:
    return f"{chunk_prefix(tenant_id, batch_id)}{index:05d}.json"


def split_chunks(items: Iterable[BatchItem], *, max_items: int, max_bytes: int) -> list[list[BatchItem]]:
    """Consecutive items in chunks of at most `max_items` items and `max_bytes` bytes of JSON (a lone item
    larger than `max_bytes` gets a chunk of its own)."""
    chunks: list[list[BatchItem]] = []
    current: list[BatchItem] = []
    size = 2  # the array's brackets
    for item in items:
        item_bytes = len(item.model_dump_json().encode()) + 1  # and its comma
        if current and (len(current) >= max_items or size + item_bytes > max_bytes):
            chunks.append(current)
            current, size = [], 2
        current.append(item)
        size += item_bytes
    if current:
        chunks.append(current)
    return chunks


def chunk_body(items: list[BatchItem]) -> bytes:
    """A chunk object's content: a JSON array of items `{"line", "custom_id", "body"}`."""
    return b"[" + b",".join(item.model_dump_json().encode() for item in items) + b"]"
