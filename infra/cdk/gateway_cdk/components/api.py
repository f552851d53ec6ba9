"""The OpenAI-compatible REST API: API Gateway REST API in front of the `api` function's alias.

Routes (all Lambda proxy integrations to `api:live`):
  POST /v1/chat/completions, GET /v1/models, GET /v1/models/{model},
  GET|POST /v1/batches, GET /v1/batches/{batch_id}, POST /v1/batches/{batch_id}/cancel,
  ANY /v1/{proxy+}, ANY /admin/{proxy+}

With an authorizer function, every method uses the Lambda REQUEST authorizer (identity source: the
Authorization header, cached) and requires the usage-plan key the authorizer returns
(`apiKeySource: AUTHORIZER`): the key of the tenant's plan, so the usage plan of that plan (one per
entry of the context key `plans`) throttles the plan's tenants, who share its key. Without one
(before the authorizer exists), methods require IAM (SigV4) authorization: the API stays closed
rather than open to anyone who can reach it.

Errors that API Gateway answers itself (authorizer denials, throttling, payload too large,
integration timeout) come back in OpenAI's error shape, like the function's own errors.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnOutput, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ..config import DEFAULT_PLAN, GatewayConfig
from .common import encrypted_log_group

# (response type, status code or None to keep API Gateway's, OpenAI error type, OpenAI error code)
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str | None, str, str], ...] = (
    (apigw.ResponseType.UNAUTHORIZED, "401", "authentication_error", "invalid_api_key"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "permission_error", "permission_denied"),
    (apigw.ResponseType.THROTTLED, "429", "rate_limit_error", "rate_limit_exceeded"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "insufficient_quota", "insufficient_quota"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "invalid_request_error", "request_too_large"),
    (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "api_error", "timeout"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "invalid_request_error", "invalid_request"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "api_error", "internal_error"),
)

# Structured JSON access log: one object per request. No request or response bodies.
ACCESS_LOG_FIELDS: dict[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integration.error",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "principalId": "$context.authorizer.principalId",
    "tenantId": "$context.authorizer.tenant_id",
    "authorizerLatency": "$context.authorizer.latency",
    "authorizerStatus": "$context.authorizer.status",
    "authorizerError": "$context.authorizer.error",
    "apiKeyId": "$context.identity.apiKeyId",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
    "wafResponseCode": "$context.wafResponseCode",
    "xrayTraceId": "$context.xrayTraceId",
}

# Rules of the Common rule set that inspect the request body. A body here is a prompt, and prompts
# legitimately exceed 8 KB and contain code, paths and URLs: count, don't block.
_BODY_RULES = (
    "SizeRestrictions_BODY",
    "CrossSiteScripting_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "EC2MetaDataSSRF_BODY",
)


def openai_error_template(error_type: str, code: str) -> str:
    """VTL for the OpenAI error body; `messageString` is API Gateway's message, already JSON-quoted."""
    return f'{{"error":{{"message":$context.error.messageString,"type":"{error_type}","param":null,"code":"{code}"}}}}'


# A Deny from the authorizer carries its reason in the context (e.g. a disabled tenant); the 403
# says it. The authorizer's messages are fixed strings without quotes, so no escaping is needed.
ACCESS_DENIED_TEMPLATE = (
    '{"error":{"message":"$context.authorizer.error_message","type":"permission_error","param":null,'
    '"code":"$context.authorizer.error_code"}}'
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        handler: lambda_.IFunction,
        logs_key: kms.IKey,
        authorizer_handler: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        access_logs = encrypted_log_group(self, "AccessLogs", key=logs_key, config=config)

        self.rest_api_name = f"deepseek-gateway-{config.stage}"
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=self.rest_api_name,
            description=f"DeepSeek Gateway {config.stage}: OpenAI-compatible API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Multipart uploads and file contents travel as binary (base64 to and from the function).
            binary_media_types=["multipart/form-data", "application/octet-stream", "application/binary"],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )
        self.stage = self.rest_api.deployment_stage
        # API Gateway's execution (error) logs: created here, before the stage, so that they are
        # encrypted and expire (API Gateway would otherwise create the group itself, unencrypted).
        execution_logs = encrypted_log_group(
            self,
            "ExecutionLogs",
            key=logs_key,
            config=config,
            log_group_name=f"API-Gateway-Execution-Logs_{self.rest_api.rest_api_id}/{config.stage}",
        )
        self.stage.node.add_dependency(execution_logs)

        self.authorizer: apigw.RequestAuthorizer | None = None
        if authorizer_handler is not None:
            self.authorizer = apigw.RequestAuthorizer(
                self,
                "Authorizer",
                handler=authorizer_handler,
                identity_sources=[apigw.IdentitySource.header("Authorization")],
                results_cache_ttl=Duration.seconds(config.authorizer_cache_ttl_s),
            )
            method_options: dict = {
                "authorization_type": apigw.AuthorizationType.CUSTOM,
                "authorizer": self.authorizer,
                "api_key_required": True,
            }
        else:
            method_options = {"authorization_type": apigw.AuthorizationType.IAM}
        # Later routes (e.g. /v1/messages) use the same: `resource.add_method(verb, api.integration,
        # **api.method_options)`.
        self.method_options = method_options

        integration = apigw.LambdaIntegration(
            handler,
            proxy=True,
            allow_test_invoke=False,
            timeout=Duration.seconds(config.integration_timeout_s),
        )
        self.integration = integration
        v1 = self.rest_api.root.add_resource("v1")
        self.v1 = v1
        v1.add_resource("chat").add_resource("completions").add_method("POST", integration, **method_options)
        models = v1.add_resource("models")
        models.add_method("GET", integration, **method_options)
        models.add_resource("{model}").add_method("GET", integration, **method_options)
        # The Batch API (OpenAI's /v1/batches).
        batches = v1.add_resource("batches")
        batches.add_method("GET", integration, **method_options)
        batches.add_method("POST", integration, **method_options)
        batch = batches.add_resource("{batch_id}")
        batch.add_method("GET", integration, **method_options)
        batch.add_resource("cancel").add_method("POST", integration, **method_options)
        v1.add_resource("{proxy+}").add_method("ANY", integration, **method_options)
        # The admin API (tenants, keys): same function, same authorizer; the function checks the admin scope.
        self.rest_api.root.add_resource("admin").add_resource("{proxy+}").add_method(
            "ANY", integration, **method_options)

        for response_type, status, error_type, code in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status,
                templates={"application/json": ACCESS_DENIED_TEMPLATE
                           if response_type.response_type == "ACCESS_DENIED"
                           else openai_error_template(error_type, code)},
            )

        # One usage plan per tenant plan (context `plans`), each with one fixed-value API key: the
        # authorizer returns the key of the tenant's plan as usageIdentifierKey (USAGE_PLAN_KEYS), so
        # API Gateway throttles every tenant of a plan by that plan's limits.
        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        self.plan_keys: dict[str, apigw.IApiKey] = {}
        for plan, limits in config.plans.items():
            # "default" -> DefaultUsagePlan / DefaultPlanKey: the ids of the single plan of earlier
            # releases, so that its plan and key are updated in place, not replaced (a replacement
            # would create a key with the value the old one still holds).
            prefix = plan[0].upper() + plan[1:]
            usage_plan = self.rest_api.add_usage_plan(
                f"{prefix}UsagePlan",
                name=f"deepseek-gateway-{config.stage}-{plan}",
                description=(
                    "Throttle for tenants on the default plan and on plans without a usage plan (they share its key)"
                    if plan == DEFAULT_PLAN
                    else f"Throttle for tenants on the {plan} plan (they share its key)"
                ),
                throttle=apigw.ThrottleSettings(rate_limit=limits.rate_limit, burst_limit=limits.burst_limit),
                quota=(
                    apigw.QuotaSettings(limit=limits.quota_per_day, period=apigw.Period.DAY)
                    if limits.quota_per_day
                    else None
                ),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
            )
            key = self.rest_api.add_api_key(
                f"{prefix}PlanKey",
                api_key_name=config.usage_plan_key(plan),
                value=config.usage_plan_key(plan),
                description=f"Usage identifier of the {plan} plan (returned by the authorizer; not a credential)",
            )
            usage_plan.add_api_key(key)
            self.usage_plans[plan] = usage_plan
            self.plan_keys[plan] = key
        self.default_usage_plan = self.usage_plans[DEFAULT_PLAN]
        self.default_plan_key = self.plan_keys[DEFAULT_PLAN]

        self.web_acl: wafv2.CfnWebACL | None = self._web_acl() if config.waf else None
        self._acknowledge()

        self.url = f"{self.rest_api.url}v1"
        CfnOutput(self, "BaseUrl", value=self.url, description="OpenAI base_url of the gateway").override_logical_id(
            "ApiBaseUrl"
        )

    def _web_acl(self) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(priority: int, name: str, overrides: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in overrides
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(name),
            )

        stage = self.config.stage
        web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"deepseek-gateway-{stage}"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=self.config.waf_rate_limit, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RateLimitPerIp"),
                ),
                managed(1, "AWSManagedRulesCommonRuleSet", _BODY_RULES),
                managed(2, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.stage.stage_arn, web_acl_arn=web_acl.attr_arn
        )
        return web_acl

    def _acknowledge(self) -> None:
        acknowledgments = [
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Requests are validated by the api function's pydantic models, which answer in "
                "OpenAI's error shape; an API Gateway validator would answer in its own.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Callers authenticate with gateway API keys or OIDC JWTs from any issuer "
                "(Keycloak, Cognito, Auth0), checked by the Lambda REQUEST authorizer; a Cognito "
                "user pool authorizer accepts only one user pool's tokens.",
            ),
        ]
        if not self.config.waf:
            acknowledgments.append(
                Acknowledgment(
                    id="AwsSolutions-APIG3",
                    reason="WAF is opt-in with the context flag `waf` (a web ACL has a fixed monthly "
                    "cost); stage throttling and per-tenant usage plans apply either way.",
                )
            )
        Validations.of(self.rest_api).acknowledge(*acknowledgments)
        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            Validations.of(cloud_watch_role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs]",
                    reason="API Gateway's account-level CloudWatch role needs this AWS managed policy, "
                    "the one AWS documents for it; API Gateway writes execution and access logs with it.",
                )
            )
