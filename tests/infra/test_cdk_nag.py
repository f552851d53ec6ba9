"""cdk-nag: the AwsSolutions and Serverless packs find nothing that is not acknowledged with a reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aws_cdk
import pytest
from gateway_cdk.app_factory import build_app
from gateway_cdk.components.functions import BACKEND_PROVIDERS, OPTIONAL_FUNCTIONS, FunctionSpec, has_handler
from gateway_cdk.components.orchestration import child_executions_finding, missing_functions
from gateway_cdk.paths import STATEMACHINES_DIR

from tests.infra.infra_helpers import context_with, nag_findings

# Every finding the stack acknowledges, and where. A new acknowledgment must be added here too,
# so that it is seen in review; the reasons live next to the code that needs them.
ALWAYS_ACKNOWLEDGED = {
    ("AwsSolutions-APIG2", "Api/RestApi/Resource"),
    ("AwsSolutions-APIG3", "Api/RestApi/DeploymentStage.dev/Resource"),  # WAF off (dev default)
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/chat/completions/POST/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/models/GET/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/models/{model}/GET/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/batches/GET/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/batches/POST/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/batches/{batch_id}/GET/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/batches/{batch_id}/cancel/POST/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/{proxy+}/ANY/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/admin/{proxy+}/ANY/Resource"),
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "Api/RestApi/CloudWatchRole/Resource",
    ),
    (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSCodeDeployRoleForLambdaLimited]",
        "Deployment/ApiDeploymentGroup/ServiceRole/Resource",
    ),
    ("AwsSolutions-IAM5[Resource::*]", "Functions/Api/Role/DefaultPolicy/Resource"),
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/Api/Role/DefaultPolicy/Resource"),
    ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/Api/Role/DefaultPolicy/Resource"),
    ("AwsSolutions-SMG4", "Secrets/DeepseekApiKey/Resource"),
    ("AwsSolutions-SMG4", "Secrets/OpenaiApiKey/Resource"),
    ("AwsSolutions-SMG4", "Secrets/AnthropicApiKey/Resource"),
    ("Serverless-LambdaDLQ", "Functions/Api/Function/Resource"),
    ("Serverless-SQSRedrivePolicy", "Messaging/Ingestion/DeadLetterQueue/Resource"),
    ("Serverless-SQSRedrivePolicy", "Messaging/Notifications/DeadLetterQueue/Resource"),
    ("Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish", "Functions/Api/Function"),
}

UPLOADS_OBJECTS = "Resource::<StorageUploadsBucket03E44DD0.Arn>/*"
RESULTS_OBJECTS = "Resource::<StorageResultsBucketF87BB70E.Arn>/*"
KMS_WILDCARDS = ("Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*")
# CDK's read/write grant on a bucket: object wildcards under that one bucket.
BUCKET_RW = ("Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*", "Action::s3:DeleteObject*",
             "Action::s3:Abort*")


def _function_acknowledgments(construct: str) -> set[tuple[str, str]]:
    """What every function beyond the api carries: X-Ray's `*`, no DLQ, SnapStart, CodeDeploy's role.

    (No DLQ: synchronous functions return their errors; queue consumers fail to their queue's DLQ.)
    """
    return {
        ("AwsSolutions-IAM5[Resource::*]", f"Functions/{construct}/Role/DefaultPolicy/Resource"),
        ("Serverless-LambdaDLQ", f"Functions/{construct}/Function/Resource"),
        ("Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish", f"Functions/{construct}/Function"),
        (
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            f"Deployment/{construct}DeploymentGroup/ServiceRole/Resource",
        ),
    }


def _grant_wildcards(construct: str, *findings: str) -> set[tuple[str, str]]:
    """The wildcard findings (AwsSolutions-IAM5) of a function's grants, in its role's default policy."""
    return {(f"AwsSolutions-IAM5[{finding}]", f"Functions/{construct}/Role/DefaultPolicy/Resource")
            for finding in findings}


def expected_acknowledgments(present: Callable[[str], bool]) -> set[tuple[str, str]]:
    """Every acknowledged finding of the dev stack, given which functions' handlers exist."""
    acknowledged = set(ALWAYS_ACKNOWLEDGED)
    # The api function reads and writes file contents under the uploads bucket (Files API): CDK's bucket grant.
    acknowledged |= _grant_wildcards("Api", *BUCKET_RW, UPLOADS_OBJECTS)
    for name in OPTIONAL_FUNCTIONS:
        if present(name):
            acknowledged |= _function_acknowledgments(FunctionSpec(name=name, description="").construct_id)

    # The notifier (an SQS consumer, so no function DLQ: its messages go to the queue's DLQ): the
    # idempotency table's key wildcards, SMS publishing on `*` in its own policy, its master webhook
    # secret (rotated by hand), and the event source mapping, which takes no on-failure destination.
    # (SES's identity/* appears only with `ses_sender`: see test_cdk_notifier.py.)
    if present("notifier"):
        acknowledged |= _grant_wildcards("Notifier", *KMS_WILDCARDS) | {
            ("AwsSolutions-IAM5[Resource::*]", "Functions/Notifier/Role/SmsPolicy/Resource"),
            ("AwsSolutions-SMG4", "Secrets/WebhookSigningSecret/Resource"),
            (
                "Serverless-LambdaEventSourceMappingDestination",
                "Functions/Notifier/LiveAlias/SqsEventSource:DeepSeekGatewaydevMessagingNotificationsQueue23582192"
                "/Resource",
            ),
        }
    # Ingestion: the uploads bucket (read/write), chunks put into the results bucket, the key wildcards
    # of its tables and queues; its event source mapping (no on-failure destination); and CDK's
    # bucket-notifications handler (uploads -> ingestion queue), whose role has the basic execution policy.
    if present("ingestion"):
        acknowledged |= _grant_wildcards("Ingestion", *BUCKET_RW, *KMS_WILDCARDS, UPLOADS_OBJECTS, RESULTS_OBJECTS)
        acknowledged |= {
            (
                "Serverless-LambdaEventSourceMappingDestination",
                "Functions/Ingestion/LiveAlias/SqsEventSource:DeepSeekGatewaydevMessagingIngestionQueue774CE85D"
                "/Resource",
            ),
            (
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role/Resource",
            ),
        }
    # The batch task: output files in the uploads bucket (read/write), chunks read from the results bucket.
    if present("batch"):
        acknowledged |= _grant_wildcards("Batch", *BUCKET_RW, *KMS_WILDCARDS, UPLOADS_OBJECTS, RESULTS_OBJECTS)
    # Backend callers: the breaker and idempotency tables (read/write): key wildcards.
    for provider in BACKEND_PROVIDERS:
        if present(f"backend_{provider}"):
            acknowledged |= _grant_wildcards(f"Backend{provider.capitalize()}", *KMS_WILDCARDS)
    # The batch workflow exists once all its task functions do: log delivery and X-Ray on `*`, and its
    # Distributed Map's child executions (execution:<name>/*).
    if not missing_functions((STATEMACHINES_DIR / "batch.asl.json").read_text(), absent_of(present)):
        acknowledged |= {
            ("AwsSolutions-IAM5[Resource::*]", "Orchestration/Batch/Role/DefaultPolicy/Resource"),
            (
                f"AwsSolutions-IAM5[Resource::{child_executions_finding('deepseek-gateway-dev-batch')}]",
                "Orchestration/Batch/Role/DefaultPolicy/Resource",
            ),
        }
        # The rule failing the batches of executions that ended without FailBatch retries, without a DLQ.
        if present("ingestion") and present("batch"):
            acknowledged.add(("Serverless-EventBusDLQ", "BatchExecutionEnded/Resource"))
    return acknowledged


def absent_of(present: Callable[[str], bool]) -> set[str]:
    return {name for name in OPTIONAL_FUNCTIONS if not present(name)}


ACKNOWLEDGED = expected_acknowledgments(has_handler)


def test_synthesis_with_both_packs_reports_no_unacknowledged_finding(synthesized) -> None:
    assert nag_findings(synthesized.outdir / "validation-report.json") == set()
    assert synthesized.synth_error is None, str(synthesized.synth_error)


def test_the_packs_run_and_the_acknowledgments_are_exactly_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without acknowledgments, both packs report exactly the findings listed above."""
    monkeypatch.setattr(aws_cdk.Validations, "acknowledge", lambda self, *rules: None)
    app, _ = build_app(context_with(), stages=["dev"], outdir=str(tmp_path))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert nag_findings(tmp_path / "validation-report.json") == ACKNOWLEDGED
