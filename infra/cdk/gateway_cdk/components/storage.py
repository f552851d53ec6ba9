"""DynamoDB tables and S3 buckets.

Tables are `dynamodb.Table` (not TableV2: the local cloud deploys the template into moto, whose
CloudFormation skips `AWS::DynamoDB::GlobalTable`). All are on-demand, KMS-encrypted with the data
key, with point-in-time recovery; prod adds deletion protection and keeps them on stack deletion.

Buckets `uploads` and `results` are KMS-encrypted, versioned, TLS-only, private, and log their
access to a separate access-log bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ..config import GatewayConfig
from .common import removal_policy

_S = dynamodb.AttributeType.STRING


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    description: str = ""


TABLES: tuple[TableSpec, ...] = (
    TableSpec("tenants", "pk", "sk", None, "tenants and their API keys (hashed)"),
    TableSpec("usage", "pk", "sk", "expires_at", "usage and cost records"),
    TableSpec("jobs", "pk", "sk", "expires_at", "asynchronous jobs and batches"),
    TableSpec("cache", "pk", None, "expires_at", "tenant-scoped response cache"),
    # Powertools idempotency defaults: key attribute `id`, TTL attribute `expiration`.
    TableSpec("idempotency", "id", None, "expiration", "Powertools idempotency records"),
    TableSpec("breaker", "provider", None, None, "circuit-breaker state per provider"),
)

BUCKETS: tuple[str, ...] = ("uploads", "results")


def _results_expiry(bucket: str) -> list[s3.LifecycleRule]:
    """The results bucket holds only batches' work chunks (request bodies), which finalize deletes; whatever
    a failed workflow leaves behind expires after the 24 h window and a margin."""
    if bucket != "results":
        return []
    return [s3.LifecycleRule(id="expire-work-chunks", expiration=Duration.days(RESULTS_EXPIRY_DAYS))]


RESULTS_EXPIRY_DAYS = 7


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in TABLES:
            self.tables[spec.name] = dynamodb.Table(
                self,
                f"{spec.name.capitalize()}Table",
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=_S),
                sort_key=dynamodb.Attribute(name=spec.sort_key, type=_S) if spec.sort_key else None,
                time_to_live_attribute=spec.ttl_attribute,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                deletion_protection=config.is_prod,
                removal_policy=removal_policy(config),
            )

        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access logging delivers only to buckets with SSE-S3 (AES256) encryption, so
            # this is the one bucket without the customer key. (cdk-nag raises no finding for it:
            # it recognises the bucket as the log destination, so nothing needs acknowledging.)
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365 if config.is_prod else 90),
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy(config),
        )
        self.buckets: dict[str, s3.Bucket] = {}
        for name in BUCKETS:
            self.buckets[name] = s3.Bucket(
                self,
                f"{name.capitalize()}Bucket",
                encryption=s3.BucketEncryption.KMS,
                encryption_key=key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                enforce_ssl=True,
                versioned=True,
                server_access_logs_bucket=self.access_log_bucket,
                server_access_logs_prefix=f"{name}/",
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="abort-multipart-and-expire-noncurrent",
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                        noncurrent_version_expiration=Duration.days(30),
                    ),
                    *_results_expiry(name),
                ],
                removal_policy=removal_policy(config),
            )
