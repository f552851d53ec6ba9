"""Encryption: customer keys with rotation, used by every table, bucket, queue, secret, topic, log group."""

from __future__ import annotations

from tests.infra.infra_helpers import as_list, logical_id_of, only, props, resources


def _key_id(raw: dict, prefix: str) -> str:
    return only(resources(raw, "AWS::KMS::Key"), prefix)[0]


def test_customer_keys_rotate(raw_template: dict) -> None:
    keys = resources(raw_template, "AWS::KMS::Key")
    assert len(keys) == 3  # data, logs, ingestion queue
    assert all(props(key)["EnableKeyRotation"] is True for key in keys.values())


def test_tables_are_encrypted_with_the_data_key(raw_template: dict) -> None:
    data_key = _key_id(raw_template, "EncryptionDataKey")
    tables = resources(raw_template, "AWS::DynamoDB::Table")
    assert tables
    for table in tables.values():
        sse = props(table)["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
        assert logical_id_of(sse["KMSMasterKeyId"]) == data_key


def test_buckets_are_encrypted_with_the_data_key_except_the_access_log_bucket(raw_template: dict) -> None:
    data_key = _key_id(raw_template, "EncryptionDataKey")
    for logical_id, bucket in resources(raw_template, "AWS::S3::Bucket").items():
        rule = props(bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        default = rule["ServerSideEncryptionByDefault"]
        if logical_id.startswith("StorageAccessLogBucket"):
            # S3 server access logs can only be delivered to an SSE-S3 bucket.
            assert default == {"SSEAlgorithm": "AES256"}
        else:
            assert default["SSEAlgorithm"] == "aws:kms"
            assert logical_id_of(default["KMSMasterKeyID"]) == data_key


def test_queues_secrets_and_topics_are_encrypted_with_the_data_key(raw_template: dict) -> None:
    """All but the ingestion queue and its DLQ, which have their own key (S3 sends to that queue)."""
    data_key = _key_id(raw_template, "EncryptionDataKey")
    ingestion_key = _key_id(raw_template, "EncryptionIngestionKey")
    for type_, key_property in (
        ("AWS::SQS::Queue", "KmsMasterKeyId"),
        ("AWS::SecretsManager::Secret", "KmsKeyId"),
        ("AWS::SNS::Topic", "KmsMasterKeyId"),
    ):
        found = resources(raw_template, type_)
        assert found, type_
        for logical_id, resource in found.items():
            expected = ingestion_key if logical_id.startswith("MessagingIngestion") else data_key
            assert logical_id_of(props(resource).get(key_property)) == expected, logical_id


def test_every_log_group_is_encrypted_with_the_logs_key(raw_template: dict) -> None:
    logs_key = _key_id(raw_template, "EncryptionLogsKey")
    log_groups = resources(raw_template, "AWS::Logs::LogGroup")
    assert len(log_groups) >= 3  # api function, API access logs, API execution logs
    for logical_id, log_group in log_groups.items():
        assert logical_id_of(props(log_group).get("KmsKeyId")) == logs_key, logical_id


def test_logs_key_lets_cloudwatch_logs_use_it_only_for_this_accounts_log_groups(raw_template: dict) -> None:
    key = props(only(resources(raw_template, "AWS::KMS::Key"), "EncryptionLogsKey")[1])
    statements = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "logs.us-east-1.amazonaws.com"
    ]
    assert len(statements) == 1
    statement = statements[0]
    assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= set(as_list(statement["Action"]))
    condition = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert "log-group:*" in str(condition)


def test_data_key_lets_cloudwatch_alarms_publish_to_the_encrypted_topic(raw_template: dict) -> None:
    key = props(only(resources(raw_template, "AWS::KMS::Key"), "EncryptionDataKey")[1])
    statements = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert len(statements) == 1
    assert set(as_list(statements[0]["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_keys_are_retained_in_prod_and_destroyed_in_dev(synthesized) -> None:
    for stage, policy in (("dev", "Delete"), ("prod", "Retain")):
        for key in resources(synthesized.raw[stage], "AWS::KMS::Key").values():
            assert key["DeletionPolicy"] == policy
