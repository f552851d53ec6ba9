"""Grants: what a function may touch, one line each in its spec.

A grant gives the function's role least-privilege access to one resource and sets the environment
variable that tells the code where that resource is, so permission and configuration never drift
apart. For example `read_provider_secret("deepseek")` allows GetSecretValue on that one secret and
sets DEEPSEEK_SECRET_ARN and DEEPSEEK_BASE_URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import GatewayConfig

if TYPE_CHECKING:
    from .messaging import WorkQueue


@dataclass
class SharedResources:
    """The resources functions may be granted access to, by name."""

    config: GatewayConfig
    tables: dict[str, dynamodb.Table] = field(default_factory=dict)
    buckets: dict[str, s3.Bucket] = field(default_factory=dict)
    queues: dict[str, WorkQueue] = field(default_factory=dict)
    secrets: dict[str, secretsmanager.Secret] = field(default_factory=dict)

    def _get(self, kind: str, registry: dict, name: str):
        if name not in registry:
            raise KeyError(f"no {kind} named {name!r}; known: {', '.join(sorted(registry)) or 'none'}")
        return registry[name]

    def table(self, name: str) -> dynamodb.Table:
        return self._get("table", self.tables, name)

    def bucket(self, name: str) -> s3.Bucket:
        return self._get("bucket", self.buckets, name)

    def queue(self, name: str) -> WorkQueue:
        return self._get("queue", self.queues, name)

    def secret(self, name: str) -> secretsmanager.Secret:
        return self._get("secret", self.secrets, name)


Grant = Callable[[SharedResources, lambda_.Function], None]

# The wildcard actions CDK's grants use on a customer-managed key. Each is scoped to the one key.
KMS_WILDCARDS = ("kms:ReEncrypt*", "kms:GenerateDataKey*")


def acknowledge_grant_wildcards(
    grantee: Construct, *, actions: tuple[str, ...] = (), resources: tuple[str, ...] = (), what: str
) -> None:
    """Acknowledge the wildcard findings (AwsSolutions-IAM5) that a CDK grant's policy carries.

    Each finding names its action family or resource pattern; the reason says which grant made it.
    """
    findings = [f"Action::{action}" for action in actions] + [f"Resource::{resource}" for resource in resources]
    Validations.of(grantee).acknowledge(
        *(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[{finding}]",
                reason=f"{what}: the wildcard stays within that one resource (CDK's grant for it, "
                "e.g. kms:GenerateDataKey* covers the key's data-key variants on this key only).",
            )
            for finding in findings
        )
    )


def arn_ref(resource: Construct, attribute: str = "Arn") -> str:
    """How cdk-nag writes a reference to `resource`'s ARN in a finding: `<LogicalId.Arn>`."""
    stack = Stack.of(resource)
    default_child = resource.node.default_child
    logical_id = stack.resolve(stack.get_logical_id(default_child))  # type: ignore[arg-type]
    return f"<{logical_id}.{attribute}>"


def _env_name(name: str, suffix: str) -> str:
    return f"{name.upper()}_{suffix}"


def read_table(name: str) -> Grant:
    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        table = resources.table(name)
        table.grant_read_data(fn)
        fn.add_environment(_env_name(name, "TABLE_NAME"), table.table_name)

    return apply


def read_write_table(name: str) -> Grant:
    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        table = resources.table(name)
        table.grant_read_write_data(fn)
        acknowledge_grant_wildcards(fn.role, actions=KMS_WILDCARDS, what=f"read/write on the {name} table")
        fn.add_environment(_env_name(name, "TABLE_NAME"), table.table_name)

    return apply


def read_provider_secret(provider: str) -> Grant:
    """GetSecretValue on one provider's secret, plus where that provider lives."""

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        secret = resources.secret(provider)
        secret.grant_read(fn)
        fn.add_environment(_env_name(provider, "SECRET_ARN"), secret.secret_arn)
        fn.add_environment(_env_name(provider, "BASE_URL"), getattr(resources.config, f"{provider}_base_url"))

    return apply


def name_provider_secret(provider: str) -> Grant:
    """Only the ARN of a provider's secret, without the right to read it: the provider counts as configured.

    (The batch router filters a model's chain by configured providers and never calls one.)
    """

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        fn.add_environment(_env_name(provider, "SECRET_ARN"), resources.secret(provider).secret_arn)

    return apply


