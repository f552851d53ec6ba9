"""What the router and backend functions are built from: settings in, parts made on first use.

Nothing is built at import time, and each function builds only what it uses: the router never builds
a provider client (whether a provider is configured is read from the settings, so it needs no access to
any secret), and a backend function calls only its own provider, so it reads only that provider's key.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Any

from deepseek_gateway.batches.backend_task import BackendTask
from deepseek_gateway.batches.routing_task import CounterBudgetGate, RoutingTask, StoreBatchGate
from deepseek_gateway.catalogue import PROVIDERS, Catalogue, ProviderName, load_catalogue
from deepseek_gateway.routing.breaker import CircuitBreaker, DynamoBreakerStore, InMemoryBreakerStore
from deepseek_gateway.routing.router import RoutingPolicy
from deepseek_gateway.settings import ProviderSettings, Settings, get_settings


class ConfiguredKey:
    """A provider counts as configured when its key or its secret is named (as the router needs it)."""

    def __init__(self, settings: ProviderSettings, provider: ProviderName) -> None:
        self._named = bool(getattr(settings, f"{provider}_api_key") or getattr(settings, f"{provider}_secret_arn"))

    def configured(self) -> bool:
        return self._named


def routing_policy(settings: Settings) -> RoutingPolicy:
    return RoutingPolicy(
        attempt_timeout_s=settings.attempt_timeout_s,
        deadline_s=settings.request_deadline_s,
        attempts_per_provider=settings.attempts_per_provider,
        backoff_base_s=settings.backoff_base_s,
        backoff_cap_s=settings.backoff_cap_s,
        max_retry_after_s=settings.max_retry_after_s,
    )


class TaskRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backends: dict[ProviderName, BackendTask] = {}

    @cached_property
    def dynamodb(self) -> Any:
        import boto3  # lazy: tests and the local cloud point it at moto through the environment

        return boto3.client("dynamodb")

    @cached_property
    def catalogue(self) -> Catalogue:
        return load_catalogue()

    @cached_property
    def breaker(self) -> CircuitBreaker:
        settings = self.settings
        store = (DynamoBreakerStore(settings.breaker_table_name, self.dynamodb)
                 if settings.breaker_table_name else InMemoryBreakerStore())
        return CircuitBreaker(store, threshold=settings.breaker_failure_threshold,
                              cooldown_s=settings.breaker_cooldown_s, cache_ttl_s=settings.breaker_cache_ttl_s)

    @cached_property
    def routing(self) -> RoutingTask:
        from deepseek_gateway.batches.store import BatchStore
        from deepseek_gateway.tenancy.directory import TenantDirectory
        from deepseek_gateway.tenancy.store import TenantStore

        settings = self.settings
        directory = (TenantDirectory(TenantStore(settings.tenants_table_name, self.dynamodb),
                                     ttl_s=settings.tenant_cache_ttl_s) if settings.tenants_table_name else None)
        return RoutingTask(
            catalogue=self.catalogue,
            providers={name: ConfiguredKey(settings, name) for name in PROVIDERS},
            breaker=self.breaker,
            policy=routing_policy(settings),
            directory=directory,
            budget=CounterBudgetGate(settings.usage_table_name, self.dynamodb) if settings.usage_table_name else None,
            batches=(StoreBatchGate(BatchStore(settings.jobs_table_name, self.dynamodb))
                     if settings.jobs_table_name else None),
        )

    def backend(self, provider: ProviderName) -> BackendTask:
        if provider not in self._backends:
            from deepseek_gateway.providers.registry import build_providers

            self._backends[provider] = BackendTask(
                provider_name=provider,
                catalogue=self.catalogue,
                provider=build_providers(self.settings)[provider],  # keys are read on call: only this one
                breaker=self.breaker,
                policy=routing_policy(self.settings),
                persistence=self._idempotency_store(),
                expires_after_s=self.settings.batch_completion_window_s,
            )
        return self._backends[provider]

    def _idempotency_store(self) -> Any:
        if not self.settings.idempotency_table_name:
            return None
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table_name, key_attr="id",
                                        expiry_attr="expiration", boto3_client=self.dynamodb)


@lru_cache(maxsize=1)
def get_task_runtime() -> TaskRuntime:
    return TaskRuntime(get_settings())


def reset_task_runtime() -> None:
    """Forget the cached settings and parts (tests that change the environment call this)."""
    get_task_runtime.cache_clear()
    get_settings.cache_clear()


def run_routing(event: Any) -> dict[str, Any]:
    return get_task_runtime().routing.run(event)


def run_backend(event: Any, provider: ProviderName, lambda_context: Any = None) -> dict[str, Any]:
    return get_task_runtime().backend(provider).run(event, lambda_context)
