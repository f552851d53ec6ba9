"""Deploys the synthesized template into moto the way `cdk deploy` deploys it into AWS.

1. "bootstrap" the local account (the CDK assets bucket and the bootstrap version parameter);
2. publish the file assets the template points at (function code, layers) to that bucket;
3. create the stack through moto's CloudFormation;
4. fill in, from the same template, the resources moto's CloudFormation skips (secrets, Lambda
   aliases, S3 bucket notifications) and report the rest (alarms, dashboards, CodeDeploy) as
   having no local equivalent.
"""

from __future__ import annotations

import copy
import io
import json
import re
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_cloud.errors import LocalCloudError
from local_cloud.functions import FunctionSpec
from local_cloud.template import ACCOUNT, Resolver, Template

# Emulated by the local cloud from the template instead of deployed (API Gateway's runtime parts).
EMULATED = {
    "AWS::ApiGateway::Stage", "AWS::ApiGateway::Authorizer", "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::UsagePlanKey", "AWS::ApiGateway::Account",
    "AWS::Lambda::Alias", "AWS::SecretsManager::Secret", "Custom::S3BucketNotifications",
}
# Exist only in AWS; nothing on this machine would use them.
NOT_LOCAL = {
    "AWS::CloudWatch::Alarm", "AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup",
    "AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription", "AWS::Lambda::Permission", "AWS::CDK::Metadata",
    "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolResourceServer",
    "AWS::Cognito::UserPoolDomain", "AWS::Lambda::EventInvokeConfig", "AWS::IAM::Policy",
}
MAX_ASSET_ZIP_BYTES = 20 * 1024 * 1024


class DeployError(LocalCloudError):
    """The template could not be deployed locally; the message names the resource and the reason."""


@dataclass
class Deployment:
    template: Template
    stack_name: str
    region: str
    physical: dict[str, str]
    secret_arns: dict[str, str] = field(default_factory=dict)
    alias_target: dict[str, str] = field(default_factory=dict)  # alias logical id → function logical id
    skipped: dict[str, str] = field(default_factory=dict)  # logical id → type, for the report
    clients: Any = None

    def resolver(self) -> Resolver:
        return Resolver(self.region, self.stack_name, self.ref, self.attr)

    def ref(self, logical_id: str) -> str:
        if logical_id in self.secret_arns:
            return self.secret_arns[logical_id]
        if logical_id in self.alias_target:
            return f"{self.attr(self.alias_target[logical_id], 'Arn')}:live"
        if logical_id in self.physical:
            return self.physical[logical_id]
        if logical_id in self.template.body.get("Parameters", {}):
            return str(self.template.body["Parameters"][logical_id].get("Default", ""))
        return logical_id

    def attr(self, logical_id: str, name: str) -> str:
        kind = self.template.type_of(logical_id)
        physical = self.ref(logical_id)
        region, arn = self.region, f"arn:aws:{{}}:{self.region}:{ACCOUNT}:{{}}"
        if name in {"Arn", "TopicArn", "StateMachineArn"}:
            return {
                "AWS::Lambda::Function": arn.format("lambda", f"function:{physical}"),
                "AWS::SQS::Queue": arn.format("sqs", physical.rsplit("/", 1)[-1]),
                "AWS::DynamoDB::Table": arn.format("dynamodb", f"table/{physical}"),
                "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
                "AWS::KMS::Key": arn.format("kms", f"key/{physical}"),
                "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
                "AWS::Lambda::LayerVersion": physical,
            }.get(kind or "", physical)
        if name == "QueueName":
            return physical.rsplit("/", 1)[-1]
        if name == "QueueUrl":
            return physical
        if name in {"RootResourceId", "Name"}:
            return physical
        if name == "StreamArn":
            return arn.format("dynamodb", f"table/{physical}/stream/local")
        if name in {"DomainName", "RegionalDomainName"}:
            return f"{physical}.s3.{region}.amazonaws.com"
        return physical

    def function_specs(self) -> list[FunctionSpec]:
        resolve = self.resolver()
        aliases: dict[str, list[str]] = {}
        for alias_id, function_id in self.alias_target.items():
            aliases.setdefault(function_id, []).append(alias_id)
        specs = []
        for logical_id, resource in self.template.of_type("AWS::Lambda::Function"):
            props = resource["Properties"]
            if deploy_time_only(resource):
                continue
            asset_path = (resource.get("Metadata") or {}).get("aws:asset:path")
            if not asset_path:
                raise DeployError(f"function {logical_id} has no aws:asset:path metadata to find its code")
            code_dir = Path(asset_path)
            if not code_dir.is_absolute():
                code_dir = self.template.path.parent / code_dir
            variables = (props.get("Environment") or {}).get("Variables") or {}
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    name=self.physical.get(logical_id, logical_id),
                    code_dir=code_dir.resolve(),
                    handler=props["Handler"],
                    environment={k: str(resolve(v)) for k, v in variables.items()},
                    timeout_s=int(props.get("Timeout", 3)),
                    memory_mb=int(props.get("MemorySize", 128)),
                    aliases=aliases.get(logical_id, []),
                )
            )
        return specs


