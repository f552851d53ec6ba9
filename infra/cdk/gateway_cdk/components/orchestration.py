"""Step Functions state machines from `statemachines/*.asl.json`, one per file.

Definitions are inline (`DefinitionBody.from_string`): the local cloud deploys the template into
moto, which needs the definition in the template rather than in S3. ARNs and names are written as
placeholders that CloudFormation substitutes; the placeholder also decides the state machine's
permissions, so a definition gets exactly the access its tasks use:

  ${FunctionArn_<function>}  the function's `live` alias ARN       -> lambda:InvokeFunction on it
  ${TableName_<table>}       a DynamoDB table name                 -> read/write items
  ${QueueUrl_<queue>}        an SQS queue URL                      -> send messages
  ${BucketName_<bucket>}     an S3 bucket name                     -> read/write objects
  ${Stage}                   the stage name

Every state machine logs ALL events (without execution data: inputs carry prompts) to its own
KMS-encrypted log group, and is traced with X-Ray. With no definition files, nothing is created.

A definition that names a function the app knows but that does not exist yet (`absent`: its handler
is not written) is left out, with a note in the synthesis output; any other unknown name is an error.

A definition with a Distributed Map (`"ProcessorConfig": {"Mode": "DISTRIBUTED"}`) runs its iterations
as child executions of itself: its state machine gets a fixed name, `deepseek-gateway-<stage>-<file>`,
so that its role can be allowed to start, describe and stop its own executions without referring to
the state machine (which would be a dependency cycle).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path

from aws_cdk import Acknowledgment, Annotations, Aws, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ..config import GatewayConfig
from ..paths import STATEMACHINES_DIR
from .common import encrypted_log_group
from .grants import KMS_WILDCARDS, SharedResources, acknowledge_bucket_grant, acknowledge_grant_wildcards

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
SUFFIX = ".asl.json"


def missing_functions(text: str, absent: Collection[str]) -> list[str]:
    """The functions of `absent` that a definition's ${FunctionArn_<name>} placeholders name."""
    named = {p.removeprefix("FunctionArn_") for p in PLACEHOLDER_RE.findall(text) if p.startswith("FunctionArn_")}
    return sorted(named & set(absent))


def uses_distributed_map(node: object) -> bool:
    """Whether a definition (or any part of it) has a Map state in DISTRIBUTED mode."""
    if isinstance(node, dict):
        config = node.get("ProcessorConfig")
        if isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED":
            return True
        return any(uses_distributed_map(value) for value in node.values())
    if isinstance(node, list):
        return any(uses_distributed_map(value) for value in node)
    return False


def _construct_id(stem: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", stem) if part)


class Orchestration(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        logs_key: kms.IKey,
        aliases: dict[str, lambda_.IFunction],
        resources: SharedResources,
        directory: Path = STATEMACHINES_DIR,
        absent: Collection[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.aliases = aliases
        self.resources = resources
        self.state_machines: dict[str, sfn.StateMachine] = {}
        self.skipped: dict[str, list[str]] = {}  # definition -> the absent functions it names
        files = sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
        for path in files:
            name = path.name.removesuffix(SUFFIX)
            missing = missing_functions(path.read_text(encoding="utf-8"), absent)
            if missing:
                self.skipped[name] = missing
                Annotations.of(self).add_info(
                    f"statemachines/{path.name} is left out until these functions exist: {', '.join(missing)}"
                )
                continue
            self.state_machines[name] = self._state_machine(name, path, logs_key)

    def _state_machine(self, name: str, path: Path, logs_key: kms.IKey) -> sfn.StateMachine:
        text = path.read_text(encoding="utf-8")
        try:
            definition = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        distributed = uses_distributed_map(definition)
        machine_name = f"deepseek-gateway-{self.config.stage}-{name}" if distributed else None
        placeholders = sorted(set(PLACEHOLDER_RE.findall(text)))
        substitutions = {placeholder: self._resolve(path, placeholder) for placeholder in placeholders}

        construct_id = _construct_id(name)
        log_group = encrypted_log_group(self, f"{construct_id}Logs", key=logs_key, config=self.config)
        machine = sfn.StateMachine(
            self,
            construct_id,
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions=substitutions or None,
            state_machine_name=machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        for placeholder in placeholders:
            self._grant(placeholder, machine)
        if machine_name is not None:
            self._grant_child_executions(machine, machine_name)
        Validations.of(machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Step Functions log delivery (logs:CreateLogDelivery, GetLogDelivery, "
                "UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
                "DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, "
                "PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) support no "
                "resource-level permissions.",
            )
        )
        return machine

    @staticmethod
    def _grant_child_executions(machine: sfn.StateMachine, machine_name: str) -> None:
        """A Distributed Map starts child executions of its own state machine and watches them."""
        machine_arn = f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:{machine_name}"
        executions = f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:{machine_name}/*"
        machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn]))
        machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions])
        )
        Validations.of(machine).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{child_executions_finding(machine_name)}]",
                reason="A Distributed Map describes and stops the child executions it starts; their ARNs "
                "(execution:<this state machine>/<map run>:<id>) are only known at run time, and the "
                "pattern covers executions of this one state machine.",
            )
        )

    def _resolve(self, path: Path, placeholder: str) -> str:
        kind, _, name = placeholder.partition("_")
        r = self.resources
        try:
            if placeholder == "Stage":
                return self.config.stage
            if kind == "FunctionArn" and name in self.aliases:
                return self.aliases[name].function_arn
            if kind == "TableName":
                return r.table(name).table_name
            if kind == "QueueUrl":
                return r.queue(name).queue.queue_url
            if kind == "BucketName":
                return r.bucket(name).bucket_name
        except KeyError as exc:
            raise ValueError(f"{path}: placeholder ${{{placeholder}}}: {exc.args[0]}") from None
        raise ValueError(
            f"{path}: unknown placeholder ${{{placeholder}}} (functions: {', '.join(sorted(self.aliases))})"
        )

    def _grant(self, placeholder: str, machine: sfn.StateMachine) -> None:
        kind, _, name = placeholder.partition("_")
        if kind == "FunctionArn":
            self.aliases[name].grant_invoke(machine)
        elif kind == "TableName":
            self.resources.table(name).grant_read_write_data(machine)
            acknowledge_grant_wildcards(machine.role, actions=KMS_WILDCARDS, what=f"read/write on the {name} table")
        elif kind == "QueueUrl":
            self.resources.queue(name).queue.grant_send_messages(machine)
            acknowledge_grant_wildcards(machine.role, actions=KMS_WILDCARDS, what=f"sending to the {name} queue")
        elif kind == "BucketName":
            bucket = self.resources.bucket(name)
            bucket.grant_read_write(machine)
            acknowledge_bucket_grant(machine.role, bucket, name, write=True)


def child_executions_finding(machine_name: str) -> str:
    """How cdk-nag writes the ARN pattern of a state machine's executions (`_grant_child_executions`)."""
    return f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{machine_name}/*"
