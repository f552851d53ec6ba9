"""The Batch API's objects in OpenAI's shapes, and the workflow's items and line results.

A batch record stores OpenAI's `expires_at` as `window_expires_at`: `expires_at` is the jobs table's
TTL attribute, and DynamoDB would delete the record at the end of the window.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)
# Statuses a batch never leaves.
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
BatchEndpoint = Literal["/v1/chat/completions"]
CompletionWindow = Literal["24h"]
LineKind = Literal["output", "error"]

BATCH_ID = re.compile(r"^batch_[0-9A-Za-z]{24}$")
LINE_ID_PREFIX = "batch_req_"
MAX_CUSTOM_ID = 512
# OpenAI's metadata bounds: 16 pairs, keys up to 64 characters, values up to 512.
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
MAX_LIST_LIMIT = 100


class RequestCounts(BaseModel):
    total: int = Field(default=0, ge=0)
    completed: int = Field(default=0, ge=0, description="Lines answered (in the output file)")
    failed: int = Field(default=0, ge=0, description="Lines that ended in the error file")


class BatchError(BaseModel):
    """A file-level problem (or, in a line result, why one line failed)."""

    code: str
    message: str
    param: str | None = None
    line: int | None = Field(default=None, description="1-based physical line number in the input file")


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchError] = Field(default_factory=list)


class Batch(BaseModel):
    """OpenAI's batch object."""

    id: str = Field(description="`batch_` and 24 base62 characters")
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = Field(default=None, description="End of the completion window (Unix seconds)")
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    metadata: dict[str, str] | None = None


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise ValueError(f"at most {MAX_METADATA_PAIRS} key-value pairs")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY or len(item) > MAX_METADATA_VALUE:
            raise ValueError(f"keys up to {MAX_METADATA_KEY} characters, values up to {MAX_METADATA_VALUE}")
    return value


class BatchCreate(BaseModel):
    """The body of `POST /v1/batches`."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, description="A file uploaded with purpose `batch`")
    endpoint: BatchEndpoint
    completion_window: CompletionWindow
    metadata: dict[str, str] | None = Field(default=None, description="Up to 16 pairs; returned as given")

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_metadata(value)


class BatchPage(BaseModel):
    """One page of `GET /v1/batches`, newest first, in OpenAI's cursor-list shape."""

    object: Literal["list"] = "list"
    data: list[Batch]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class BatchItem(BaseModel):
    """One valid input line as the workflow carries it (and as a work chunk stores it)."""

    line: int = Field(ge=1)
    custom_id: str = Field(min_length=1, max_length=MAX_CUSTOM_ID)
    body: dict[str, Any]
    # Enrichment at ingestion: the estimate the synchronous path makes before admission (tokens.py).
    prompt_tokens: int = Field(default=0, ge=0, description="Estimated prompt tokens of `body`")


class LineResult(BaseModel):
    """What became of one input line: `result` is its line of the output (or error) file."""

    line: int = Field(ge=1)
    custom_id: str | None = Field(default=None, description="None when the line was not a JSON object with one")
    kind: LineKind
    result: dict[str, Any]
