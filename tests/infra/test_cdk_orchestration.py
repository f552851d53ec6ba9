"""Orchestration: one inline state machine per statemachines/*.asl.json, logged and traced; none if empty."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.components.encryption import Encryption
from gateway_cdk.components.functions import absent_functions
from gateway_cdk.components.grants import SharedResources
from gateway_cdk.components.messaging import Messaging
from gateway_cdk.components.orchestration import Orchestration, missing_functions
from gateway_cdk.components.storage import Storage
from gateway_cdk.config import GatewayConfig
from gateway_cdk.paths import STATEMACHINES_DIR

from tests.infra.infra_helpers import as_list, logical_id_of, props, resources

DEFINITION = {
    "Comment": "route one job",
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${FunctionArn_router}", "Payload.$": "$"},
            "Next": "Record",
        },
        "Record": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": "${TableName_jobs}", "Item": {"pk": {"S.$": "$.id"}}},
            "End": True,
        },
    },
}


# Every kind of placeholder, for cdk-nag: each grant's findings must be acknowledged where made.
ALL_PLACEHOLDERS = {
    **DEFINITION,
    "States": {
        **DEFINITION["States"],
        "Record": {key: value for key, value in DEFINITION["States"]["Record"].items() if key != "End"}
        | {"Next": "Store"},
        "Store": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            "Parameters": {"Bucket": "${BucketName_results}", "Key": "${Stage}/result.json", "Body.$": "$"},
            "Next": "Notify",
        },
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "${QueueUrl_notifications}", "MessageBody.$": "$"},
            "End": True,
        },
    },
}


def test_the_stack_has_one_state_machine_per_definition_file_whose_functions_exist(raw_template: dict) -> None:
    absent = absent_functions()
    files = [f for f in STATEMACHINES_DIR.glob("*.asl.json") if not missing_functions(f.read_text(), absent)]
    assert len(resources(raw_template, "AWS::StepFunctions::StateMachine")) == len(files)


def test_a_definition_naming_a_function_without_its_handler_yet_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "route-job.asl.json").write_text(json.dumps(DEFINITION))
    template, _ = _orchestration(tmp_path, absent={"router"})
    template.resource_count_is("AWS::StepFunctions::StateMachine", 0)
    assert missing_functions(json.dumps(DEFINITION), {"router", "batch"}) == ["router"]


def _orchestration(
    directory: Path, *, outdir: Path | None = None, nag: bool = False, absent: frozenset[str] | set[str] = frozenset()
) -> tuple[Template, dict]:
    app = App(context=cdk_json_context(), outdir=str(outdir) if outdir else None)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    stack = Stack(app, "OrchestrationStack", env={"region": "us-east-1"})
    config = GatewayConfig()
    encryption = Encryption(stack, "Encryption", config=config)
    storage = Storage(stack, "Storage", config=config, key=encryption.data_key)
    router = lambda_.Function(
        stack,
        "Router",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
    )
    alias = lambda_.Alias(stack, "RouterLive", alias_name="live", version=router.current_version)
    Orchestration(
        stack,
        "Orchestration",
        config=config,
        logs_key=encryption.logs_key,
        aliases={"router": alias},
        resources=SharedResources(
            config=config,
            tables=storage.tables,
            buckets=storage.buckets,
            queues=Messaging(stack, "Messaging", key=encryption.data_key).queues,
        ),
        directory=directory,
        absent=absent,
    )
    if nag:
        with contextlib.suppress(RuntimeError):  # findings of the stand-in router are expected
            app.synth()
        raw = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
        return Template.from_json(raw), raw
    template = Template.from_stack(stack)
    return template, template.to_json()


def test_an_empty_folder_creates_nothing(tmp_path: Path) -> None:
    template, _ = _orchestration(tmp_path)
    template.resource_count_is("AWS::StepFunctions::StateMachine", 0)


def test_a_definition_file_becomes_an_inline_logged_traced_state_machine(tmp_path: Path) -> None:
    (tmp_path / "route-job.asl.json").write_text(json.dumps(DEFINITION))
    template, raw = _orchestration(tmp_path)
    (machine,) = resources(raw, "AWS::StepFunctions::StateMachine").values()
    p = props(machine)
    # Inline, never an S3 location: moto's CloudFormation needs the definition in the template.
    assert "DefinitionS3Location" not in p
    assert json.loads(p["DefinitionString"]) == DEFINITION
    assert set(p["DefinitionSubstitutions"]) == {"FunctionArn_router", "TableName_jobs"}
    assert logical_id_of(p["DefinitionSubstitutions"]["FunctionArn_router"]).startswith("RouterLive")
    assert p["TracingConfiguration"] == {"Enabled": True}
    logging = p["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    log_group_id = logical_id_of(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert "KmsKeyId" in props(raw["Resources"][log_group_id])


def test_a_state_machine_may_invoke_only_the_functions_and_tables_it_names(tmp_path: Path) -> None:
    (tmp_path / "route-job.asl.json").write_text(json.dumps(DEFINITION))
    _, raw = _orchestration(tmp_path)
    statements = [
        s for p in resources(raw, "AWS::IAM::Policy").values() for s in props(p)["PolicyDocument"]["Statement"]
    ]
    invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
    assert [logical_id_of(r) for s in invoke for r in as_list(s["Resource"])] == [
        next(k for k in resources(raw, "AWS::Lambda::Alias"))
    ]
    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    targets = {logical_id_of(r) for s in dynamo for r in as_list(s["Resource"]) if logical_id_of(r)}
    assert targets == {next(k for k in resources(raw, "AWS::DynamoDB::Table") if k.startswith("StorageJobsTable"))}


def test_an_unknown_placeholder_is_refused_at_synth(tmp_path: Path) -> None:
    (tmp_path / "bad.asl.json").write_text(json.dumps({**DEFINITION, "Comment": "${FunctionArn_nosuch}"}))
    with pytest.raises(ValueError, match="FunctionArn_nosuch"):
        _orchestration(tmp_path)


def test_invalid_json_is_refused_at_synth(tmp_path: Path) -> None:
    (tmp_path / "broken.asl.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        _orchestration(tmp_path)


def test_a_state_machine_passes_cdk_nag(tmp_path: Path) -> None:
    definitions = tmp_path / "statemachines"
    definitions.mkdir()
    (definitions / "route-job.asl.json").write_text(json.dumps(ALL_PLACEHOLDERS))
    outdir = tmp_path / "cdk.out"
    _orchestration(definitions, outdir=outdir, nag=True)
    report = json.loads((outdir / "validation-report.json").read_text())
    findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
        if construct["constructPath"].startswith("OrchestrationStack/Orchestration/")
    ]
    assert findings == []


DISTRIBUTED = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Route",
                "States": {
                    "Route": {k: v for k, v in DEFINITION["States"]["Route"].items() if k != "Next"} | {"End": True}
                },
            },
            "End": True,
        }
    },
}


def test_a_distributed_map_gets_a_fixed_name_and_may_run_only_its_own_child_executions(tmp_path: Path) -> None:
    definitions = tmp_path / "statemachines"
    definitions.mkdir()
    (definitions / "fan-out.asl.json").write_text(json.dumps(DISTRIBUTED))
    outdir = tmp_path / "cdk.out"
    _, raw = _orchestration(definitions, outdir=outdir, nag=True)
    (machine,) = resources(raw, "AWS::StepFunctions::StateMachine").values()
    assert props(machine)["StateMachineName"] == "deepseek-gateway-dev-fan-out"
    statements = [
        s for p in resources(raw, "AWS::IAM::Policy").values() for s in props(p)["PolicyDocument"]["Statement"]
        if as_list(s["Action"])[0].startswith("states:")
    ]
    assert {tuple(sorted(as_list(s["Action"]))): json.dumps(s["Resource"]).split(":")[-1] for s in statements} == {
        ("states:StartExecution",): 'deepseek-gateway-dev-fan-out"]]}',
        ("states:DescribeExecution", "states:StopExecution"): 'deepseek-gateway-dev-fan-out/*"]]}',
    }
    report = json.loads((outdir / "validation-report.json").read_text())
    assert not [
        violation["ruleName"]
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
        if construct["constructPath"].startswith("OrchestrationStack/Orchestration/")
    ]
