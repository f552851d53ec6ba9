"""OpenAI's Files API: file records in the jobs table, their bytes under the tenant's prefix in the uploads bucket.

    s3://<uploads bucket>/<tenant_id>/files/<file_id>     the bytes, SSE-KMS
    pk = TENANT#<tenant_id>   sk = FILE#<file_id>          the record (id, bytes, created_at, filename, purpose, status)

The batch ingestion maps an object to its file through that key layout (`object_key`, `parse_object_key`).
"""

from deepseek_gateway.files.models import (
    FileDeleted,
    FileObject,
    FilePage,
    FileUploadForm,
    PresignedUpload,
    UploadCreate,
)
from deepseek_gateway.files.store import FileObjectNotFoundError, FileStore, object_key, parse_object_key

__all__ = [
    "FileDeleted",
    "FileObject",
    "FileObjectNotFoundError",
    "FilePage",
    "FileStore",
    "FileUploadForm",
    "PresignedUpload",
    "UploadCreate",
    "object_key",
    "parse_object_key",
]
