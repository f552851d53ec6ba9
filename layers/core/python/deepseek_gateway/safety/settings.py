"""Per-tenant safety settings: what is blocked, what is redacted, what is only counted.

Defaults are chosen so that the gateway does not break normal use:

- Secrets (private keys, AWS keys, API keys, JWTs) are **redacted**: developers paste code and
  configuration with keys into prompts all the time, and refusing them would break coding
  assistants; replacing them with placeholders keeps the key away from the provider while the
  answer, restored on the way back, is still whole.
- Payment cards, IBANs and US SSNs are **redacted** too: regulated data (PCI DSS, banking and
  national-identifier rules) that a third-party model has no need to see, and the round trip makes
  redaction invisible to the user.
- Emails, phone numbers and IP addresses are **allowed** (detected and counted, not changed): they
  are in nearly every business text, models often need them verbatim (fix this address, format
  this number), and contact data is usually covered by the provider's data-processing terms.
  A tenant turns them to `redact` (or `block`) per entity.
- Injection: scored heuristics, blocked at `injection_threshold` 0.5 on user content, and at the
  same threshold on tool results and retrieved documents, where instructions aimed at the model
  weigh more (they are data, not requests). `injection_action="allow"` scores without blocking.
- Prompts up to 500,000 characters (about a 128K-token context); canary, output checks and
  tool-result checks on; external moderation off.

Deny and allow patterns are case-insensitive regexes matched against the folded text (so look-alike
letters do not evade them); an allow pattern exempts any finding (an entity, an injection phrase, a
deny match) whose matched text it matches, e.g. the company's own support address. They are
validated and compiled once per distinct list; `re` has no match timeout, so patterns come from the
tenant's administrators, never from end users. Per-tenant settings come from the policy engine when
it exists; until then the defaults below apply to every tenant.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PiiAction = Literal["block", "redact", "allow"]
MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 500


class Entity(StrEnum):
    """Detected entity types; the value names the category and (upper-cased) the placeholder."""

    EMAIL = "email"
    PHONE = "phone"
    CREDIT_CARD = "credit_card"
    IBAN = "iban"
    US_SSN = "us_ssn"
    IP_ADDRESS = "ip_address"
    AWS_ACCESS_KEY = "aws_access_key"
    AWS_SECRET_KEY = "aws_secret_key"  # noqa: S105 - an entity name, not a secret
    API_KEY = "api_key"
    JWT = "jwt"
    PRIVATE_KEY = "private_key"


SECRETS = frozenset({Entity.AWS_ACCESS_KEY, Entity.AWS_SECRET_KEY, Entity.API_KEY, Entity.JWT, Entity.PRIVATE_KEY})

DEFAULT_PII_ACTIONS: dict[Entity, PiiAction] = {
    Entity.EMAIL: "allow",
    Entity.PHONE: "allow",
    Entity.IP_ADDRESS: "allow",
    Entity.CREDIT_CARD: "redact",
    Entity.IBAN: "redact",
    Entity.US_SSN: "redact",
    Entity.AWS_ACCESS_KEY: "redact",
    Entity.AWS_SECRET_KEY: "redact",
    Entity.API_KEY: "redact",
    Entity.JWT: "redact",
    Entity.PRIVATE_KEY: "redact",
}


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Tenant patterns compiled once per distinct list, whichever settings object carries them."""
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


class ModerationSettings(BaseModel):
    """External moderation (off by default): OpenAI's moderation endpoint or Bedrock Guardrails.

    `fail_mode` decides what a timeout or error means: "open" lets the request through (logged and
    counted), "closed" blocks it with the category `moderation_unavailable`.
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["none", "openai", "bedrock"] = "none"
    timeout_s: float = Field(default=2.0, gt=0, le=30)
    fail_mode: Literal["open", "closed"] = "open"
    check_output: bool = False
    openai_model: str = "omni-moderation-latest"
    openai_base_url: str = "https://api.openai.com/v1"
    bedrock_guardrail_id: str | None = None
    bedrock_guardrail_version: str = "DRAFT"
    bedrock_region: str | None = None

    @property
    def enabled(self) -> bool:
        return self.provider != "none"

    @model_validator(mode="after")
    def _bedrock_needs_a_guardrail(self) -> ModerationSettings:
        if self.provider == "bedrock" and not self.bedrock_guardrail_id:
            raise ValueError("bedrock moderation needs bedrock_guardrail_id")
        return self


class SafetySettings(BaseModel):
    """One tenant's safety policy. Partial `pii_actions` merge over the defaults."""

    model_config = ConfigDict(extra="forbid")

    injection_threshold: float = Field(default=0.5, gt=0, le=1)
    injection_action: Literal["block", "allow"] = "block"  # "allow": score, log and count only (shadow mode)
    check_tool_results: bool = True
    pii_actions: dict[Entity, PiiAction] = Field(default_factory=lambda: dict(DEFAULT_PII_ACTIONS))
    deny_patterns: list[str] = Field(default_factory=list)
    allow_patterns: list[str] = Field(default_factory=list)
    max_prompt_chars: int = Field(default=500_000, ge=1)
    output_checks: bool = True
    canary: bool = True
    canary_seed: str = Field(default="", repr=False)  # a tenant secret makes the canary unguessable
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)

    @field_validator("pii_actions", mode="after")
    @classmethod
    def _merge_defaults(cls, value: dict[Entity, PiiAction]) -> dict[Entity, PiiAction]:
        return {**DEFAULT_PII_ACTIONS, **value}

    @field_validator("deny_patterns", "allow_patterns", mode="after")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_PATTERNS:
            raise ValueError(f"at most {MAX_PATTERNS} patterns")
        for pattern in value:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(f"a pattern is limited to {MAX_PATTERN_CHARS} characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
        return value

    @property
    def deny(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.deny_patterns))

    @property
    def allow(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.allow_patterns))

    def action_for(self, entity: Entity) -> PiiAction:
        return self.pii_actions.get(entity, "allow")

    def is_allowed(self, text: str) -> bool:
        """True when a tenant allow pattern matches inside `text` (a finding's matched text)."""
        return any(p.search(text) for p in self.allow)
