"""Shared by the infra tests: paths, the test context, and readers of synthesized templates.

(Tests import this, never `conftest`: several test folders have a conftest module.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "infra" / "cdk"

from gateway_cdk.app_factory import cdk_json_context  # noqa: E402 - the package comes from pyproject

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}
PROD_ALARM_EMAIL = "oncall@example.com"


def context_with(**stage_overrides: dict) -> dict:
    """cdk.json's context, bundling skipped, with extra per-stage overrides merged in."""
    stages = {name: dict(values) for name, values in cdk_json_context().get("stages", {}).items()}
    for stage, overrides in stage_overrides.items():
        stages.setdefault(stage, {}).update(overrides)
    return {**SKIP_BUNDLING, "stages": stages}


# The only actions allowed on Resource "*": X-Ray's, which have no resource-level permissions, and
# SNS publishing, alone in its own statement, because an SMS to a phone number has no resource ARN.
XRAY_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
SMS_ACTIONS = frozenset({"sns:Publish"})
# A state machine's role: Step Functions log delivery and X-Ray, none of which has resource-level permissions.
STATE_MACHINE_ACTIONS = frozenset({
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
})


def offline_env(tmp_path: Path, context: dict) -> dict[str, str]:
    """The environment of an offline synthesis: no AWS credentials, and a `docker` that records calls."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_"))}
    # A `docker` that records being called: the synthesis must never reach for it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\ntouch {tmp_path / 'docker-was-called'}\nexit 1\n")
    docker.chmod(0o755)
    env.update(
        {
            # No credentials anywhere.
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "CDK_OUTDIR": str(tmp_path / "cdk.out"),
            "CDK_CONTEXT_JSON": json.dumps(context),
        }
    )
    return env


def resources(raw: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == resource_type}


def props(resource: dict) -> dict:
    return resource.get("Properties", {})


def logical_id_of(value: Any) -> str | None:
    """The logical id a `Ref` / `Fn::GetAtt` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def policy_statements_of_role(raw: dict, role_id: str) -> list[dict]:
    """Every statement of identity policies attached to the role (inline and AWS::IAM::Policy)."""
    statements: list[dict] = []
    role = raw["Resources"][role_id]
    for policy in props(role).get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    for policy in resources(raw, "AWS::IAM::Policy").values():
        if any(logical_id_of(r) == role_id for r in props(policy).get("Roles", [])):
            statements += as_list(props(policy)["PolicyDocument"]["Statement"])
    return statements


def all_identity_statements(raw: dict) -> Iterator[tuple[str, dict]]:
    for policy_id, policy in resources(raw, "AWS::IAM::Policy").items():
        for statement in as_list(props(policy)["PolicyDocument"]["Statement"]):
            yield policy_id, statement
    for role_id, role in resources(raw, "AWS::IAM::Role").items():
        for policy in props(role).get("Policies", []):
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                yield role_id, statement


def wildcard_violations(statement: dict) -> list[str]:
    """Why a statement is broader than allowed: Action '*' / 'service:*', or Resource '*' beyond X-Ray, SMS and
    a state machine's log delivery."""
    problems = []
    actions = as_list(statement.get("Action", []))
    for action in actions:
        if action == "*" or (isinstance(action, str) and action.endswith(":*")):
            problems.append(f"action {action!r}")
    if "*" in as_list(statement.get("Resource", [])) and not (
        set(actions) <= XRAY_ACTIONS or set(actions) == SMS_ACTIONS or set(actions) <= STATE_MACHINE_ACTIONS
    ):
        problems.append(f"resource '*' for {sorted(actions)}")
    if "NotAction" in statement or "NotResource" in statement:
        problems.append("NotAction/NotResource")
    return problems


def gateway_functions(raw: dict) -> dict[str, dict]:
    """The gateway's functions (construct `Functions`), without CDK's own (the bucket-notifications handler)."""
    return {k: v for k, v in resources(raw, "AWS::Lambda::Function").items() if k.startswith("Functions")}


def function_role_id(raw: dict, function_logical_prefix: str) -> str:
    """The role logical id of the function whose logical id starts with the prefix (e.g. FunctionsApi)."""
    for logical_id, function in resources(raw, "AWS::Lambda::Function").items():
        if logical_id.startswith(function_logical_prefix):
            return logical_id_of(props(function)["Role"])
    raise AssertionError(f"no function {function_logical_prefix}*")


def only(mapping: dict[str, dict], prefix: str = "") -> tuple[str, dict]:
    matching = [(k, v) for k, v in mapping.items() if k.startswith(prefix)]
    assert len(matching) == 1, f"expected one resource {prefix}*, found {[k for k, _ in matching]}"
    return matching[0]


def nag_findings(report_path: Path) -> set[tuple[str, str]]:
    """(rule, construct path below the stack) for every unacknowledged cdk-nag finding in a report."""
    if not report_path.exists():
        return set()
    report = json.loads(report_path.read_text())
    return {
        (violation["ruleName"], construct["constructPath"].split("/", 1)[1])
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    }
