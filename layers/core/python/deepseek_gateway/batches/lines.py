"""A batch input file's lines: validated as the ingestion reads them, and the output and error file lines.

Each non-empty line must be `{"custom_id": str, "method": "POST", "url": <the batch's endpoint>,
"body": {chat completion request}}`; the body is checked exactly as `POST /v1/chat/completions` checks
it. Line numbers are the file's 1-based physical line numbers; blank lines are skipped and not
counted. A bad line becomes an error result; a problem with the file as a whole raises BatchFileError.

The ingestion streams the file (LineChecker, chunk_bodies): it holds one line at a time and the valid
lines as chunk JSON, never the whole file decoded, so a 200 MB file fits its function's memory whatever
its text (a line with one character outside the BMP takes 4 bytes a character once decoded).

The output and error files are OpenAI's:

    {"id": "batch_req_…", "custom_id": "…", "response": {"status_code": 200, "request_id": "…", "body": {…}},
     "error": null}
    {"id": "batch_req_…", "custom_id": "…", "response": null, "error": {"code": "…", "message": "…"}}
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from deepseek_gateway.batches.models import LINE_ID_PREFIX, MAX_CUSTOM_ID, BatchError, BatchItem
from deepseek_gateway.catalogue import Catalogue
from deepseek_gateway.errors import GatewayError, InvalidRequestError, quoted_id
from deepseek_gateway.ids import time_ordered_id
from deepseek_gateway.validation import MAX_JSON_DEPTH, NotJsonError, nesting_exceeds, strict_json

_LINE_FIELDS = ("custom_id", "method", "url", "body")
_BOM = b"\xef\xbb\xbf"
_T = TypeVar("_T")
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


# A line error's message and param as stored: a message can repeat what the line holds (an unknown argument's
# name), and 99 of them go into one transaction (DynamoDB takes at most 4 MB) or 100 into a failed batch's record
# (at most 400 KB an item).
_MAX_ERROR_MESSAGE = 1000
_MAX_ERROR_PARAM = 200


def _line_error(number: int, custom_id: str | None, code: str, message: str, param: str | None = None) -> LineError:
    return LineError(line=number, custom_id=custom_id, code=code, message=message[:_MAX_ERROR_MESSAGE],
                     param=param[:_MAX_ERROR_PARAM] if param else param)


def _check_line(number: int, raw: str, *, endpoint: str, catalogue: Catalogue,
                seen: set[str]) -> BatchItem | LineError:
    try:
        value = strict_json(raw)  # as a request body is read: NaN, Infinity, lone surrogates are no JSON
    except NotJsonError as exc:
        return _line_error(number, None, "invalid_json_line", f"Line {number} is not valid JSON: it contains {exc}.")
    except json.JSONDecodeError as exc:
        return _line_error(number, None, "invalid_json_line", f"Line {number} is not valid JSON ({exc.msg}).")
    except (ValueError, RecursionError):
        return _line_error(number, None, "invalid_json_line", f"Line {number} is not valid JSON.")
    if raw.count("{") + raw.count("[") > MAX_JSON_DEPTH and nesting_exceeds(value, MAX_JSON_DEPTH + 1):
        return _line_error(number, None, "invalid_json_line",
                           f"Line {number}'s body nests lists and objects more than {MAX_JSON_DEPTH} levels deep.")
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
                           f"Unrecognized request argument supplied: {quoted_id(unknown[0])}", unknown[0])
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


def physical_lines(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The physical lines (without their `\\n`) of a file given as its bytes in pieces of any size; as
    `data.split(b"\\n")`, the last one is what follows the last newline (empty after a final newline)."""
    pending: list[bytes] = []  # the pieces of the line in progress
    for piece in pieces:
        parts = piece.split(b"\n")
        if len(parts) == 1:
            pending.append(piece)
            continue
        pending.append(parts[0])
        pending[:] = [b"".join(pending)]  # a long line's pieces go as it is joined, and it goes with the caller
        yield pending.pop()
        yield from parts[1:-1]
        pending.append(parts[-1])
    pending[:] = [b"".join(pending)]
    yield pending.pop()


