"""API: REST API routes to the api alias, authorizer, usage plans, logs, OpenAI-shaped gateway errors, WAF."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.components.api import GATEWAY_RESPONSES, Api
from gateway_cdk.components.functions import has_handler
from gateway_cdk.config import GatewayConfig

from tests.infra.infra_helpers import logical_id_of, only, props, resources


def _paths(raw: dict) -> dict[str, str]:
    """Resource logical id -> full path, e.g. /v1/models/{model}."""
    api_resources = resources(raw, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            p = props(api_resources[logical_id])
            parent = logical_id_of(p["ParentId"])
            prefix = path_of(parent) if parent in api_resources else ""
            paths[logical_id] = f"{prefix}/{p['PathPart']}"
        return paths[logical_id]

    for logical_id in api_resources:
        path_of(logical_id)
    return paths


def _routes(raw: dict) -> dict[tuple[str, str], dict]:
    paths = _paths(raw)
    return {
        (props(m)["HttpMethod"], paths[logical_id_of(props(m)["ResourceId"])]): props(m)
        for m in resources(raw, "AWS::ApiGateway::Method").values()
    }


def test_it_is_a_regional_rest_api_with_authorizer_fed_api_keys(raw_template: dict) -> None:
    _, api = only(resources(raw_template, "AWS::ApiGateway::RestApi"))
    assert props(api)["ApiKeySourceType"] == "AUTHORIZER"
    assert props(api)["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_openai_and_admin_routes_are_proxied_to_the_live_alias_of_the_api_function(raw_template: dict) -> None:
    routes = _routes(raw_template)
    assert set(routes) == {
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model}"),
        ("GET", "/v1/batches"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches/{batch_id}"),
        ("POST", "/v1/batches/{batch_id}/cancel"),
        ("ANY", "/v1/{proxy+}"),
        ("ANY", "/admin/{proxy+}"),
    }
    (alias,) = [a for a in resources(raw_template, "AWS::Lambda::Alias") if a.startswith("FunctionsApi")]
    for method in routes.values():
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["TimeoutInMillis"] == 29_000
        assert {"Ref": alias} in integration["Uri"]["Fn::Join"][1]


def test_routes_use_the_authorizer_exactly_when_its_handler_exists(raw_template: dict) -> None:
    authorizers = resources(raw_template, "AWS::ApiGateway::Authorizer")
    methods = _routes(raw_template).values()
    if has_handler("authorizer"):
        (authorizer_id, authorizer) = only(authorizers)
        assert props(authorizer)["Type"] == "REQUEST"
        assert props(authorizer)["IdentitySource"] == "method.request.header.Authorization"
        assert props(authorizer)["AuthorizerResultTtlInSeconds"] == 300
        (alias,) = [a for a in resources(raw_template, "AWS::Lambda::Alias") if a.startswith("FunctionsAuthorizer")]
        assert {"Ref": alias} in props(authorizer)["AuthorizerUri"]["Fn::Join"][1]
        for method in methods:
            assert method["AuthorizationType"] == "CUSTOM"
            assert logical_id_of(method["AuthorizerId"]) == authorizer_id
            assert method["ApiKeyRequired"] is True
    else:
        assert not authorizers
        for method in methods:
            assert method["AuthorizationType"] == "AWS_IAM"


def test_api_gateway_may_invoke_only_the_live_aliases(raw_template: dict) -> None:
    aliases = resources(raw_template, "AWS::Lambda::Alias")
    (api_alias,) = [a for a in aliases if a.startswith("FunctionsApi")]
    invoked: dict[str, int] = {}
    for permission in resources(raw_template, "AWS::Lambda::Permission").values():
        if props(permission)["Principal"] == "events.amazonaws.com":  # the batch-execution-ended rule
            assert logical_id_of(props(permission)["FunctionName"]).startswith("FunctionsBatch")
            continue
        assert props(permission)["Principal"] == "apigateway.amazonaws.com"
        target = logical_id_of(props(permission)["FunctionName"])
        assert target in aliases
        invoked[target] = invoked.get(target, 0) + 1
    assert invoked.pop(api_alias) == len(_routes(raw_template))
    assert set(invoked) == ({a for a in aliases if a.startswith("FunctionsAuthorizer")} if invoked else set())


def _plans_by_name(raw: dict) -> dict[str, tuple[str, dict]]:
    """Plan name -> (usage plan logical id, properties); usage plans are named deepseek-gateway-<stage>-<plan>."""
    stage = props(only(resources(raw, "AWS::ApiGateway::Stage"))[1])["StageName"]
    prefix = f"deepseek-gateway-{stage}-"
    found = {}
    for logical_id, plan in resources(raw, "AWS::ApiGateway::UsagePlan").items():
        name = props(plan)["UsagePlanName"]
        assert name.startswith(prefix), name
        found[name.removeprefix(prefix)] = (logical_id, props(plan))
    return found


def test_there_is_one_usage_plan_per_configured_plan_with_its_throttle_and_quota(raw_template: dict) -> None:
    configured = cdk_json_context()["plans"]
    plans = _plans_by_name(raw_template)
    assert set(plans) == set(configured) >= {"default", "pro"}
    (api_id,) = resources(raw_template, "AWS::ApiGateway::RestApi")
    for name, (_, plan) in plans.items():
        limits = configured[name]
        assert plan["Throttle"] == {"RateLimit": limits["rate_limit"], "BurstLimit": limits["burst_limit"]}
        assert "Quota" not in plan  # none of cdk.json's plans has a quota
        (api_stage,) = plan["ApiStages"]
        assert logical_id_of(api_stage["ApiId"]) == api_id


def test_each_plan_key_is_attached_to_its_plan_and_is_the_one_the_authorizer_returns(raw_template: dict) -> None:
    stage = props(only(resources(raw_template, "AWS::ApiGateway::Stage"))[1])["StageName"]
    plans = _plans_by_name(raw_template)
    keys = resources(raw_template, "AWS::ApiGateway::ApiKey")
    attached = {
        logical_id_of(props(k)["UsagePlanId"]): logical_id_of(props(k)["KeyId"])
        for k in resources(raw_template, "AWS::ApiGateway::UsagePlanKey").values()
    }
    assert len(attached) == len(resources(raw_template, "AWS::ApiGateway::UsagePlanKey")) == len(plans) == len(keys)
    key_values = {}
    for name, (plan_id, _) in plans.items():
        key = keys[attached[plan_id]]
        assert props(key)["Value"] == props(key)["Name"] == f"deepseek-gateway-{stage}-usage-plan-{name}"
        key_values[name] = props(key)["Value"]
    # The default plan keeps the logical ids of the single plan of earlier releases (no replacement).
    assert plans["default"][0].startswith("ApiRestApiDefaultUsagePlan")
    assert attached[plans["default"][0]].startswith("ApiRestApiDefaultPlanKey")
    if has_handler("authorizer"):
        (function,) = [
            f
            for k, f in resources(raw_template, "AWS::Lambda::Function").items()
            if k.startswith("FunctionsAuthorizer")
        ]
        plan_keys = json.loads(props(function)["Environment"]["Variables"]["USAGE_PLAN_KEYS"])
        assert plan_keys == key_values


def test_usage_plans_follow_the_plans_context_including_daily_quotas() -> None:
    template = _api_stack(
        stage="prod",
        plans={
            "default": {"rate_limit": 5, "burst_limit": 10, "quota_per_day": None},
            "team-2": {"rate_limit": 20, "burst_limit": 30, "quota_per_day": 100_000},
        },
    )
    template.resource_count_is("AWS::ApiGateway::UsagePlan", 2)
    template.resource_count_is("AWS::ApiGateway::ApiKey", 2)
    template.resource_count_is("AWS::ApiGateway::UsagePlanKey", 2)
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "UsagePlanName": "deepseek-gateway-prod-default",
            "Throttle": {"RateLimit": 5, "BurstLimit": 10},
            "Quota": Match.absent(),
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "UsagePlanName": "deepseek-gateway-prod-team-2",
            "Throttle": {"RateLimit": 20, "BurstLimit": 30},
            "Quota": {"Limit": 100_000, "Period": "DAY"},
        },
    )
    template.has_resource_properties("AWS::ApiGateway::ApiKey", {"Value": "deepseek-gateway-prod-usage-plan-team-2"})


@pytest.mark.parametrize(("response_type", "status", "error_type", "code"), GATEWAY_RESPONSES)
def test_gateway_errors_are_in_the_openai_error_shape(
    raw_template: dict, response_type, status: str | None, error_type: str, code: str
) -> None:
    (response,) = [
        props(r)
        for r in resources(raw_template, "AWS::ApiGateway::GatewayResponse").values()
        if props(r)["ResponseType"] == response_type.response_type
    ]
    assert response.get("StatusCode") == status
    template = response["ResponseTemplates"]["application/json"]
    # Render the VTL as API Gateway would for a message, then parse it.
    if response_type.response_type == "ACCESS_DENIED":
        rendered = (template.replace("$context.authorizer.error_message", "This tenant is disabled or unknown.")
                    .replace("$context.authorizer.error_code", "tenant_disabled"))
        assert json.loads(rendered) == {"error": {"message": "This tenant is disabled or unknown.",
                                                  "type": error_type, "param": None, "code": "tenant_disabled"}}
        return
    body = json.loads(template.replace("$context.error.messageString", json.dumps('Say "hi"')))
    assert body == {"error": {"message": 'Say "hi"', "type": error_type, "param": None, "code": code}}


def test_gateway_responses_cover_auth_throttling_size_and_timeouts(raw_template: dict) -> None:
    expected = {
        "UNAUTHORIZED": "401",
        "ACCESS_DENIED": "403",
        "THROTTLED": "429",
        "QUOTA_EXCEEDED": "429",
        "REQUEST_TOO_LARGE": "413",
        "INTEGRATION_TIMEOUT": "504",
        "DEFAULT_4XX": None,
        "DEFAULT_5XX": None,
    }
    found = {
        props(r)["ResponseType"]: props(r).get("StatusCode")
        for r in resources(raw_template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert found == expected


def test_stage_is_traced_throttled_and_writes_json_access_logs_to_an_encrypted_group(raw_template: dict) -> None:
    _, stage = only(resources(raw_template, "AWS::ApiGateway::Stage"))
    p = props(stage)
    assert p["TracingEnabled"] is True
    (settings,) = p["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 500
    assert settings["ThrottlingBurstLimit"] == 1000
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    access_log_format = json.loads(p["AccessLogSetting"]["Format"])
    assert access_log_format["requestId"] == "$context.requestId"
    assert access_log_format["status"] == "$context.status"
    destination = json.dumps(p["AccessLogSetting"]["DestinationArn"])
    (access_logs,) = [g for g in resources(raw_template, "AWS::Logs::LogGroup") if g.startswith("ApiAccessLogs")]
    assert access_logs in destination


def test_execution_logs_group_is_created_encrypted_before_api_gateway_would(raw_template: dict) -> None:
    (group,) = [
        g for k, g in resources(raw_template, "AWS::Logs::LogGroup").items() if k.startswith("ApiExecutionLogs")
    ]
    assert "API-Gateway-Execution-Logs_" in json.dumps(props(group)["LogGroupName"])
    assert "KmsKeyId" in props(group)


def test_waf_is_off_by_default(dev: Template) -> None:
    dev.resource_count_is("AWS::WAFv2::WebACL", 0)


def test_waf_rate_limits_and_applies_managed_rules_to_the_stage_when_enabled(prod: Template) -> None:
    prod.resource_count_is("AWS::WAFv2::WebACL", 1)
    prod.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "Rules": Match.array_with(
                [
                    Match.object_like({"Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}}}),
                    Match.object_like(
                        {
                            "Statement": {
                                "ManagedRuleGroupStatement": Match.object_like(
                                    {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}
                                )
                            }
                        }
                    ),
                    Match.object_like(
                        {
                            "Statement": {
                                "ManagedRuleGroupStatement": Match.object_like(
                                    {"VendorName": "AWS", "Name": "AWSManagedRulesKnownBadInputsRuleSet"}
                                )
                            }
                        }
                    ),
                ]
            ),
        },
    )
    prod.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


def test_waf_only_counts_body_rules_because_prompts_are_large_and_contain_code(synthesized) -> None:
    (acl,) = resources(synthesized.raw["prod"], "AWS::WAFv2::WebACL").values()
    (common,) = [r for r in props(acl)["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet"]
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert {o["Name"] for o in overrides} >= {"SizeRestrictions_BODY", "CrossSiteScripting_BODY"}
    assert all(o["ActionToUse"] == {"Count": {}} for o in overrides)


def test_base_url_is_a_stack_output(raw_template: dict) -> None:
    assert "ApiBaseUrl" in raw_template["Outputs"]


def _api_stack(*, with_authorizer: bool = True, **config_overrides) -> Template:
    app = App(context=cdk_json_context())
    stack = Stack(app, "ApiStack", env={"region": "us-east-1"})

    def function(name: str) -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        )

    Api(
        stack,
        "Api",
        config=GatewayConfig(**config_overrides),
        handler=function("ApiFn"),
        authorizer_handler=function("AuthorizerFn") if with_authorizer else None,
        logs_key=kms.Key(stack, "LogsKey"),
    )
    return Template.from_stack(stack)


def test_with_an_authorizer_every_route_uses_it_and_requires_the_usage_plan_key() -> None:
    template = _api_stack()
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": 300,
        },
    )
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 9
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "CUSTOM"
        assert method["Properties"]["ApiKeyRequired"] is True
        assert "AuthorizerId" in method["Properties"]


def test_authorizer_cache_ttl_and_integration_timeout_come_from_the_context() -> None:
    template = _api_stack(authorizer_cache_ttl_s=60, integration_timeout_s=120)
    template.has_resource_properties("AWS::ApiGateway::Authorizer", {"AuthorizerResultTtlInSeconds": 60})
    template.has_resource_properties(
        "AWS::ApiGateway::Method", {"Integration": Match.object_like({"TimeoutInMillis": 120_000})}
    )


def test_without_an_authorizer_function_the_api_stays_closed_behind_iam() -> None:
    template = _api_stack(with_authorizer=False)
    template.resource_count_is("AWS::ApiGateway::Authorizer", 0)
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 9
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert not method["Properties"].get("ApiKeyRequired")
