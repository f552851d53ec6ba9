"""Storage: DynamoDB tables and S3 buckets."""

from __future__ import annotations

import pytest

from tests.infra.infra_helpers import only, props, resources

EXPECTED_TABLES = {
    # name: (key schema, TTL attribute)
    "Tenants": ({"pk": "HASH", "sk": "RANGE"}, None),
    "Usage": ({"pk": "HASH", "sk": "RANGE"}, "expires_at"),
    "Jobs": ({"pk": "HASH", "sk": "RANGE"}, "expires_at"),
    "Cache": ({"pk": "HASH"}, "expires_at"),
    "Idempotency": ({"id": "HASH"}, "expiration"),
    "Breaker": ({"provider": "HASH"}, None),
}


def _table(raw: dict, name: str) -> dict:
    return only(resources(raw, "AWS::DynamoDB::Table"), f"Storage{name}Table")[1]


def test_six_plain_dynamodb_tables_no_global_tables(raw_template: dict) -> None:
    assert len(resources(raw_template, "AWS::DynamoDB::Table")) == len(EXPECTED_TABLES)
    # moto's CloudFormation skips GlobalTable (what TableV2 emits): the local cloud needs Table.
    assert not resources(raw_template, "AWS::DynamoDB::GlobalTable")


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLES))
def test_table_keys_ttl_billing_and_point_in_time_recovery(raw_template: dict, name: str) -> None:
    key_schema, ttl = EXPECTED_TABLES[name]
    table = props(_table(raw_template, name))
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == key_schema
    assert all(a["AttributeType"] == "S" for a in table["AttributeDefinitions"])
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    if ttl:
        assert table["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in table


def test_prod_tables_are_deletion_protected_and_retained(synthesized) -> None:
    for table in resources(synthesized.raw["prod"], "AWS::DynamoDB::Table").values():
        assert props(table)["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


def test_dev_tables_are_destroyed_with_the_stack(synthesized) -> None:
    for table in resources(synthesized.raw["dev"], "AWS::DynamoDB::Table").values():
        assert not props(table).get("DeletionProtectionEnabled", False)
        assert table["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("name", ["Uploads", "Results"])
def test_data_buckets_are_private_versioned_logged_and_expire_leftovers(raw_template: dict, name: str) -> None:
    buckets = resources(raw_template, "AWS::S3::Bucket")
    bucket_id, bucket = only(buckets, f"Storage{name}Bucket")
    p = props(bucket)
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = next(r for r in p["LifecycleConfiguration"]["Rules"] if r["Id"] == "abort-multipart-and-expire-noncurrent")
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    access_log_bucket = only(buckets, "StorageAccessLogBucket")[0]
    assert p["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": access_log_bucket}
    assert p["LoggingConfiguration"]["LogFilePrefix"] == f"{name.lower()}/"


def test_every_bucket_refuses_plain_http(raw_template: dict) -> None:
    buckets = resources(raw_template, "AWS::S3::Bucket")
    policies = resources(raw_template, "AWS::S3::BucketPolicy")
    enforced = set()
    for policy in policies.values():
        for statement in props(policy)["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                enforced.add(props(policy)["Bucket"]["Ref"])
    assert enforced == set(buckets)


def test_access_log_bucket_expires_its_logs(raw_template: dict) -> None:
    bucket = props(only(resources(raw_template, "AWS::S3::Bucket"), "StorageAccessLogBucket")[1])
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_work_chunks_left_in_the_results_bucket_expire_but_uploads_never_do(raw_template: dict) -> None:
    buckets = resources(raw_template, "AWS::S3::Bucket")
    results = props(only(buckets, "StorageResultsBucket")[1])["LifecycleConfiguration"]["Rules"]
    uploads = props(only(buckets, "StorageUploadsBucket")[1])["LifecycleConfiguration"]["Rules"]
    (expiry,) = [r for r in results if r["Id"] == "expire-work-chunks"]
    assert expiry["ExpirationInDays"] == 7 and expiry["Status"] == "Enabled"
    assert not [r for r in uploads if "ExpirationInDays" in r]  # tenants' files stay until deleted
