"""The authorizer's process-wide Authenticator, built on first use from settings."""

from __future__ import annotations

from functools import lru_cache

from deepseek_gateway.auth.authenticator import Authenticator
from deepseek_gateway.settings import get_settings
from deepseek_gateway.tenancy.store import TenantStore


@lru_cache(maxsize=1)
def get_authenticator() -> Authenticator:
    import boto3

    settings = get_settings()
    if not settings.tenants_table_name:
        raise RuntimeError("TENANTS_TABLE_NAME is not set: the authorizer cannot look up keys")
    oidc = None
    if settings.oidc_issuers:
        from deepseek_gateway.auth.oidc import OidcValidator, parse_issuers  # only when issuers are configured

        oidc = OidcValidator(parse_issuers(settings.oidc_issuers))
    return Authenticator(TenantStore(settings.tenants_table_name, boto3.client("dynamodb")), oidc)


def usage_key_for(plan: str) -> str | None:
    keys = get_settings().usage_plan_keys
    return keys.get(plan) or keys.get("default")
