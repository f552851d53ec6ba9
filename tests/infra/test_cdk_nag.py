"""cdk-nag: the AwsSolutions and Serverless packs find nothing that is not acknowledged with a reason."""

from __future__ import annotations

from pathlib import Path

import aws_cdk
import pytest
from gateway_cdk.app_factory import build_app
from gateway_cdk.components.functions import has_handler

from tests.infra.infra_helpers import context_with, nag_findings

# Every finding the stack acknowledges, and where. A new acknowledgment must be added here too,
# so that it is seen in review; the reasons live next to the code that needs them.
ACKNOWLEDGED = {
    ("AwsSolutions-APIG2", "Api/RestApi/Resource"),
    ("AwsSolutions-APIG3", "Api/RestApi/DeploymentStage.dev/Resource"),  # WAF off (dev default)
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/chat/completions/POST/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/models/GET/Resource"),
    ("AwsSolutions-COG4", "Api/RestApi/Default/v1/models/{model}/GET/Resource"),
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


# The api function reads and writes file contents under the uploads bucket (Files API): CDK's bucket grant.
ACKNOWLEDGED |= {
    (f"AwsSolutions-IAM5[{finding}]", "Functions/Api/Role/DefaultPolicy/Resource")
    for finding in ("Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*", "Action::s3:DeleteObject*",
                    "Action::s3:Abort*", "Resource::<StorageUploadsBucket03E44DD0.Arn>/*")
}

for _name, _construct in (("authorizer", "Authorizer"), ("safety", "Safety"), ("notifier", "Notifier")):
    if has_handler(_name):
        ACKNOWLEDGED |= _function_acknowledgments(_construct)

# The notifier (an SQS consumer, so no function DLQ: its messages go to the queue's DLQ): the
# idempotency table's key wildcards, SMS publishing on `*` in its own policy, its master webhook
# secret (rotated by hand), and the event source mapping, which takes no on-failure destination.
# (SES's identity/* appears only with `ses_sender`: see test_cdk_notifier.py.)
if has_handler("notifier"):
    ACKNOWLEDGED |= {
        ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "Functions/Notifier/Role/DefaultPolicy/Resource"),
        ("AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Functions/Notifier/Role/DefaultPolicy/Resource"),
        ("AwsSolutions-IAM5[Resource::*]", "Functions/Notifier/Role/SmsPolicy/Resource"),
        ("AwsSolutions-SMG4", "Secrets/WebhookSigningSecret/Resource"),
        (
            "Serverless-LambdaEventSourceMappingDestination",
            "Functions/Notifier/LiveAlias/SqsEventSource:DeepSeekGatewaydevMessagingNotificationsQueue23582192/Resource",
        ),
    }


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
