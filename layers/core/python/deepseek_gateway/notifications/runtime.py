"""The notifier's settings, validated once from the environment, and its consumer, built on first use.

Nothing here runs at import: boto3, httpx and the AWS clients are created by `get_consumer()`
on the first message, and the signing secret is read on the first webhook.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from deepseek_gateway.notifications.channels import RetryableDeliveryError
from deepseek_gateway.notifications.consumer import NotificationConsumer, QueueBackoff
from deepseek_gateway.notifications.service import DynamoLedger, MemoryLedger, NotificationService, TenantCache
from deepseek_gateway.notifications.signing import tenant_secret
from deepseek_gateway.observability import logger

SECRET_MAX_AGE_S = 300


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    tenants_table_name: str | None = None
    # How long an instance trusts its copy of a tenant's notification settings.
    tenant_cache_ttl_s: float = 30.0
    # Delivery ledger (channels already delivered per event); in memory without the table.
    idempotency_table_name: str | None = None
    delivery_record_ttl_s: int = 7 * 86_400  # longer than the queue's retention (4 days)

    # The master secret every tenant's webhook secret is derived from: Secrets Manager when
    # deployed, the plain value locally and in tests.
    webhook_signing_secret_arn: str | None = None
    webhook_signing_secret: str | None = None
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=30)
    # Local cloud only: allows http:// and loopback / private webhook targets. Never set when deployed.
    allow_private_webhooks: bool = False

    ses_sender: str | None = None  # a verified SES identity; without it, email is not delivered
    ses_region: str | None = None  # when SES is set up in another region than the function's
    sns_sms_type: Literal["Transactional", "Promotional"] = "Transactional"

    # Retry backoff through the queue (see consumer.QueueBackoff).
    retry_base_s: int = Field(default=60, ge=0)
    retry_cap_s: int = Field(default=3600, ge=0, le=43_200)

    @property
    def min_time_left_s(self) -> float:
        """A worst-case webhook (connect, write and read timeouts) plus a margin."""
        return 3 * self.webhook_timeout_s + 2


def master_secret_source(settings: NotifierSettings) -> Callable[[], str]:
    def read() -> str:
        if settings.webhook_signing_secret:
            return settings.webhook_signing_secret
        if not settings.webhook_signing_secret_arn:
            raise RetryableDeliveryError("no webhook signing secret is configured (WEBHOOK_SIGNING_SECRET_ARN)")
        from aws_lambda_powertools.utilities import parameters  # lazy: only deployed functions need it

        value = parameters.get_secret(settings.webhook_signing_secret_arn, max_age=SECRET_MAX_AGE_S)
        return value.decode() if isinstance(value, bytes) else str(value)

    return read


def build_consumer(settings: NotifierSettings, client: Callable[..., Any] | None = None) -> NotificationConsumer:
    """The consumer with its channels; `client(service_name, **kwargs)` makes AWS clients (boto3's)."""
    if client is None:
        import boto3  # lazy: tests and the local cloud point it at moto through the environment
        from botocore.config import Config

        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})

        def client(service: str, **kwargs: Any) -> Any:
            return boto3.client(service, config=config, **kwargs)

    from deepseek_gateway.notifications.aws import EmailChannel, SmsChannel
    from deepseek_gateway.notifications.ssrf import AddressPolicy
    from deepseek_gateway.notifications.webhook import WebhookChannel
    from deepseek_gateway.tenancy.store import TenantStore

    if not settings.tenants_table_name:
        raise RuntimeError("the notifier needs the tenants table (TENANTS_TABLE_NAME)")
    dynamodb = client("dynamodb")
    store = TenantStore(settings.tenants_table_name, dynamodb)
    master = master_secret_source(settings)
    channels = [
        WebhookChannel(lambda tenant_id: tenant_secret(master(), tenant_id),
                       AddressPolicy(allow_private=settings.allow_private_webhooks),
                       timeout_s=settings.webhook_timeout_s, require_https=not settings.allow_private_webhooks),
        EmailChannel(lambda: client("sesv2", **({"region_name": settings.ses_region} if settings.ses_region else {})),
                     settings.ses_sender),
        SmsChannel(lambda: client("sns"), settings.sns_sms_type),
    ]
    ledger = (DynamoLedger(settings.idempotency_table_name, dynamodb, settings.delivery_record_ttl_s)
              if settings.idempotency_table_name else MemoryLedger())
    service = NotificationService(TenantCache(store.get_tenant, settings.tenant_cache_ttl_s), channels, ledger)
    backoff = QueueBackoff(lambda: client("sqs"), settings.retry_base_s, settings.retry_cap_s)
    return NotificationConsumer(service, backoff, min_time_left_s=settings.min_time_left_s)


@lru_cache(maxsize=1)
def get_consumer() -> NotificationConsumer:
    try:
        return build_consumer(NotifierSettings())
    except Exception:  # every message fails until the configuration is fixed: say why, once per message
        logger.exception("the notifier is misconfigured")
        raise


def reset_consumer() -> None:
    """Forgets the consumer (tests change the environment between cases)."""
    get_consumer.cache_clear()
