"""KMS customer keys: one for data at rest, one for logs, one for the ingestion queue. All rotate yearly.

- `data_key` encrypts tables, buckets, queues, secrets and the alarm topic. CloudWatch may use it so
  alarms can publish to the encrypted topic.
- `ingestion_key` encrypts the ingestion queue (and its DLQ), to which S3 sends the uploads bucket's
  event notifications: S3 must be allowed to use that key, and the key policy that allows it names the
  uploads bucket. With the data key, which encrypts that bucket, key and bucket would refer to each
  other (a dependency cycle); a key of its own also keeps S3's permission off the data key.
- `logs_key` encrypts every CloudWatch log group (functions, API access logs, state machines). Its
  key policy lets the CloudWatch Logs service use it, only for log groups of this account and region.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ..config import GatewayConfig


class Encryption(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY

        self.data_key = kms.Key(
            self,
            "DataKey",
            description=f"DeepSeek Gateway {config.stage}: tables, buckets, queues, secrets, topics",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.data_key.add_alias(f"alias/deepseek-gateway/{config.stage}/data")
        # CloudWatch alarms publish to the KMS-encrypted alarm topic.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )

        self.ingestion_key = kms.Key(
            self,
            "IngestionKey",
            description=f"DeepSeek Gateway {config.stage}: the ingestion queue (S3 event notifications)",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.ingestion_key.add_alias(f"alias/deepseek-gateway/{config.stage}/ingestion")

        self.logs_key = kms.Key(
            self,
            "LogsKey",
            description=f"DeepSeek Gateway {config.stage}: CloudWatch log groups",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.logs_key.add_alias(f"alias/deepseek-gateway/{config.stage}/logs")
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsToUseTheKey",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
