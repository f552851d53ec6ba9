"""A tenant's policy as written through the admin API: Cedar policies plus non-authorization settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PolicySettings(BaseModel):
    """What the policy decides beyond allow/deny: how the safety layer treats prompts, what is stored."""

    model_config = ConfigDict(extra="forbid")

    store_prompts: bool = False  # usage records never hold prompt or answer text unless this is on
    retention_days: int = Field(default=90, ge=1, le=3650)  # usage records expire after this many days
    safety: dict[str, object] = Field(default_factory=dict)  # the safety layer's per-tenant settings


class TenantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cedar: str = Field(default="", max_length=65_536, description="Cedar policies; each should carry @id(\"...\")")
    settings: PolicySettings = Field(default_factory=PolicySettings)
