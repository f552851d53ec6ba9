"""The Files API's objects in OpenAI's shapes, plus the gateway's presigned-upload extension."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What a client may upload for. Output files (`batch_output`) are written by the gateway itself.
UploadPurpose = Literal["batch"]
UPLOAD_PURPOSES: tuple[str, ...] = ("batch",)
FileStatus = Literal["pending_upload", "uploaded", "processed", "error"]

FILE_ID = re.compile(r"^file-[0-9A-Za-z]{24}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_FILENAME = 255


def clean_filename(name: str | None) -> str:
    """The last path component, without control characters, at most 255 characters; `file` when nothing is left."""
    base = _CONTROL.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return base[:MAX_FILENAME] or "file"


class FileObject(BaseModel):
    """OpenAI's file object. `pending_upload` is the gateway's status for a presigned upload not yet received."""

    id: str = Field(description="`file-` and 24 base62 characters")
    object: Literal["file"] = "file"
    bytes: int = Field(ge=0, description="The file's size in bytes (for a pending upload: the size declared)")
    created_at: int = Field(description="Unix time in seconds")
    filename: str
    purpose: str = Field(description="`batch` for uploads; `batch_output` for files the gateway writes")
    status: FileStatus
    status_details: str | None = Field(default=None, description="Why the status is `error`")


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FilePage(BaseModel):
    """One page of `GET /v1/files`, in OpenAI's cursor-list shape."""

    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileUploadForm(BaseModel):
    """The multipart/form-data body of `POST /v1/files` (documentation: the route parses the form itself)."""

    file: bytes = Field(description="The file, with its filename; for `batch`, UTF-8 JSON Lines")
    purpose: UploadPurpose = Field(description="Only `batch` for now")


class UploadCreate(BaseModel):
    """`POST /v1/files/uploads`: ask for a presigned URL to PUT a file too large for `POST /v1/files`."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=MAX_FILENAME)
    purpose: UploadPurpose
    bytes: int = Field(gt=0, description="The exact size of the file to be PUT; S3 refuses any other length")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if _CONTROL.search(value) or "/" in value or "\\" in value:
            raise ValueError("a file name without path separators or control characters")
        return value


class PresignedUpload(BaseModel):
    """Where and how to PUT the bytes: send exactly `upload_headers` with the PUT, before `expires_at`."""

    file: FileObject
    upload_url: str = Field(description="Presigned S3 PUT URL")
    upload_method: Literal["PUT"] = "PUT"
    upload_headers: dict[str, str] = Field(description="Headers the PUT must carry, as given (they are signed)")
    expires_at: int = Field(description="Unix time in seconds after which the URL is refused")