def deploy_time_only(resource: dict[str, Any]) -> bool:
    """A function CDK adds to run at deploy time only, with inline code (e.g. the S3 bucket notifications
    handler behind `Custom::S3BucketNotifications`): the local cloud does its work itself while deploying."""
    code = (resource.get("Properties") or {}).get("Code") or {}
    return "ZipFile" in code and not (resource.get("Metadata") or {}).get("aws:asset:path")


def _zip_dir(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        total = 0
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                total += file.stat().st_size
                if total > MAX_ASSET_ZIP_BYTES:
                    break  # moto only stores the code; the local cloud runs it from source
                archive.write(file, file.relative_to(path))
        if not archive.namelist():
            archive.writestr("EMPTY", "")
    return buffer.getvalue()


def _publish_assets(template: Template, s3: Any, ssm: Any, region: str) -> None:
    ssm.put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String", Overwrite=True)
    manifest_path = template.path.with_name(template.path.name.replace(".template.json", ".assets.json"))
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text())
    created: set[str] = set()
    for asset in manifest.get("files", {}).values():
        source = Path(asset["source"]["path"])
        if not source.is_absolute():
            source = manifest_path.parent / source
        for destination in asset["destinations"].values():
            bucket = destination["bucketName"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", region)
            if bucket not in created:
                if region == "us-east-1":
                    s3.create_bucket(Bucket=bucket)
                else:
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
                created.add(bucket)
            data = _zip_dir(source) if source.is_dir() else source.read_bytes() if source.exists() else b""
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=data)


def for_moto(body: dict[str, Any]) -> dict[str, Any]:
    """The template as moto 5.2 can parse it: transport fixes only, no resource added; the custom
    resources the local cloud fills itself (bucket notifications) are left out of moto's stack.

    - AWS::KMS::Key: moto's CloudFormation reads tags as `TagKey`/`TagValue` (the KMS API's names)
      instead of CloudFormation's `Key`/`Value`, and fails on the latter.
    - AWS::Lambda::Alias is not in moto's CloudFormation: a `Ref` to an alias (a Permission or an event
      source mapping naming the `live` alias) would resolve to nothing, so it names the function.
    - AWS::StepFunctions::StateMachine: moto ignores `DefinitionSubstitutions`, so the values are
      joined into `DefinitionString` here (an alias's ARN written out as `<function ARN>:<alias>`).
      In IAM policies and EventBridge targets (which moto checks for ARNs) the alias's ARN is written out.
    - A `Ref`/`Fn::GetAtt` to any other type moto skips (alarms, secrets, ...) fails the whole stack;
      it becomes a placeholder ARN. The local cloud resolves those values itself, from the original
      template, wherever they matter (functions' environments, API Gateway).
    """
    from moto.cloudformation.parsing import get_model_map  # lazy: only the local cloud deploys

    supported = set(get_model_map())
    body = copy.deepcopy(body)
    alias_function = {
        logical_id: resource["Properties"]["FunctionName"]
        for logical_id, resource in body.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Lambda::Alias"
    }

    def retarget(value: Any, arn: bool = False) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in alias_function:
                if arn:  # a policy's Resource or a rule's target must be an ARN: the alias's, written out
                    return _alias_arn(body["Resources"][value["Ref"]])
                return copy.deepcopy(alias_function[value["Ref"]])
            target = value.get("Ref") if set(value) == {"Ref"} else None
            if set(value) == {"Fn::GetAtt"}:
                ref = value["Fn::GetAtt"]
                target = ref[0] if isinstance(ref, list) else str(ref).split(".")[0]
            kind = body["Resources"].get(target, {}).get("Type") if isinstance(target, str) else None
            if kind and kind not in supported:
                return f"arn:aws:local:::{target}"
            return {k: retarget(v, arn) for k, v in value.items()}
        if isinstance(value, list):
            return [retarget(v, arn) for v in value]
        return value

    _drop_custom_resources_filled_locally(body)
    for resource in body.get("Resources", {}).values():
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            _substitute_definition(resource.get("Properties") or {}, body["Resources"])
    body["Resources"] = {
        logical_id: retarget(resource, arn=resource.get("Type") in _POLICY_TYPES)
        for logical_id, resource in body.get("Resources", {}).items()
    }
    for resource in body.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::KMS::Key" and isinstance(props.get("Tags"), list):
            props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
    return body


