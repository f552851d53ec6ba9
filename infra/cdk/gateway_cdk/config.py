"""Deployment configuration, read once from the CDK context (`cdk.json` and `-c key=value`).

Every knob an operator may turn lives here, with its default; constructs receive a `GatewayConfig`
and never read the context themselves. Values given on the command line arrive as strings
(`-c waf=true`, `-c reserved_concurrency=50`), so each is parsed by type.

Per-stage overrides live under the context key `stages`, e.g. `{"stages": {"prod": {"waf": true}}}`:
a value there wins over the top-level key of the same name (including one given with `-c`).

`plans` holds one API Gateway usage plan per tenant plan: `{"<plan>": {"rate_limit": <rps>,
"burst_limit": <requests>, "quota_per_day": <requests> | null}}`. A value for `plans` (top level, `-c`
or stage block) replaces the whole object; it must define `default`, the plan the authorizer falls
back to for tenants whose plan has no usage plan of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aws_cdk import aws_logs as logs
from constructs import Node

# The stage whose resources are retained, deletion-protected and deployed by canary.
PROD_STAGE = "prod"

DEFAULTS: dict[str, Any] = {
    "stage": "dev",
    "region": "us-east-1",
    "account": None,
    "oidc_issuers": [],
    "waf": False,
    "waf_rate_limit": 2000,
    "alarm_email": None,
    "provisioned_concurrency": 0,
    "reserved_concurrency": None,
    "log_retention_days": 30,
    "log_level": "INFO",
    "authorizer_cache_ttl_s": 300,
    "throttle_rate_limit": 500,
    "throttle_burst_limit": 1000,
    "plans": {
        "default": {"rate_limit": 50, "burst_limit": 100, "quota_per_day": None},
        "pro": {"rate_limit": 200, "burst_limit": 400, "quota_per_day": None},
    },
    "integration_timeout_s": 29,
    "deepseek_base_url": "https://api.deepseek.com",
    "openai_base_url": "https://api.openai.com/v1",
    "anthropic_base_url": "https://api.anthropic.com",
    "powertools_layer_version": 38,
    "cognito": False,
    "cognito_domain_prefix": None,
    "cognito_client_tenant": "default",
    "ses_sender": None,
    "allow_private_webhooks": False,
}

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

_STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# Cognito domain prefixes: lowercase letters, digits and inner hyphens, at most 63 characters, and
# none of the words Cognito reserves.
_DOMAIN_PREFIX_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN_RESERVED = ("aws", "amazon", "cognito")
# A tenant id as the authorizer accepts it (deepseek_gateway.auth.oidc.TENANT_RE).
_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A tenant's plan as the tenancy models accept it (deepseek_gateway.tenancy.models.Tenant.plan).
_PLAN_RE = re.compile(r"^[a-z0-9-]{1,32}$")
# The plan the authorizer falls back to for a tenant whose plan has no usage plan (auth.service.usage_key_for).
DEFAULT_PLAN = "default"
# The notifier's SES sender: a plain address, as the ses:FromAddress condition compares it.
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_PLAN_FIELDS = ("rate_limit", "burst_limit", "quota_per_day")
# Keys that were replaced: refused with a pointer to their successor rather than silently ignored.
_REPLACED_KEYS = {
    "usage_plan_rate_limit": "plans.default.rate_limit",
    "usage_plan_burst_limit": "plans.default.burst_limit",
    "usage_plan_quota_per_day": "plans.default.quota_per_day",
}


class ConfigError(ValueError):
    """A context value that cannot be used; the message names the key."""


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off", ""}:
        return False
    raise ConfigError(f"context `{key}` must be a boolean, got {value!r}")


def _int(key: str, value: Any, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context `{key}` must be an integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise ConfigError(f"context `{key}` must be an integer, got {value!r}")
    if number < minimum:
        raise ConfigError(f"context `{key}` must be >= {minimum}, got {number}")
    return number


def _optional_int(key: str, value: Any, *, minimum: int = 0) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
        return None
    return _int(key, value, minimum=minimum)


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text and text.lower() not in {"none", "null"} else None


def _issuers(value: Any) -> tuple[Mapping[str, Any], ...]:
    """OIDC issuers for the authorizer: a list of issuer objects (JSON text from the command line).

    Each object is the core's issuer configuration (`issuer`, `audiences`, `jwks_url` or
    `jwks_file`, `flavor`, ...); the authorizer validates the details at cold start.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context `oidc_issuers` is not valid JSON: {exc}") from None
    if not isinstance(value, list | tuple):
        raise ConfigError(f"context `oidc_issuers` must be a list of issuer objects, got {value!r}")
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("issuer"), str) or not item["issuer"]:
            raise ConfigError(f"context `oidc_issuers` entries must be objects with an `issuer`, got {item!r}")
    issuers = [item["issuer"] for item in value]
    if len(set(issuers)) != len(issuers):
        raise ConfigError("context `oidc_issuers` lists an issuer more than once")
    return tuple(dict(item) for item in value)


