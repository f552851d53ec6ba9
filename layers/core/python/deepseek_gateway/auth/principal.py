"""Who is calling: the tenant context the authorizer hands to every other function."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["chat", "batch", "files", "admin"]
ALL_SCOPES: tuple[Scope, ...] = ("chat", "batch", "files", "admin")


class Principal(BaseModel):
    """The authenticated caller. The tenant comes only from here, never from a request body or header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=128)
    principal_id: str = Field(min_length=1)  # the API key id, the token's `sub`, or the service's name
    # `service`: the gateway acting for a tenant (direct S3 batch uploads); never issued by the authorizer,
    # and a request context claiming it is read as `api_key` (see authenticator.principal_from_context).
    kind: Literal["api_key", "oidc", "service"]
    scopes: frozenset[Scope] = frozenset()
    plan: str = "default"
    key_id: str | None = None  # set for API keys: per-key limits and budgets hang off it
    issuer: str | None = None  # set for OIDC tokens

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes
