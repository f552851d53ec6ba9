"""Functions: arm64, the runtime, layers, tracing, SnapStart behind `live`, logs, least privilege."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk.assertions import Template
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.components.encryption import Encryption
from gateway_cdk.components.functions import (
    RUNTIME,
    Functions,
    FunctionSpec,
    authorizer_spec,
    function_specs,
    has_handler,
)
from gateway_cdk.components.grants import SharedResources, read_provider_secret
from gateway_cdk.components.secrets import ProviderSecrets
from gateway_cdk.components.storage import Storage
from gateway_cdk.config import GatewayConfig

from tests.infra.infra_helpers import (
    SKIP_BUNDLING,
    XRAY_ACTIONS,
    all_identity_statements,
    as_list,
    function_role_id,
    gateway_functions,
    logical_id_of,
    only,
    policy_statements_of_role,
    props,
    resources,
    wildcard_violations,
)


def _api_function(raw: dict) -> tuple[str, dict]:
    return only(resources(raw, "AWS::Lambda::Function"), "FunctionsApiFunction")


def test_runtime_is_python_314_and_the_powertools_layer_matches_it() -> None:
    # The newest Python runtime the Powertools public layer is published for (python314 layers).
    assert RUNTIME.name == "python3.14"


def test_every_function_is_arm64_traced_and_snapstarted(raw_template: dict) -> None:
    functions = gateway_functions(raw_template)
    assert functions
    for function in functions.values():
        p = props(function)
        assert p["Architectures"] == ["arm64"]
        assert p["Runtime"] == "python3.14"
        assert p["TracingConfig"] == {"Mode": "Active"}
        assert p["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert p["Handler"] == "handler.lambda_handler"


def test_layers_are_powertools_then_dependencies_then_core(raw_template: dict) -> None:
    _, function = _api_function(raw_template)
    layers = props(function)["Layers"]
    assert layers[0] == ("arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38")
    assert logical_id_of(layers[1]).startswith("FunctionsLayer1Dependencies")
    assert logical_id_of(layers[2]).startswith("FunctionsLayer2Core")
    for layer in resources(raw_template, "AWS::Lambda::LayerVersion").values():
        assert props(layer)["CompatibleArchitectures"] == ["arm64"]
        assert props(layer)["CompatibleRuntimes"] == ["python3.14"]


def test_every_function_has_a_live_alias_on_a_published_version(raw_template: dict) -> None:
    functions = gateway_functions(raw_template)
    aliases = resources(raw_template, "AWS::Lambda::Alias")
    versions = resources(raw_template, "AWS::Lambda::Version")
    assert len(aliases) == len(versions) == len(functions)
    for alias in aliases.values():
        p = props(alias)
        assert p["Name"] == "live"
        assert logical_id_of(p["FunctionVersion"]) in versions
        assert logical_id_of(p["FunctionName"]) in functions


def test_every_function_logs_to_its_own_encrypted_log_group_with_retention(synthesized) -> None:
    for stage, days in (("dev", 30), ("prod", 90)):
        raw = synthesized.raw[stage]
        log_groups = resources(raw, "AWS::Logs::LogGroup")
        for function in gateway_functions(raw).values():
            log_group = log_groups[logical_id_of(props(function)["LoggingConfig"]["LogGroup"])]
            assert props(log_group)["RetentionInDays"] == days
            assert "KmsKeyId" in props(log_group)


def test_api_function_environment(raw_template: dict) -> None:
    _, function = _api_function(raw_template)
    env = props(function)["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "deepseek-gateway"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "DeepSeekGateway"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["STAGE"] in {"dev", "prod"}
    assert env["DEEPSEEK_BASE_URL"] == "https://api.deepseek.com"
    assert env["OPENAI_BASE_URL"] == "https://api.openai.com/v1"
    assert env["ANTHROPIC_BASE_URL"] == "https://api.anthropic.com"
    assert logical_id_of(env["BREAKER_TABLE_NAME"]).startswith("StorageBreakerTable")
    for provider in ("DEEPSEEK", "OPENAI", "ANTHROPIC"):
        assert logical_id_of(env[f"{provider}_SECRET_ARN"]).startswith(f"Secrets{provider.capitalize()}ApiKey")


def test_api_function_outlives_the_integration_timeout_by_one_second(raw_template: dict) -> None:
    _, function = _api_function(raw_template)
    assert props(function)["Timeout"] == 30
    assert props(function)["Environment"]["Variables"]["REQUEST_DEADLINE_S"] == "28"


def _joined_arn_target(resource: object) -> str:
    """`<bucket ARN>/*` is written as Fn::Join over the bucket's Arn: name the bucket it points into."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        for part in resource["Fn::Join"][1]:
            if isinstance(part, dict) and "Fn::GetAtt" in part:
                return part["Fn::GetAtt"][0]
    return resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)