@dataclass(frozen=True)
class PlanLimits:
    """The edge throttle of one tenant plan: its API Gateway usage plan."""

    rate_limit: int  # requests per second, steady state
    burst_limit: int  # requests, token-bucket capacity
    quota_per_day: int | None = None  # requests per day; None: no quota


def _plan_number(key: str, value: Any, *, optional: bool = False) -> int | None:
    if isinstance(value, bool):  # int(True) == 1: refuse rather than read `true` as one request
        raise ConfigError(f"context `{key}` must be an integer, got {value!r}")
    return _optional_int(key, value, minimum=1) if optional else _int(key, value, minimum=1)


def _plans(value: Any) -> Mapping[str, PlanLimits]:
    """Usage plans by tenant plan name (JSON text from the command line); `default` is required."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context `plans` is not valid JSON: {exc}") from None
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"context `plans` must be a non-empty object of plan name -> limits, got {value!r}")
    plans: dict[str, PlanLimits] = {}
    for name, limits in value.items():
        if not isinstance(name, str) or not _PLAN_RE.match(name):
            raise ConfigError(f"context `plans`: plan names must match {_PLAN_RE.pattern}, got {name!r}")
        key = f"plans.{name}"
        if isinstance(limits, PlanLimits):
            limits = {f: getattr(limits, f) for f in _PLAN_FIELDS}
        if not isinstance(limits, Mapping):
            raise ConfigError(
                f"context `{key}` must be an object with `rate_limit`, `burst_limit` and optional "
                f"`quota_per_day`, got {limits!r}"
            )
        unknown = sorted(set(limits) - set(_PLAN_FIELDS))
        if unknown:
            raise ConfigError(
                f"context `{key}` has unknown fields {', '.join(map(str, unknown))}; known: {', '.join(_PLAN_FIELDS)}"
            )
        missing = [f for f in ("rate_limit", "burst_limit") if limits.get(f) is None]
        if missing:
            raise ConfigError(f"context `{key}` must set {' and '.join(f'`{f}`' for f in missing)}")
        plans[name] = PlanLimits(
            rate_limit=_plan_number(f"{key}.rate_limit", limits["rate_limit"]),
            burst_limit=_plan_number(f"{key}.burst_limit", limits["burst_limit"]),
            quota_per_day=_plan_number(f"{key}.quota_per_day", limits.get("quota_per_day"), optional=True),
        )
    if DEFAULT_PLAN not in plans:
        raise ConfigError(
            f"context `plans` must define the `{DEFAULT_PLAN}` plan: the authorizer falls back to it for "
            f"tenants whose plan has no usage plan, got plans {', '.join(plans)}"
        )
    return MappingProxyType(plans)


@dataclass(frozen=True)
class GatewayConfig:
    stage: str = DEFAULTS["stage"]
    region: str = DEFAULTS["region"]
    account: str | None = None
    oidc_issuers: tuple[Mapping[str, Any], ...] = ()
    waf: bool = False
    waf_rate_limit: int = DEFAULTS["waf_rate_limit"]
    alarm_email: str | None = None
    provisioned_concurrency: int = 0
    reserved_concurrency: int | None = None
    log_retention_days: int = DEFAULTS["log_retention_days"]
    log_level: str = DEFAULTS["log_level"]
    authorizer_cache_ttl_s: int = DEFAULTS["authorizer_cache_ttl_s"]
    throttle_rate_limit: int = DEFAULTS["throttle_rate_limit"]
    throttle_burst_limit: int = DEFAULTS["throttle_burst_limit"]
    # Plan name -> limits; dicts of limits are accepted and parsed (see `_plans`).
    plans: Mapping[str, PlanLimits] = field(default_factory=lambda: _plans(DEFAULTS["plans"]))
    integration_timeout_s: int = DEFAULTS["integration_timeout_s"]
    deepseek_base_url: str = DEFAULTS["deepseek_base_url"]
    openai_base_url: str = DEFAULTS["openai_base_url"]
    anthropic_base_url: str = DEFAULTS["anthropic_base_url"]
    powertools_layer_version: int = DEFAULTS["powertools_layer_version"]
    cognito: bool = False
    cognito_domain_prefix: str | None = None
    cognito_client_tenant: str = DEFAULTS["cognito_client_tenant"]
    # The notifier's e-mail sender (a verified SES identity); None: no e-mail, no SES permission.
    ses_sender: str | None = None
    # The local cloud only: the notifier may call http:// and loopback / private webhooks. Never prod.
    allow_private_webhooks: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "plans", _plans(self.plans))
        if not _STAGE_RE.match(self.stage):
            raise ConfigError(f"context `stage` must match {_STAGE_RE.pattern}, got {self.stage!r}")
        if self.log_retention_days not in _RETENTION:
            raise ConfigError(
                f"context `log_retention_days` must be one of {sorted(_RETENTION)}, got {self.log_retention_days}"
            )
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"context `log_level` is not a log level: {self.log_level!r}")
        if not 0 <= self.authorizer_cache_ttl_s <= 3600:
            raise ConfigError("context `authorizer_cache_ttl_s` must be between 0 and 3600")
        if not 1 <= self.integration_timeout_s <= 300:
            raise ConfigError("context `integration_timeout_s` must be between 1 and 300")
        if self.cognito_domain_prefix is not None:
            prefix = self.cognito_domain_prefix
            if not _DOMAIN_PREFIX_RE.match(prefix) or any(word in prefix for word in _DOMAIN_RESERVED):
                raise ConfigError(
                    "context `cognito_domain_prefix` must be 1-63 lowercase letters, digits and inner hyphens "
                    f"without the reserved words {', '.join(_DOMAIN_RESERVED)}, got {prefix!r}"
                )
        elif self.cognito and any(word in self.stage for word in _DOMAIN_RESERVED):
            raise ConfigError(
                f"the stage {self.stage!r} contains a word Cognito reserves in domain prefixes: "
                "set context `cognito_domain_prefix`"
            )
        if not _TENANT_RE.match(self.cognito_client_tenant):
            raise ConfigError(
                f"context `cognito_client_tenant` must match {_TENANT_RE.pattern}, got {self.cognito_client_tenant!r}"
            )

        if self.ses_sender is not None and not _EMAIL_RE.match(self.ses_sender):
            raise ConfigError(f"context `ses_sender` must be an e-mail address, got {self.ses_sender!r}")
        if self.allow_private_webhooks and self.is_prod:
            raise ConfigError(
                "context `allow_private_webhooks` is for the local cloud only and is refused for the "
                f"{PROD_STAGE} stage: it would let tenants' webhooks reach private addresses"
            )

    @property
    def is_prod(self) -> bool:
        return self.stage == PROD_STAGE

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def stack_name(self) -> str:
        return f"DeepSeekGateway-{self.stage}"

    def usage_plan_key(self, plan: str) -> str:
        """The API Gateway API key value that identifies a usage plan (the authorizer returns it).

        With `apiKeySource: AUTHORIZER` clients never send this value: it is an identifier the
        authorizer hands to API Gateway, not a credential, so it can be a fixed, readable string.
        API key values are unique per account and region, hence the stage in it.
        """
        return f"deepseek-gateway-{self.stage}-usage-plan-{plan}"

    @property
    def usage_plan_keys(self) -> dict[str, str]:
        """Plan name -> value of its usage plan's API key: the authorizer's `USAGE_PLAN_KEYS`."""
        return {plan: self.usage_plan_key(plan) for plan in self.plans}

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> GatewayConfig:
        """Build from a flat mapping of context values (missing keys take their defaults)."""
        for old, new in _REPLACED_KEYS.items():
            if values.get(old) is not None:
                raise ConfigError(f"context `{old}` was replaced by `plans`: set `{new}` instead")
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        v = {**DEFAULTS, **{k: val for k, val in values.items() if val is not None}}
        return cls(
            stage=str(v["stage"]).strip(),
            region=str(v["region"]).strip(),
            account=_optional_str(v["account"]),
            oidc_issuers=_issuers(v["oidc_issuers"]),
            waf=_bool("waf", v["waf"]),
            waf_rate_limit=_int("waf_rate_limit", v["waf_rate_limit"], minimum=10),
            alarm_email=_optional_str(v["alarm_email"]),
            provisioned_concurrency=_int("provisioned_concurrency", v["provisioned_concurrency"] or 0),
            reserved_concurrency=_optional_int("reserved_concurrency", v["reserved_concurrency"], minimum=1),
            log_retention_days=_int("log_retention_days", v["log_retention_days"], minimum=1),
            log_level=str(v["log_level"]).strip().upper(),
            authorizer_cache_ttl_s=_int("authorizer_cache_ttl_s", v["authorizer_cache_ttl_s"]),
            throttle_rate_limit=_int("throttle_rate_limit", v["throttle_rate_limit"], minimum=1),
            throttle_burst_limit=_int("throttle_burst_limit", v["throttle_burst_limit"], minimum=1),
            plans=_plans(v["plans"]),
            integration_timeout_s=_int("integration_timeout_s", v["integration_timeout_s"], minimum=1),
            deepseek_base_url=str(v["deepseek_base_url"]),
            openai_base_url=str(v["openai_base_url"]),
            anthropic_base_url=str(v["anthropic_base_url"]),
            powertools_layer_version=_int("powertools_layer_version", v["powertools_layer_version"], minimum=1),
            cognito=_bool("cognito", v["cognito"]),
            cognito_domain_prefix=_optional_str(v["cognito_domain_prefix"]),
            cognito_client_tenant=str(v["cognito_client_tenant"]).strip(),
            ses_sender=_optional_str(v["ses_sender"]),
            allow_private_webhooks=_bool("allow_private_webhooks", v["allow_private_webhooks"]),
        )

    @classmethod
    def from_node(cls, node: Node, *, stage: str | None = None) -> GatewayConfig:
        """Read the context of `node`: defaults, then top-level keys, then `stages.<stage>`.

        The `stage` argument (tests, multi-stage apps) wins over the `stage` context key.
        """
        chosen = stage or node.try_get_context("stage") or DEFAULTS["stage"]
        stages = node.try_get_context("stages") or {}
        if isinstance(stages, str):
            stages = json.loads(stages)
        values: dict[str, Any] = {}
        for key in [*DEFAULTS, *_REPLACED_KEYS]:  # replaced keys are read to be refused, not ignored
            value = node.try_get_context(key)
            if value is not None:
                values[key] = value
        values.update(stages.get(chosen) or {})
        values["stage"] = chosen
        return cls.from_values(values)
