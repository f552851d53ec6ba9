"""What the template defines is live in the local cloud, so the two cannot drift apart."""

from __future__ import annotations

import pytest
from local_cloud.deploy import deploy_time_only

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]


def test_every_function_queue_table_bucket_secret_and_state_machine_in_the_template_is_live(cloud, aws):
    deployment = cloud.deployment
    template = deployment.template
    checked = 0
    for logical_id, resource in template.of_type("AWS::Lambda::Function"):
        aws.client("lambda").get_function(FunctionName=deployment.ref(logical_id))
        if deploy_time_only(resource):  # CDK's deploy-time helpers: the local cloud does their work
            continue
        assert logical_id in cloud.pools, f"no running handler for {logical_id}"
        checked += 1
    for logical_id, _ in template.of_type("AWS::SQS::Queue"):
        aws.client("sqs").get_queue_attributes(QueueUrl=deployment.ref(logical_id), AttributeNames=["All"])
        checked += 1
    for logical_id, _ in template.of_type("AWS::DynamoDB::Table"):
        aws.client("dynamodb").describe_table(TableName=deployment.ref(logical_id))
        checked += 1
    for logical_id, _ in template.of_type("AWS::S3::Bucket"):
        aws.client("s3").head_bucket(Bucket=deployment.ref(logical_id))
        checked += 1
    for logical_id, _ in template.of_type("AWS::SecretsManager::Secret"):
        aws.client("secretsmanager").describe_secret(SecretId=deployment.ref(logical_id))
        checked += 1
    for logical_id, _ in template.of_type("AWS::StepFunctions::StateMachine"):
        aws.client("stepfunctions").describe_state_machine(stateMachineArn=deployment.ref(logical_id))
        checked += 1
    assert checked >= 10


def test_dead_letter_queues_are_wired_as_the_template_says(cloud, aws):
    import json

    deployment = cloud.deployment
    for logical_id, resource in deployment.template.of_type("AWS::SQS::Queue"):
        redrive = resource["Properties"].get("RedrivePolicy")
        if not redrive:
            continue
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=deployment.ref(logical_id), AttributeNames=["RedrivePolicy"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == redrive["maxReceiveCount"]


def test_the_api_function_runs_with_the_templates_environment(cloud):
    spec = next(p.spec for p in cloud.pools.values() if "Api" in p.spec.logical_id)
    env = spec.environment
    assert env["BREAKER_TABLE_NAME"] == cloud.deployment.ref(
        next(i for i, _ in cloud.deployment.template.of_type("AWS::DynamoDB::Table") if "Breaker" in i))
    assert env["DEEPSEEK_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert env["DEEPSEEK_BASE_URL"] == cloud.provider_base_url("deepseek")
