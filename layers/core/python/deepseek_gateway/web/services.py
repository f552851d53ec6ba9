"""The process-wide services, built on first use from settings (never at import time)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.catalogue import Catalogue, load_catalogue
from deepseek_gateway.chat_service import ChatService
from deepseek_gateway.errors import GatewayError
from deepseek_gateway.files.store import FileLimits, FileStore
from deepseek_gateway.limits.counters import CounterStore
from deepseek_gateway.limits.service import LimitService, sqs_notifier
from deepseek_gateway.limits.usage import UsageLedger
from deepseek_gateway.routing.breaker import CircuitBreaker, DynamoBreakerStore, InMemoryBreakerStore
from deepseek_gateway.routing.router import Router, RoutingPolicy
from deepseek_gateway.safety.moderation import moderator_factory
from deepseek_gateway.settings import Settings, get_settings
from deepseek_gateway.tenancy.directory import TenantDirectory
from deepseek_gateway.tenancy.store import TenantStore


@dataclass
class Services:
    settings: Settings
    catalogue: Catalogue
    chat: ChatService
    tenant_store: TenantStore | None = None
    ledger: UsageLedger | None = None
    file_store: FileStore | None = None
    batch_store: BatchStore | None = None
    # Sends one message body to the ingestion queue (its SQS client is built on the first send).
    ingestion_queue: Callable[[str], None] | None = None

    @property
    def usage(self) -> UsageLedger:
        if self.ledger is None:
            raise GatewayError("The usage table is not configured (USAGE_TABLE_NAME).")
        return self.ledger

    @property
    def tenants(self) -> TenantStore:
        if self.tenant_store is None:
            raise GatewayError("The tenants table is not configured (TENANTS_TABLE_NAME).")
        return self.tenant_store

    @property
    def files(self) -> FileStore:
        if self.file_store is None:
            raise GatewayError("Files are not configured (UPLOADS_BUCKET_NAME, JOBS_TABLE_NAME).")
        return self.file_store

    @property
    def batches(self) -> BatchStore:
        if self.batch_store is None:
            raise GatewayError("Batches are not configured (JOBS_TABLE_NAME).")
        return self.batch_store

    def submit_batch(self, tenant_id: str, batch_id: str, correlation_id: str | None = None) -> None:
        """Hand a new batch to the ingestion function (`batch.submitted`), which validates its lines."""
        if self.ingestion_queue is None:
            raise GatewayError("Batches are not configured (INGESTION_QUEUE_URL).")
        message: dict[str, Any] = {"type": "batch.submitted", "tenant_id": tenant_id, "batch_id": batch_id}
        if correlation_id:
            message["correlation_id"] = correlation_id
        self.ingestion_queue(json.dumps(message, separators=(",", ":")))


def build_services(settings: Settings) -> Services:
    import boto3  # lazy: tests and the local cloud point it at moto through the environment
    from botocore.config import Config

    from deepseek_gateway.providers.registry import build_providers

    catalogue = load_catalogue()
    # No client-side parameter validation: this code builds every DynamoDB request, and DynamoDB validates
    # it again anyway. It cost ~300 µs of CPU per chat request (its UpdateItem and TransactWriteItems).
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    store = (
        DynamoBreakerStore(settings.breaker_table_name, dynamodb)
        if settings.breaker_table_name
        else InMemoryBreakerStore()
    )
    breaker = CircuitBreaker(
        store,
        threshold=settings.breaker_failure_threshold,
        cooldown_s=settings.breaker_cooldown_s,
        cache_ttl_s=settings.breaker_cache_ttl_s,
    )
    policy = RoutingPolicy(
        attempt_timeout_s=settings.attempt_timeout_s,
        deadline_s=settings.request_deadline_s,
        attempts_per_provider=settings.attempts_per_provider,
        backoff_base_s=settings.backoff_base_s,
        backoff_cap_s=settings.backoff_cap_s,
        max_retry_after_s=settings.max_retry_after_s,
    )
    router = Router(catalogue, build_providers(settings), breaker, policy)
    tenants = TenantStore(settings.tenants_table_name, dynamodb) if settings.tenants_table_name else None
    directory = TenantDirectory(tenants, ttl_s=settings.tenant_cache_ttl_s) if tenants else None
    ledger = UsageLedger(settings.usage_table_name, dynamodb) if settings.usage_table_name else None
    limits = None
    if settings.usage_table_name:
        notify = (sqs_notifier(settings.notifications_queue_url, boto3.client("sqs"))
                  if settings.notifications_queue_url else None)
        limits = LimitService(CounterStore(settings.usage_table_name, dynamodb), ledger, dynamodb, notify=notify)
    chat = ChatService(catalogue, router, directory, limits, moderators=moderator_factory(settings))
    return Services(settings=settings, catalogue=catalogue, chat=chat,
                    tenant_store=tenants, ledger=ledger, file_store=build_file_store(settings, dynamodb),
                    batch_store=BatchStore(settings.jobs_table_name, dynamodb) if settings.jobs_table_name else None,
                    ingestion_queue=queue_sender(settings.ingestion_queue_url))


def queue_sender(queue_url: str | None) -> Callable[[str], None] | None:
    """Sends message bodies to `queue_url`; the SQS client is built on the first message, not at start."""
    if not queue_url:
        return None
    client: list[Any] = []

    def send(body: str) -> None:
        if not client:
            import boto3

            client.append(boto3.client("sqs"))
        client[0].send_message(QueueUrl=queue_url, MessageBody=body)

    return send


def build_file_store(settings: Settings, dynamodb: object) -> FileStore | None:
    """The Files API's store; its S3 client (SigV4, which SSE-KMS presigned URLs need) is built on first use."""
    if not (settings.uploads_bucket_name and settings.jobs_table_name):
        return None

    def s3() -> object:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", config=Config(signature_version="s3v4"))

    limits = FileLimits(max_file_bytes=settings.max_file_bytes, max_presigned_bytes=settings.max_presigned_bytes,
                        max_inline_content_bytes=settings.max_inline_content_bytes,
                        upload_url_ttl_s=settings.upload_url_ttl_s)
    return FileStore(settings.jobs_table_name, settings.uploads_bucket_name, dynamodb, s3, limits=limits,
                     kms_key_id=settings.uploads_kms_key_id)


@lru_cache(maxsize=1)
def get_services() -> Services:
    return build_services(get_settings())


def reset_services() -> None:
    """Forget the cached settings and services (tests that change the environment call this)."""
    get_services.cache_clear()
    get_settings.cache_clear()
