"""The ingestion function's parts, built from settings on the first message (never at import time).

Powertools idempotency runs each unit of work once per key (an S3 object version, a submitted batch)
when IDEMPOTENCY_TABLE_NAME is set: records keyed `id`, expiring through the TTL attribute `expiration`.
Without the table (a local setup without one) the repeatable steps alone keep a repeat harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from deepseek_gateway.batches.ingestion import Buckets, ExecutionStarter, Ingestion, IngestionLimits, Outcome
from deepseek_gateway.settings import Settings, get_settings

_REQUIRED = ("jobs_table_name", "tenants_table_name", "uploads_bucket_name", "results_bucket_name",
             "batch_state_machine_arn")
# How long a processed unit of work is remembered: longer than the queue keeps a message (4 days).
IDEMPOTENCY_TTL_S = 7 * 86_400
IDEMPOTENCY_PREFIX = "ingestion"


class IngestionRuntime:
    def __init__(self, ingestion: Ingestion, idempotency_config: Any = None) -> None:
        self.ingestion = ingestion
        self._config = idempotency_config

    def register_lambda_context(self, context: Any) -> None:
        """Lets an idempotency record in progress expire with the invocation that holds it."""
        if self._config is not None and context is not None:
            self._config.register_lambda_context(context)


def idempotency(settings: Settings, dynamodb: Any) -> tuple[Callable[[Callable[..., Outcome]], Callable[..., Outcome]],
                                                               Any]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(table_name=str(settings.idempotency_table_name), key_attr="id",
                                           expiry_attr="expiration", boto3_client=dynamodb)
    config = IdempotencyConfig(event_key_jmespath="key", raise_on_no_idempotency_key=True,
                               expires_after_seconds=IDEMPOTENCY_TTL_S)

    def wrap(function: Callable[..., Outcome]) -> Callable[..., Outcome]:
        return idempotent_function(function, data_keyword_argument="idempotency", persistence_store=persistence,
                                   config=config, key_prefix=IDEMPOTENCY_PREFIX)

    return wrap, config


def build_runtime(settings: Settings) -> IngestionRuntime:
    missing = [name.upper() for name in _REQUIRED if not getattr(settings, name)]
    if missing:
        raise RuntimeError(f"the ingestion function is not configured: {', '.join(missing)}")
    import boto3  # lazy: tests and the local cloud point it at moto through the environment
    from botocore.config import Config

    from deepseek_gateway.batches.runtime import sqs_sender
    from deepseek_gateway.batches.store import BatchStore
    from deepseek_gateway.catalogue import load_catalogue
    from deepseek_gateway.files.store import FileStore
    from deepseek_gateway.tenancy.store import TenantStore

    dynamodb = boto3.client("dynamodb")
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
    sqs: list[Any] = []

    def sqs_client() -> Any:
        if not sqs:
            sqs.append(boto3.client("sqs"))
        return sqs[0]

    jobs, uploads = str(settings.jobs_table_name), str(settings.uploads_bucket_name)
    wrap, config = idempotency(settings, dynamodb) if settings.idempotency_table_name else (None, None)
    ingestion = Ingestion(
        files=FileStore(jobs, uploads, dynamodb, lambda: s3, kms_key_id=settings.uploads_kms_key_id),
        batches=BatchStore(jobs, dynamodb),
        tenants=TenantStore(str(settings.tenants_table_name), dynamodb),
        catalogue=load_catalogue(),
        s3=s3,
        starter=ExecutionStarter(str(settings.batch_state_machine_arn), boto3.client("stepfunctions")),
        notify=sqs_sender(settings.notifications_queue_url, sqs_client),
        buckets=Buckets(uploads=uploads, results=str(settings.results_bucket_name),
                        uploads_kms_key_id=settings.uploads_kms_key_id),
        limits=IngestionLimits(max_file_bytes=settings.max_batch_file_bytes, max_lines=settings.max_batch_lines,
                               max_line_bytes=settings.max_batch_line_bytes, chunk_items=settings.batch_chunk_items,
                               chunk_bytes=settings.batch_chunk_bytes, window_s=settings.batch_completion_window_s),
        idempotent=wrap,
    )
    return IngestionRuntime(ingestion, config)


@lru_cache(maxsize=1)
def get_runtime() -> IngestionRuntime:
    return build_runtime(get_settings())


def get_ingestion(lambda_context: Any = None) -> Ingestion:
    """The process's ingestion, with this invocation's context registered for idempotency."""
    runtime = get_runtime()
    runtime.register_lambda_context(lambda_context)
    return runtime.ingestion


def reset_runtime() -> None:
    """Forget the cached settings and parts (tests that change the environment call this)."""
    get_runtime.cache_clear()
    get_settings.cache_clear()
