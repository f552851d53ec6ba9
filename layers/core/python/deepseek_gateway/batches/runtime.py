"""The `batch` function's services, built on first use from settings (never at import time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from deepseek_gateway.batches.billing import Billing
from deepseek_gateway.batches.objects import OutputFiles, ResultsBucket
from deepseek_gateway.batches.store import BatchStore
from deepseek_gateway.batches.tasks import BatchTaskServices
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.observability import logger
from deepseek_gateway.policy.models import PolicySettings
from deepseek_gateway.settings import Settings, get_settings
from deepseek_gateway.tenancy.cached import cached_per_tenant

_REQUIRED = ("jobs_table_name", "usage_table_name", "uploads_bucket_name", "results_bucket_name",
             "tenants_table_name")


def retention_lookup(tenants: Any, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> Callable[[str], int]:
    """Tenant id → its usage retention in days, from its policy (the default without one), cached `ttl_s`."""
    default = PolicySettings().retention_days

    def retention_days(tenant_id: str) -> int:
        policy = tenants.get_policy(tenant_id)
        return policy.settings.retention_days if policy is not None else default

    return cached_per_tenant(retention_days, ttl_s, clock)


def budget_lookup(tenants: Any, ttl_s: float, clock: Callable[[], float] = time.monotonic
                  ) -> Callable[[str], Decimal | None]:
    """Tenant id → its monthly budget in USD (None without one), cached `ttl_s`."""

    def budget(tenant_id: str) -> Decimal | None:
        tenant = tenants.get_tenant(tenant_id)
        return tenant.limits.monthly_budget_usd if tenant is not None else None

    return cached_per_tenant(budget, ttl_s, clock)


def sqs_sender(queue_url: str | None, client: Callable[[], Any]) -> Callable[[NotificationEvent], None]:
    """Puts an event on the notifications queue; without a queue (a local setup without one) logs it."""

    def send(event: NotificationEvent) -> None:
        if not queue_url:
            logger.warning("no notifications queue: event not sent", extra={"type": event.type, "id": event.id})
            return
        client().send_message(QueueUrl=queue_url, MessageBody=event.to_message())

    return send


def build_task_services(settings: Settings) -> BatchTaskServices:
    missing = [name.upper() for name in _REQUIRED if not getattr(settings, name)]
    if missing:
        raise RuntimeError(f"the batch function is not configured: {', '.join(missing)}")
    import boto3  # lazy: tests and the local cloud point it at moto through the environment
    from botocore.config import Config

    from deepseek_gateway.tenancy.store import TenantStore

    dynamodb = boto3.client("dynamodb")
    clients: dict[str, Any] = {}

    def client(service: str) -> Callable[[], Any]:
        def make() -> Any:
            if service not in clients:
                config = Config(signature_version="s3v4") if service == "s3" else None
                clients[service] = boto3.client(service, config=config)
            return clients[service]

        return make

    assert settings.jobs_table_name and settings.usage_table_name and settings.tenants_table_name
    assert settings.uploads_bucket_name and settings.results_bucket_name
    return BatchTaskServices(
        store=BatchStore(settings.jobs_table_name, dynamodb),
        billing=Billing(settings.usage_table_name, dynamodb),
        catalogue=load_catalogue(),
        results=ResultsBucket(settings.results_bucket_name, client("s3")),
        outputs=OutputFiles(settings.jobs_table_name, settings.uploads_bucket_name, dynamodb, client("s3"),
                            kms_key_id=settings.uploads_kms_key_id),
        retention_days=retention_lookup(TenantStore(settings.tenants_table_name, dynamodb),
                                        settings.tenant_cache_ttl_s),
        notify=sqs_sender(settings.notifications_queue_url, client("sqs")),
        budget=budget_lookup(TenantStore(settings.tenants_table_name, dynamodb), settings.tenant_cache_ttl_s),
    )


@lru_cache(maxsize=1)
def get_task_services() -> BatchTaskServices:
    return build_task_services(get_settings())


def reset_task_services() -> None:
    """Forget the cached settings and services (tests that change the environment call this)."""
    get_task_services.cache_clear()
    get_settings.cache_clear()
