"""Tenant and API key records as the admin API accepts and returns them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from deepseek_gateway.auth.principal import Scope

TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Limits(BaseModel):
    """Per tenant or per key; None means no limit at this level."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    concurrent_requests: int | None = Field(default=None, ge=1)
    monthly_budget_usd: Decimal | None = Field(default=None, ge=0)


class Notifications(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: HttpUrl | None = None
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    sms: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    events: list[str] = Field(default_factory=lambda: ["batch.completed", "batch.failed", "budget.threshold"])


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    name: str = Field(min_length=1, max_length=200)
    plan: str = Field(default="default", pattern=r"^[a-z0-9-]{1,32}$")
    limits: Limits = Field(default_factory=Limits)
    allowed_models: list[str] | None = None
    notifications: Notifications = Field(default_factory=Notifications)

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        if not TENANT_ID.match(value):
            raise ValueError("tenant_id must be 1-64 letters, digits, '-' or '_'")
        return value


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    limits: Limits | None = None
    allowed_models: list[str] | None = None
    notifications: Notifications | None = None
    status: Literal["active", "disabled"] | None = None


class Tenant(TenantCreate):
    status: Literal["active", "disabled"] = "active"
    created_at: int
    updated_at: int


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: ["chat"], min_length=1)
    expires_at: int | None = Field(default=None, description="Unix seconds; none for a key that does not expire")
    limits: Limits = Field(default_factory=Limits)


class ApiKey(BaseModel):
    """A key's record without its secret (the secret exists only in the create response)."""

    key_id: str
    tenant_id: str
    name: str = ""
    scopes: list[Scope]
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    limits: Limits = Field(default_factory=Limits)
    prefix: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class CreatedKey(ApiKey):
    key: str  # shown once
