"""Configuration: context values (cdk.json, `-c key=value` strings, per-stage blocks) parsed and checked."""

from __future__ import annotations

import pytest
from aws_cdk import App
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.config import DEFAULTS, ConfigError, GatewayConfig, PlanLimits


def test_cdk_json_declares_every_configuration_key() -> None:
    context = cdk_json_context()
    assert set(DEFAULTS) <= set(context)
    for key, default in DEFAULTS.items():
        if key not in {"stage"}:
            assert context[key] == default, key


def test_command_line_strings_are_parsed_by_type() -> None:
    config = GatewayConfig.from_values(
        {
            "waf": "true",
            "reserved_concurrency": "50",
            "provisioned_concurrency": "2",
            "log_retention_days": "90",
            "oidc_issuers": '[{"issuer": "https://id.example.com/realms/a", "audiences": ["gateway"], '
            '"jwks_url": "https://id.example.com/realms/a/protocol/openid-connect/certs", "flavor": "keycloak"}]',
            "alarm_email": "",
        }
    )
    assert config.waf is True
    assert config.reserved_concurrency == 50
    assert config.provisioned_concurrency == 2
    assert config.log_retention_days == 90
    assert [issuer["issuer"] for issuer in config.oidc_issuers] == ["https://id.example.com/realms/a"]
    assert config.alarm_email is None


def test_oidc_issuers_are_issuer_objects_as_the_authorizer_reads_them() -> None:
    issuer = {"issuer": "https://a.example.com", "audiences": ["gw"], "jwks_url": "https://a.example.com/jwks"}
    assert GatewayConfig.from_values({"oidc_issuers": [issuer]}).oidc_issuers == (issuer,)
    assert GatewayConfig.from_values({"oidc_issuers": "[]"}).oidc_issuers == ()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("log_retention_days", 31),
        ("waf", "maybe"),
        ("stage", "Prod!"),
        ("authorizer_cache_ttl_s", 7200),
        ("integration_timeout_s", 0),
        ("oidc_issuers", ["https://a.example.com"]),
        ("oidc_issuers", [{"issuer": "https://a.example.com"}, {"issuer": "https://a.example.com"}]),
        ("oidc_issuers", "[not json"),
        ("reserved_concurrency", 0),
        ("log_level", "LOUD"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        GatewayConfig.from_values({key: value})


def test_plans_are_parsed_from_objects_and_command_line_json() -> None:
    config = GatewayConfig.from_values(
        {
            "plans": '{"default": {"rate_limit": "5", "burst_limit": 10}, "team-2": '
            '{"rate_limit": 20, "burst_limit": 30, "quota_per_day": 1000}}'
        }
    )
    assert config.plans == {
        "default": PlanLimits(rate_limit=5, burst_limit=10, quota_per_day=None),
        "team-2": PlanLimits(rate_limit=20, burst_limit=30, quota_per_day=1000),
    }
    assert config.usage_plan_keys == {
        "default": "deepseek-gateway-dev-usage-plan-default",
        "team-2": "deepseek-gateway-dev-usage-plan-team-2",
    }
    assert set(GatewayConfig().plans) == set(GatewayConfig.from_values({}).plans) == {"default", "pro"}
    assert GatewayConfig().plans["pro"] == PlanLimits(rate_limit=200, burst_limit=400)


_DEFAULT = {"rate_limit": 50, "burst_limit": 100}


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ("{not json", "`plans` is not valid JSON"),
        ([_DEFAULT], "`plans` must be a non-empty object"),
        ({}, "`plans` must be a non-empty object"),
        ({"pro": _DEFAULT}, "`plans` must define the `default` plan"),
        ({"default": _DEFAULT, "Pro!": _DEFAULT}, r"plan names must match .*'Pro!'"),
        ({"default": _DEFAULT, "x" * 33: _DEFAULT}, "plan names must match"),
        ({"default": 50}, "`plans.default` must be an object"),
        ({"default": {"rate_limit": 50}}, "`plans.default` must set `burst_limit`"),
        ({"default": {**_DEFAULT, "rate": 5}}, "`plans.default` has unknown fields rate"),
        ({"default": {**_DEFAULT, "rate_limit": 0}}, r"`plans.default.rate_limit` must be >= 1"),
        ({"default": {**_DEFAULT, "burst_limit": "lots"}}, "`plans.default.burst_limit` must be an integer"),
        ({"default": {**_DEFAULT, "burst_limit": 1.5}}, "`plans.default.burst_limit` must be an integer"),
        ({"default": {**_DEFAULT, "burst_limit": True}}, "`plans.default.burst_limit` must be an integer"),
        ({"default": {**_DEFAULT, "quota_per_day": 0}}, r"`plans.default.quota_per_day` must be >= 1"),
    ],
)
def test_bad_plans_are_refused_with_a_message_naming_the_plan_and_field(plans: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig.from_values({"plans": plans})
    with pytest.raises(ConfigError, match=message):
        GatewayConfig(plans=plans)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["usage_plan_rate_limit", "usage_plan_burst_limit", "usage_plan_quota_per_day"])
def test_the_replaced_usage_plan_keys_are_refused_with_a_pointer_to_plans(key: str) -> None:
    field = key.removeprefix("usage_plan_")
    message = f"`{key}` was replaced by `plans`: set `plans.default.{field}`"
    with pytest.raises(ConfigError, match=message):
        GatewayConfig.from_values({key: 10})
    for context in ({key: 10}, {"stages": {"dev": {key: 10}}}):  # top level (`-c`) and stage block
        with pytest.raises(ConfigError, match=message):
            GatewayConfig.from_node(App(context=context).node, stage="dev")


def test_a_stage_block_replaces_the_whole_plans_object() -> None:
    only_default = {"default": {"rate_limit": 1, "burst_limit": 2}}
    app = App(context={**cdk_json_context(), "stages": {"prod": {"plans": only_default}}})
    assert set(GatewayConfig.from_node(app.node, stage="prod").plans) == {"default"}
    assert set(GatewayConfig.from_node(app.node, stage="dev").plans) == {"default", "pro"}


def test_an_unknown_key_in_a_stage_block_is_refused() -> None:
    app = App(context={"stages": {"prod": {"wafff": True}}})
    with pytest.raises(ConfigError, match="wafff"):
        GatewayConfig.from_node(app.node, stage="prod")


def test_a_stage_block_overrides_the_top_level_value_for_that_stage_only() -> None:
    app = App(context={"log_retention_days": 14, "stages": {"prod": {"log_retention_days": 365}}})
    assert GatewayConfig.from_node(app.node, stage="prod").log_retention_days == 365
    assert GatewayConfig.from_node(app.node, stage="dev").log_retention_days == 14


def test_the_stage_comes_from_the_context_and_only_prod_is_production() -> None:
    app = App(context={"stage": "prod"})
    config = GatewayConfig.from_node(app.node)
    assert config.stage == "prod" and config.is_prod and config.stack_name == "DeepSeekGateway-prod"
    assert not GatewayConfig.from_node(App().node).is_prod