def test_api_role_reaches_exactly_the_provider_secrets_its_tables_and_the_notifications_and_ingestion_queues(
    raw_template: dict,
) -> None:
    role = function_role_id(raw_template, "FunctionsApiFunction")
    statements = policy_statements_of_role(raw_template, role)
    by_service: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        services = {action.split(":")[0] for action in as_list(statement["Action"])}
        assert len(services) == 1, statement
        targets = {logical_id_of(r) or _joined_arn_target(r) for r in as_list(statement["Resource"])}
        by_service.setdefault(services.pop(), set()).update(targets)

    secrets = {s for s in resources(raw_template, "AWS::SecretsManager::Secret") if "ApiKey" in s}
    assert len(secrets) == 3
    assert by_service.pop("secretsmanager") == secrets
    tables = {t for t in resources(raw_template, "AWS::DynamoDB::Table")
              if t.startswith(("StorageBreaker", "StorageTenants", "StorageUsage", "StorageJobs"))}
    assert len(tables) == 4
    assert by_service.pop("dynamodb") == tables
    (uploads,) = [b for b in resources(raw_template, "AWS::S3::Bucket") if b.startswith("StorageUploads")]
    assert by_service.pop("s3") == {uploads}
    queues = {q for q in resources(raw_template, "AWS::SQS::Queue")
              if q.startswith(("MessagingNotificationsQueue", "MessagingIngestionQueue"))}
    assert len(queues) == 2
    assert by_service.pop("sqs") == queues  # budget events; batch.submitted (Batch API)
    keys = {k for k in resources(raw_template, "AWS::KMS::Key") if k.startswith(("EncryptionDataKey",
                                                                                  "EncryptionIngestionKey"))}
    assert len(keys) == 2
    assert by_service.pop("kms") == keys
    (log_group,) = [g for g in resources(raw_template, "AWS::Logs::LogGroup") if g.startswith("FunctionsApiLogGroup")]
    assert by_service.pop("logs") == {log_group}
    assert by_service.pop("xray") == {"*"}
    assert by_service == {}


def test_api_role_may_only_read_secrets_and_never_change_them(raw_template: dict) -> None:
    role = function_role_id(raw_template, "FunctionsApiFunction")
    actions = {a for s in policy_statements_of_role(raw_template, role) for a in as_list(s["Action"])}
    assert {a for a in actions if a.startswith("secretsmanager:")} == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }


def test_no_identity_policy_has_wildcard_actions_or_resources_beyond_xray_and_sms(raw_template: dict) -> None:
    problems = {
        policy_id: wildcard_violations(statement)
        for policy_id, statement in all_identity_statements(raw_template)
        if wildcard_violations(statement)
    }
    assert problems == {}, problems
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} == XRAY_ACTIONS


def test_every_function_has_its_own_role(raw_template: dict) -> None:
    roles = [logical_id_of(props(f)["Role"]) for f in gateway_functions(raw_template).values()]
    assert len(roles) == len(set(roles))
    for role in roles:
        assert not props(raw_template["Resources"][role]).get("ManagedPolicyArns")


def _functions_stack(config: GatewayConfig, specs: list[FunctionSpec], *, tables: bool = False) -> Template:
    app = App(context={**cdk_json_context(), **SKIP_BUNDLING})
    stack = Stack(app, "FunctionsStack", env={"region": "eu-west-1"})
    encryption = Encryption(stack, "Encryption", config=config)
    secrets = ProviderSecrets(stack, "Secrets", config=config, key=encryption.data_key)
    storage = Storage(stack, "Storage", config=config, key=encryption.data_key) if tables else None
    resources_ = SharedResources(config=config, secrets=secrets.all_secrets, tables=storage.tables if storage else {})
    Functions(stack, "Functions", config=config, logs_key=encryption.logs_key, resources=resources_, specs=specs)
    return Template.from_stack(stack)


