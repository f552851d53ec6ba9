"""A tenant's policy as written through the admin API: Cedar policies plus non-authorization settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from deepseek_gateway.safety.settings import SafetySettings


class PolicySettings(BaseModel):
    """What the policy decides beyond allow/deny: how the safety layer treats prompts, what is stored."""

    model_config = ConfigDict(extra="forbid")

    store_prompts: bool = False  # usage records never hold prompt or answer text unless this is on
    retention_days: int = Field(default=90, ge=1, le=3650)  # usage records expire after this many days
    safety: SafetySettings = Field(default_factory=SafetySettings)  # the safety layer's per-tenant settings


class TenantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cedar: str = Field(default="", max_length=65_536, description="Cedar policies; each should carry @id(\"...\")")
    settings: PolicySettings = Field(default_factory=PolicySettings)
