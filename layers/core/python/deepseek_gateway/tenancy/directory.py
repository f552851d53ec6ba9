"""Each tenant's configuration as the chat path needs it, cached in memory for a short time.

One BatchGetItem per tenant (and key) per `ttl_s` per instance, so the hot path reads nothing from
DynamoDB per request; a change through the admin API takes effect within `ttl_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.errors import PermissionDeniedError
from deepseek_gateway.policy.engine import TenantPolicySet
from deepseek_gateway.policy.models import PolicySettings, TenantPolicy
from deepseek_gateway.tenancy.models import Limits, Tenant
from deepseek_gateway.tenancy.store import TenantStore


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    policies: TenantPolicySet
    settings: PolicySettings
    key_limits: Limits | None


class TenantDirectory:
    def __init__(self, store: TenantStore, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str | None], tuple[float, TenantContext]] = {}
        self._lock = threading.Lock()

    def context(self, principal: Principal) -> TenantContext:
        key = (principal.tenant_id, principal.key_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant, policy, key_limits = self._store.snapshot(principal.tenant_id, principal.key_id)
        if tenant is None or tenant.status != "active":
            raise PermissionDeniedError("This tenant is disabled or unknown.", code="tenant_disabled")
        policy = policy or TenantPolicy()
        context = TenantContext(
            tenant=tenant,
            policies=TenantPolicySet(tenant.tenant_id, tenant.plan, policy.cedar, tenant.allowed_models),
            settings=policy.settings,
            key_limits=key_limits,
        )
        with self._lock:
            self._cache[key] = (now + self._ttl_s, context)
        return context


def principal_uid(principal: Principal) -> str:
    """The Cedar principal: `Key::<id>` for API keys, `User::<sub>` for OIDC tokens."""
    return f"Key::{principal.key_id}" if principal.key_id else f"User::{principal.principal_id}"
