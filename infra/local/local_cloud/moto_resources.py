"""The template's resources made directly in a moto (in-process or a server), for the profilers, benches and
tests that run one function's code without deploying the whole template: the tables' key schemas, the
buckets' SSE-KMS, the uploads bucket's versioning and notification, a state machine to start."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Literal

ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/batch-workflow"
_KEYS = {
    # Every table of the template but the idempotency one: a partition and a sort key, both strings.
    "pk/sk": ([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
              [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]),
    # Powertools idempotency's table.
    "id": ([{"AttributeName": "id", "KeyType": "HASH"}], [{"AttributeName": "id", "AttributeType": "S"}]),
}


def create_table(dynamodb: Any, name: str, *, key: Literal["pk/sk", "id"] = "pk/sk",
                 ttl_attribute: str | None = None) -> None:
    keys, attributes = _KEYS[key]
    dynamodb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attributes,
                          BillingMode="PAY_PER_REQUEST")
    if ttl_attribute:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True,
                                                                              "AttributeName": ttl_attribute})


def create_encrypted_bucket(s3: Any, name: str, kms_key_id: str, *, versioned: bool = False,
                            bucket_key: bool = False) -> None:
    s3.create_bucket(Bucket=name)
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                                   "KMSMasterKeyID": kms_key_id}}
    if bucket_key:
        rule["BucketKeyEnabled"] = True
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def create_pass_state_machine(sfn: Any, name: str) -> str:
    """A state machine that only passes: what starts an execution can be checked without running one."""
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                    roleArn=ACCOUNT_ROLE)["stateMachineArn"]


def ingestion_resources(region: str, *, uploads: str, results: str, machine: str) -> SimpleNamespace:
    """What the ingestion function reads and writes: the jobs, tenants and idempotency tables, the ingestion
    and notifications queues, the uploads bucket (versioned, notifying the ingestion queue) and the results
    bucket, both under one KMS key, and a state machine. `env` holds the function's variables naming them."""
    import boto3

    s3 = boto3.client("s3", region_name=region)
    dynamodb = boto3.client("dynamodb", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    sfn = boto3.client("stepfunctions", region_name=region)
    kms_key = boto3.client("kms", region_name=region).create_key()["KeyMetadata"]["KeyId"]
    for table in ("jobs", "tenants"):
        create_table(dynamodb, table)
    create_table(dynamodb, "idempotency", key="id")
    ingestion_url = sqs.create_queue(QueueName="ingestion")["QueueUrl"]
    notifications_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    ingestion_arn = sqs.get_queue_attributes(QueueUrl=ingestion_url,
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_encrypted_bucket(s3, uploads, kms_key, versioned=True)
    create_encrypted_bucket(s3, results, kms_key)
    s3.put_bucket_notification_configuration(Bucket=uploads, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": ingestion_arn, "Events": ["s3:ObjectCreated:*"]}]})
    machine_arn = create_pass_state_machine(sfn, machine)
    env = {"JOBS_TABLE_NAME": "jobs", "TENANTS_TABLE_NAME": "tenants", "IDEMPOTENCY_TABLE_NAME": "idempotency",
           "UPLOADS_BUCKET_NAME": uploads, "RESULTS_BUCKET_NAME": results, "INGESTION_QUEUE_URL": ingestion_url,
           "NOTIFICATIONS_QUEUE_URL": notifications_url, "BATCH_STATE_MACHINE_ARN": machine_arn}
    return SimpleNamespace(s3=s3, dynamodb=dynamodb, sqs=sqs, sfn=sfn, machine=machine_arn,
                           ingestion_url=ingestion_url, notifications_url=notifications_url,
                           ingestion_arn=ingestion_arn, env=env)