def read_secret(name: str, env_var: str) -> Grant:
    """GetSecretValue on one secret of SharedResources.secrets; its ARN in `env_var`."""

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        secret = resources.secret(name)
        secret.grant_read(fn)
        fn.add_environment(env_var, secret.secret_arn)

    return apply


def send_email() -> Grant:
    """ses:SendEmail from the configured sender only (context `ses_sender`), which sets SES_SENDER.

    Without a sender nothing is granted and e-mail is not delivered. The identity is `identity/*`
    because the sender may be verified through its domain's identity or its own address; the
    ses:FromAddress condition is what binds the permission to the one sender.
    """

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        sender = resources.config.ses_sender
        if sender is None:
            return
        # Pseudo parameters, not the stack's region: the finding (and its acknowledgment) stays the same.
        identities = f"arn:{Aws.PARTITION}:ses:{Aws.REGION}:{Aws.ACCOUNT_ID}:identity/*"
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[identities],
                conditions={"StringEquals": {"ses:FromAddress": sender}},
            )
        )
        Validations.of(fn.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{SES_IDENTITIES_FINDING}]",
                reason=f"ses:SendEmail on any identity of this account and region, but only with "
                f"ses:FromAddress = {sender}: the sender may be verified as an address or through its "
                "domain, and the condition binds the permission to that one sender.",
            )
        )
        fn.add_environment("SES_SENDER", sender)

    return apply


# How cdk-nag writes the SES identities ARN of `send_email`.
SES_IDENTITIES_FINDING = "arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*"


def publish_sms() -> Grant:
    """sns:Publish for SMS to phone numbers, in its own policy so that its `*` is acknowledged alone.

    A phone number has no ARN: SNS checks direct publishing to a number against Resource "*".
    """

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        assert fn.role is not None
        policy = iam.Policy(
            fn.role,
            "SmsPolicy",
            statements=[iam.PolicyStatement(actions=["sns:Publish"], resources=["*"])],
            roles=[fn.role],
        )
        fn.node.add_dependency(policy)
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="sns:Publish to a phone number (SMS notifications) has no resource ARN to name: "
                "SNS authorizes direct SMS publishing against Resource '*'. The policy holds only that action.",
            )
        )

    return apply


def send_to_queue(name: str) -> Grant:
    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        queue = resources.queue(name).queue
        queue.grant_send_messages(fn)
        acknowledge_grant_wildcards(fn.role, actions=KMS_WILDCARDS, what=f"sending to the {name} queue")
        fn.add_environment(_env_name(name, "QUEUE_URL"), queue.queue_url)

    return apply


def read_bucket(name: str) -> Grant:
    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        bucket = resources.bucket(name)
        bucket.grant_read(fn)
        acknowledge_bucket_grant(fn.role, bucket, name, write=False)
        fn.add_environment(_env_name(name, "BUCKET_NAME"), bucket.bucket_name)

    return apply


def write_bucket(name: str) -> Grant:
    """Put objects (no reading, listing or deleting) into one bucket."""

    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        bucket = resources.bucket(name)
        bucket.grant_put(fn)
        acknowledge_grant_wildcards(
            fn.role,
            actions=("s3:Abort*", *KMS_WILDCARDS),
            resources=(f"{arn_ref(bucket)}/*",),
            what=f"writing objects into the {name} bucket",
        )
        fn.add_environment(_env_name(name, "BUCKET_NAME"), bucket.bucket_name)

    return apply


def read_write_bucket(name: str) -> Grant:
    def apply(resources: SharedResources, fn: lambda_.Function) -> None:
        bucket = resources.bucket(name)
        bucket.grant_read_write(fn)
        acknowledge_bucket_grant(fn.role, bucket, name, write=True)
        fn.add_environment(_env_name(name, "BUCKET_NAME"), bucket.bucket_name)

    return apply


def acknowledge_bucket_grant(grantee: Construct, bucket: s3.Bucket, name: str, *, write: bool) -> None:
    """The findings of CDK's bucket grants: object wildcards under that one bucket, and its key."""
    actions = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]
    if write:
        actions += ["s3:DeleteObject*", "s3:Abort*", *KMS_WILDCARDS]
    acknowledge_grant_wildcards(
        grantee,
        actions=tuple(actions),
        resources=(f"{arn_ref(bucket)}/*",),
        what=f"{'read/write' if write else 'read'} on the objects of the {name} bucket",
    )
