"""OpenAI's Batch API: batch records and per-line results in the jobs table, work chunks in the results
bucket, the workflow's bookkeeping tasks (see docs/batch_contract.md, the contract between the parts).

The output and error files are ordinary file records (purpose `batch_output`) with their bytes in the
uploads bucket, as the Files API lays them out.
"""

from deepseek_gateway.batches.errors import (
    BatchCancelledError,
    BatchExpiredError,
    BatchNotFoundError,
    ProviderRetryableError,
)
from deepseek_gateway.batches.models import (
    Batch,
    BatchCreate,
    BatchError,
    BatchErrors,
    BatchItem,
    BatchPage,
    BatchStatus,
    LineResult,
    RequestCounts,
)
from deepseek_gateway.batches.store import BatchStore, LineResultConflict

__all__ = [
    "Batch",
    "BatchCancelledError",
    "BatchCreate",
    "BatchError",
    "BatchErrors",
    "BatchExpiredError",
    "BatchItem",
    "BatchNotFoundError",
    "BatchPage",
    "BatchStatus",
    "BatchStore",
    "LineResult",
    "LineResultConflict",
    "ProviderRetryableError",
    "RequestCounts",
]
