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
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aws_cdk import Acknowledgment, Validations
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.aliases = aliases
        self.resources = resources
        self.state_machines: dict[str, sfn.StateMachine] = {}
        files = sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
        for path in files:
            name = path.name.removesuffix(SUFFIX)
            self.state_machines[name] = self._state_machine(name, path, logs_key)

    def _state_machine(self, name: str, path: Path, logs_key: kms.IKey) -> sfn.StateMachine:
        text = path.read_text(encoding="utf-8")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        placeholders = sorted(set(PLACEHOLDER_RE.findall(text)))
        substitutions = {placeholder: self._resolve(path, placeholder) for placeholder in placeholders}

        construct_id = _construct_id(name)
        log_group = encrypted_log_group(self, f"{construct_id}Logs", key=logs_key, config=self.config)
        machine = sfn.StateMachine(
            self,
            construct_id,
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions=substitutions or None,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        for placeholder in placeholders:
            self._grant(placeholder, machine)
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