class LineChecker:
    """Validates a batch file line by line as its bytes arrive, as validate_lines does with the whole file.

    `items(pieces)` yields the valid lines' items in file order; the invalid lines' errors collect in `errors`.
    A problem with the file as a whole raises BatchFileError, with validate_lines' precedence: a byte that is
    not UTF-8 anywhere in the file first (so after too many requests, the rest is still read for that), then
    more than `max_lines` requests, then, at the end, an empty file or one without a valid line.
    """

    def __init__(self, *, endpoint: str, catalogue: Catalogue, max_lines: int, max_line_bytes: int) -> None:
        self._endpoint = endpoint
        self._catalogue = catalogue
        self._max_lines = max_lines
        self._max_line_bytes = max_line_bytes
        self.errors: list[LineError] = []
        self.valid = 0  # items yielded
        self.prompt_tokens = 0  # theirs, estimated as the synchronous path estimates them

    @property
    def total(self) -> int:
        """Every counted line of the file: `request_counts.total`."""
        return self.valid + len(self.errors)

    def items(self, pieces: Iterable[bytes]) -> Iterator[BatchItem]:
        seen: set[str] = set()
        offset = 0  # of the line's first byte in the file (after a byte order mark)
        too_many = False
        for number, physical in enumerate(physical_lines(pieces), start=1):
            if number == 1 and physical.startswith(_BOM):
                physical = physical[len(_BOM):]  # a byte order mark is not part of the first line
            size = len(physical) - physical.endswith(b"\r")  # the UTF-8 size of the line without its \r
            if size > max(self._max_line_bytes, _CUSTOM_ID_SEARCH_BYTES):
                # Too large to run or to search for its custom_id: checked for UTF-8 piece by piece, never decoded
                # whole (a one-line 200 MB file of non-ASCII text would take GBs as str, copies and strips).
                _check_utf8(physical, offset, number)
                offset += len(physical) + 1
                blank = physical.isspace()  # ASCII whitespace only: a megabyte of other spaces is no request either
                del physical
                if too_many or blank:
                    continue
                if self.total >= self._max_lines:
                    too_many = True
                    continue
                self.errors.append(_line_error(number, None, "request_too_large",
                                               f"Line {number} is {size} bytes; a batch request may be at most "
                                               f"{self._max_line_bytes} bytes."))
                continue
            try:
                text = physical.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BatchFileError(f"The file is not UTF-8 text (invalid byte at offset {offset + exc.start}, "
                                     f"line {number}).", code="invalid_file_encoding") from None
            offset += len(physical) + 1
            del physical  # a long line is held once, as text
            raw = text[:-1] if text.endswith("\r") else text
            if too_many or not raw.strip():
                continue
            if self.total >= self._max_lines:
                too_many = True  # raised once the rest of the file is known to be UTF-8
                continue
            if size > self._max_line_bytes:
                self.errors.append(_line_error(number, _custom_id_of(raw), "request_too_large",
                                               f"Line {number} is {size} bytes; a batch request may be at most "
                                               f"{self._max_line_bytes} bytes."))
                continue
            checked = _check_line(number, raw, endpoint=self._endpoint, catalogue=self._catalogue, seen=seen)
            if isinstance(checked, LineError):
                self.errors.append(checked)
                continue
            self.valid += 1
            self.prompt_tokens += checked.prompt_tokens
            yield checked
        if too_many:
            raise BatchFileError(f"The file has more than {self._max_lines} requests; a batch takes at most "
                                 f"{self._max_lines}.", code="too_many_requests")
        if not self.total:
            raise BatchFileError("The file is empty; a batch file has one JSON request per line.", code="empty_file")
        if not self.valid:
            errors = self.errors
            shown = [BatchError(code=e.code, message=e.message, param=e.param, line=e.line)
                     for e in errors[:MAX_FILE_ERRORS]]
            raise BatchFileError(f"No line of the file is a valid request ({len(errors)} invalid); the first: "
                                 f"line {errors[0].line}: {errors[0].message}", code="no_valid_requests",
                                 errors=shown)