def _drop_custom_resources_filled_locally(body: dict[str, Any]) -> None:
    """moto's CloudFormation runs a custom resource by invoking its handler and then waits for the
    handler's callback, which a deploy-time helper (CDK's bucket notifications handler) never sends
    here: the stack would stay CREATE_IN_PROGRESS. The local cloud does their work itself (`_fill_gaps`)."""
    resources = body.get("Resources", {})
    dropped = {logical_id for logical_id, r in resources.items() if r.get("Type") in _FILLED_CUSTOM_RESOURCES}
    for logical_id in dropped:
        del resources[logical_id]
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in dropped:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in dropped]


_FILLED_CUSTOM_RESOURCES = {"Custom::S3BucketNotifications"}
# Where moto checks that an alias reference is an ARN: IAM policies' resources, EventBridge targets.
_POLICY_TYPES = {"AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::Events::Rule"}


def _alias_arn(alias: dict[str, Any]) -> dict[str, Any]:
    function = alias["Properties"]["FunctionName"]["Ref"]
    return {"Fn::Join": [":", [{"Fn::GetAtt": [function, "Arn"]}, alias["Properties"].get("Name", "live")]]}


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _substitute_definition(props: dict[str, Any], resources: dict[str, Any]) -> None:
    substitutions = props.pop("DefinitionSubstitutions", None)
    definition = props.get("DefinitionString")
    if not substitutions or not isinstance(definition, str):
        return

    def value_of(name: str) -> Any:
        value = substitutions[name]
        alias = resources.get(value.get("Ref"), {}) if isinstance(value, dict) and set(value) == {"Ref"} else {}
        if alias.get("Type") == "AWS::Lambda::Alias":
            return _alias_arn(alias)
        return value

    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(definition):
        if match.group(1) not in substitutions:
            continue
        parts += [definition[position:match.start()], value_of(match.group(1))]
        position = match.end()
    parts.append(definition[position:])
    props["DefinitionString"] = {"Fn::Join": ["", [p for p in parts if p != ""]]}


def deploy(template: Template, stack_name: str, region: str, session: Any) -> Deployment:
    cloudformation = session.client("cloudformation")
    _publish_assets(template, session.client("s3"), session.client("ssm"), region)
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(for_moto(template.body)),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as exc:  # botocore's ClientError, or a moto parsing error surfaced as one
        raise DeployError(f"moto's CloudFormation refused the template: {exc}") from exc
    status = _wait(cloudformation, stack_name)
    if status != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if "FAILED" in e.get("ResourceStatus", "")]
        raise DeployError(f"stack {stack_name} ended {status}: {'; '.join(reasons) or 'no reason given'}")
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    # moto lists some skipped resources without a logical id; those are filled in or reported below.
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources
                if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
    deployment = Deployment(template, stack_name, region, physical)
    _fill_gaps(deployment, session)
    return deployment


def _wait(cloudformation: Any, stack_name: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _fill_gaps(deployment: Deployment, session: Any) -> None:
    template = deployment.template
    resolve = deployment.resolver()
    secretsmanager = session.client("secretsmanager")
    for logical_id, resource in template.of_type("AWS::SecretsManager::Secret"):
        props = resource.get("Properties", {})
        name = resolve(props.get("Name")) or f"{deployment.stack_name}-{logical_id}"
        kwargs: dict[str, Any] = {"Name": name, "SecretString": secrets.token_urlsafe(24)}
        if props.get("KmsKeyId"):
            kwargs["KmsKeyId"] = str(resolve(props["KmsKeyId"]))
        deployment.secret_arns[logical_id] = secretsmanager.create_secret(**kwargs)["ARN"]
    lambda_client = session.client("lambda")
    for logical_id, resource in template.of_type("AWS::Lambda::Alias"):
        function_ref = resource["Properties"]["FunctionName"]
        function_id = function_ref.get("Ref") if isinstance(function_ref, dict) else None
        if function_id:
            deployment.alias_target[logical_id] = function_id
            # Step Functions tasks and event sources name the alias's ARN (`function:<name>:live`):
            # moto must know the alias to resolve it to the function (and so to its sandboxes).
            name = deployment.physical.get(function_id)
            if name:
                version = lambda_client.publish_version(FunctionName=name)["Version"]
                lambda_client.create_alias(FunctionName=name, Name=resource["Properties"].get("Name", "live"),
                                           FunctionVersion=version)
    s3 = session.client("s3")
    for _, resource in template.of_type("Custom::S3BucketNotifications"):
        props = resolve(resource.get("Properties", {}))
        configuration = {k: v for k, v in props["NotificationConfiguration"].items() if v}
        s3.put_bucket_notification_configuration(
            Bucket=props["BucketName"], NotificationConfiguration=configuration
        )
    for logical_id, resource in template.resources.items():
        if logical_id not in deployment.physical and logical_id not in deployment.secret_arns:
            deployment.skipped[logical_id] = resource["Type"]
