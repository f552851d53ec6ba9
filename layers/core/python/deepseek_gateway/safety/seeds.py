"""What the safety function needs beyond its event: tenants' canary seeds (read from their policies and kept
for a short time) and the external moderators their settings ask for.

The batch workflow's execution input must not carry a tenant's `canary_seed` (a secret: with it and a
system prompt anyone can compute the canary, and Step Functions shows execution inputs to whoever may
read the history), so the safety function looks the seed up itself by tenant id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from deepseek_gateway.safety.moderation import Moderator
from deepseek_gateway.safety.settings import SafetySettings
from deepseek_gateway.tenancy.cached import cached_per_tenant
from deepseek_gateway.tenancy.store import TenantStore


@lru_cache(maxsize=1)
def tenant_canary_seeds() -> Callable[[str], str] | None:
    """Built on the first use from the settings (TENANTS_TABLE_NAME); None where no tenants table exists."""
    from deepseek_gateway.settings import get_settings

    settings = get_settings()
    if not settings.tenants_table_name:
        return None
    import boto3  # lazy: only the batch path's safety tasks read tenants

    store = TenantStore(settings.tenants_table_name, boto3.client("dynamodb"))

    def seed(tenant_id: str) -> str:
        policy = store.get_policy(tenant_id)
        return policy.settings.safety.canary_seed if policy is not None else ""

    return cached_per_tenant(seed, settings.tenant_cache_ttl_s)


@lru_cache(maxsize=1)
def tenant_moderators() -> Callable[[SafetySettings], Moderator | None]:
    """The same factory the api function uses, so a batch line is moderated as a chat request is."""
    from deepseek_gateway.safety.moderation import moderator_factory
    from deepseek_gateway.settings import get_settings

    return moderator_factory(get_settings())