def validate_lines(data: bytes, *, endpoint: str, catalogue: Catalogue, max_lines: int, max_line_bytes: int,
                   max_file_bytes: int | None = None) -> ValidatedFile:
    """Every counted line, either valid (an item) or not (an error); BatchFileError for the file as a whole."""
    if max_file_bytes is not None and len(data) > max_file_bytes:
        raise BatchFileError(f"The file is {len(data)} bytes; a batch file may have at most {max_file_bytes}.",
                             code="file_too_large")
    checker = LineChecker(endpoint=endpoint, catalogue=catalogue, max_lines=max_lines, max_line_bytes=max_line_bytes)
    items = list(checker.items([data]))
    return ValidatedFile(items=items, errors=checker.errors)


# A line too large to check is parsed for its custom_id only up to this size: parsing a 200 MB line (a file that
# is one line) would take ~1.8 GB of the function's 2,048 MB for a name in an error result.
_CUSTOM_ID_SEARCH_BYTES = 1024 * 1024


def _check_utf8(line: bytes, offset: int, number: int) -> None:
    """BatchFileError unless `line` is UTF-8, decoded 1 MiB at a time (a sequence cut at a piece's end is
    completed by the next piece), the message as a whole-line decode would give it."""
    view, position = memoryview(line), 0
    while position < len(line):
        piece = view[position:position + _UTF8_PIECE]
        try:
            _, consumed = codecs.utf_8_decode(piece, "strict", position + len(piece) >= len(line))
        except UnicodeDecodeError as exc:
            raise BatchFileError(f"The file is not UTF-8 text (invalid byte at offset {offset + position + exc.start}, "
                                 f"line {number}).", code="invalid_file_encoding") from None
        position += consumed


_UTF8_PIECE = 1024 * 1024


def _custom_id_of(raw: str) -> str | None:
    """The custom_id of a line too large to check, when it is a JSON object with a string one."""
    try:
        value = strict_json(raw)  # a lone surrogate as custom_id could be neither stored nor written to a file
    except (ValueError, RecursionError):
        return None
    custom_id = value.get("custom_id") if isinstance(value, dict) else None
    return custom_id if isinstance(custom_id, str) and 0 < len(custom_id) <= MAX_CUSTOM_ID else None


# --- work chunks in the results bucket ----------------------------------------------------------


def chunk_prefix(tenant_id: str, batch_id: str) -> str:
    return f"{tenant_id}/batches/{batch_id}/chunks/"


def chunk_key(tenant_id: str, batch_id: str, index: int) -> str:
    return f"{chunk_prefix(tenant_id, batch_id)}{index:05d}.json"


def _chunked(entries: Iterable[tuple[_T, int]], *, max_items: int, max_bytes: int) -> Iterator[list[_T]]:
    """Consecutive values (each with its JSON size) in chunks of at most `max_items` values and `max_bytes`
    bytes as a JSON array (a lone value larger than `max_bytes` gets a chunk of its own)."""
    current: list[_T] = []
    size = 2  # the array's brackets
    for value, value_bytes in entries:
        value_bytes += 1  # and its comma
        if current and (len(current) >= max_items or size + value_bytes > max_bytes):
            yield current
            current, size = [], 2
        current.append(value)
        size += value_bytes
    if current:
        yield current


def chunk_bodies(items: Iterable[BatchItem], *, max_items: int, max_bytes: int) -> Iterator[bytes]:
    """The chunk objects' contents (JSON arrays of items `{"line", "custom_id", "body"}`, at most `max_items`
    items and `max_bytes` bytes; a lone item larger gets a chunk of its own), each as soon as it is complete:
    an item is held as its JSON only, and serialized once."""
    encoded = ((json_bytes, len(json_bytes)) for json_bytes in (item.model_dump_json().encode() for item in items))
    for chunk in _chunked(encoded, max_items=max_items, max_bytes=max_bytes):
        yield b"[" + b",".join(chunk) + b"]"