def test_a_backend_caller_reads_only_its_own_provider_secret() -> None:
    config = GatewayConfig()
    spec = FunctionSpec(name="api", description="a backend caller", grants=(read_provider_secret("openai"),))
    template = _functions_stack(config, [spec])
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in props(policy)["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    assert [logical_id_of(r) for s in statements for r in as_list(s["Resource"])] == [
        next(k for k in template.find_resources("AWS::SecretsManager::Secret") if k.startswith("SecretsOpenai"))
    ]
    env = next(iter(template.find_resources("AWS::Lambda::Function").values()))["Properties"]["Environment"]
    assert "OPENAI_SECRET_ARN" in env["Variables"] and "DEEPSEEK_SECRET_ARN" not in env["Variables"]


def test_provisioned_concurrency_replaces_snapstart_and_reserved_concurrency_is_set() -> None:
    config = GatewayConfig(provisioned_concurrency=2, reserved_concurrency=50)
    (api,) = [s for s in function_specs(config) if s.name == "api"]
    template = _functions_stack(config, [FunctionSpec(**{**api.__dict__, "grants": ()})])
    function = next(iter(template.find_resources("AWS::Lambda::Function").values()))["Properties"]
    assert "SnapStart" not in function
    assert function["ReservedConcurrentExecutions"] == 50
    template.has_resource_properties(
        "AWS::Lambda::Alias", {"Name": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}}
    )
    # The Powertools layer follows the stack's region.
    assert function["Layers"][0].startswith("arn:aws:lambda:eu-west-1:017000801446:layer:")


@pytest.mark.parametrize("spec_name", [s.name for s in function_specs(GatewayConfig())])
def test_every_function_spec_has_its_code_folder(spec_name: str) -> None:
    (spec,) = [s for s in function_specs(GatewayConfig()) if s.name == spec_name]
    assert spec.code_dir.is_dir()
    assert spec.timeout.to_seconds() >= 1 and isinstance(spec.timeout, Duration)


def test_the_authorizer_joins_exactly_when_its_handler_exists() -> None:
    names = [s.name for s in function_specs(GatewayConfig())]
    assert ("authorizer" in names) == has_handler("authorizer")
    assert names[0] == "api"


def test_authorizer_spec_reads_only_the_tenants_table_and_gets_issuers_and_plan_keys() -> None:
    issuer = {"issuer": "https://id.example.com", "audiences": ["gw"], "jwks_url": "https://id.example.com/jwks"}
    spec = authorizer_spec(GatewayConfig(stage="prod", oidc_issuers=(issuer,)))
    assert spec.synchronous and spec.timeout.to_seconds() <= 10
    assert json.loads(spec.environment["OIDC_ISSUERS"]) == [issuer]
    assert json.loads(spec.environment["USAGE_PLAN_KEYS"]) == {
        "default": "deepseek-gateway-prod-usage-plan-default",
        "pro": "deepseek-gateway-prod-usage-plan-pro",
    }
    assert "OIDC_ISSUERS" not in authorizer_spec(GatewayConfig()).environment

    config = GatewayConfig()
    template = _functions_stack(config, [FunctionSpec(**{**spec.__dict__, "name": "api"})], tables=True)
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in props(policy)["PolicyDocument"]["Statement"]
        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    targets = {logical_id_of(r) for s in statements for r in as_list(s["Resource"]) if logical_id_of(r)}
    assert {t.split("Table")[0] for t in targets} == {"StorageTenants"}
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & actions


def test_safety_task_function_only_reads_the_tenants_table_and_touches_no_queue_or_secret(raw_template: dict) -> None:
    role = function_role_id(raw_template, "FunctionsSafetyFunction")
    statements = policy_statements_of_role(raw_template, role)
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services <= {"logs", "xray", "kms", "dynamodb", "secretsmanager"}, services
    secrets = [s for s in statements if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    assert len(secrets) == 1 and "Openai" in json.dumps(secrets[0]["Resource"])  # moderation only
    dynamodb = {a for s in statements for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert dynamodb and all(a.split(":")[1].startswith(("Get", "BatchGet", "Query", "Scan", "Describe",
                                                         "ConditionCheck")) for a in dynamodb), dynamodb
