"""The notifier: a consumer of the notifications queue with exactly the access its channels need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App
from gateway_cdk.app_factory import build_app
from gateway_cdk.components.functions import function_specs, has_handler
from gateway_cdk.config import ConfigError, GatewayConfig

from tests.infra.infra_helpers import (
    as_list,
    context_with,
    function_role_id,
    logical_id_of,
    only,
    policy_statements_of_role,
    props,
    resources,
)

pytestmark = pytest.mark.skipif(not has_handler("notifier"), reason="the notifier's handler does not exist")

SENDER = "alerts@example.com"
CONSUME_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}


def _notifier(raw: dict) -> tuple[str, dict]:
    return only(resources(raw, "AWS::Lambda::Function"), "FunctionsNotifierFunction")


def _notifications_queue(raw: dict) -> tuple[str, dict]:
    return only(resources(raw, "AWS::SQS::Queue"), "MessagingNotificationsQueue")


def _by_service(raw: dict) -> dict[str, list[dict]]:
    statements: dict[str, list[dict]] = {}
    for statement in policy_statements_of_role(raw, function_role_id(raw, "FunctionsNotifierFunction")):
        assert statement["Effect"] == "Allow"
        services = {action.split(":")[0] for action in as_list(statement["Action"])}
        assert len(services) == 1, statement
        statements.setdefault(services.pop(), []).append(statement)
    return statements


def _targets(statements: list[dict]) -> set[str]:
    return {logical_id_of(r) or (r if isinstance(r, str) else json.dumps(r, sort_keys=True))
            for s in statements for r in as_list(s["Resource"])}


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in as_list(s["Action"])}


@pytest.fixture(scope="module")
def with_sender(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Exception | None]:
    """The dev stack with an SES sender and private webhooks allowed (as the local cloud has it)."""
    outdir = tmp_path_factory.mktemp("cdk.out.notifier")
    app, stacks = build_app(
        context_with(dev={"ses_sender": SENDER, "allow_private_webhooks": True}), stages=["dev"], outdir=str(outdir)
    )
    error = None
    try:
        app.synth()
    except RuntimeError as exc:
        error = exc
    raw = json.loads((outdir / f"{stacks['dev'].stack_name}.template.json").read_text())
    return raw, outdir, error


def test_the_notifier_is_a_30_s_512_mb_function_with_its_resources_in_its_environment(raw_template: dict) -> None:
    _, function = _notifier(raw_template)
    p = props(function)
    assert p["Timeout"] == 30 and p["MemorySize"] == 512
    env = p["Environment"]["Variables"]
    assert logical_id_of(env["TENANTS_TABLE_NAME"]).startswith("StorageTenants")
    assert logical_id_of(env["IDEMPOTENCY_TABLE_NAME"]).startswith("StorageIdempotency")
    assert logical_id_of(env["WEBHOOK_SIGNING_SECRET_ARN"]).startswith("SecretsWebhookSigningSecret")
    assert "SES_SENDER" not in env and "ALLOW_PRIVATE_WEBHOOKS" not in env
    assert "DeadLetterConfig" not in p  # its failures go to the queue's DLQ


def test_the_notifier_live_alias_consumes_the_notifications_queue_in_batches_of_ten(raw_template: dict) -> None:
    (_, mapping) = only(resources(raw_template, "AWS::Lambda::EventSourceMapping"), "FunctionsNotifier")
    p = props(mapping)
    queue_id, _ = _notifications_queue(raw_template)
    assert logical_id_of(p["EventSourceArn"]) == queue_id
    alias = raw_template["Resources"][logical_id_of(p["FunctionName"])]  # the alias's ARN
    assert alias["Type"] == "AWS::Lambda::Alias" and props(alias)["Name"] == "live"
    assert logical_id_of(props(alias)["FunctionName"]) == _notifier(raw_template)[0]
    assert p["BatchSize"] == 10
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_the_notifications_queue_visibility_covers_six_notifier_timeouts(raw_template: dict) -> None:
    _, queue = _notifications_queue(raw_template)
    assert props(queue)["VisibilityTimeout"] >= 6 * props(_notifier(raw_template)[1])["Timeout"]


def test_the_notifier_role_reaches_exactly_what_its_channels_need(raw_template: dict) -> None:
    by_service = _by_service(raw_template)

    dynamodb = by_service.pop("dynamodb")
    tables = {t for t in _targets(dynamodb) if not t.startswith("{")}
    assert {t.split("Table")[0] for t in tables} == {"StorageTenants", "StorageIdempotency"}
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    for statement in dynamodb:
        targets = {logical_id_of(r) or "" for r in as_list(statement["Resource"])}
        if any(t.startswith("StorageTenants") for t in targets):
            assert not writes & set(as_list(statement["Action"])), "the tenants table is read-only"

    secrets = by_service.pop("secretsmanager")
    (secret,) = _targets(secrets)
    assert secret.startswith("SecretsWebhookSigningSecret")
    assert _actions(secrets) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}

    sqs = by_service.pop("sqs")
    assert _targets(sqs) == {_notifications_queue(raw_template)[0]}
    assert _actions(sqs) == CONSUME_ACTIONS

    sns = by_service.pop("sns")
    assert _actions(sns) == {"sns:Publish"} and _targets(sns) == {"*"}

    assert {t for t in _targets(by_service.pop("kms"))} == {
        k for k in resources(raw_template, "AWS::KMS::Key") if k.startswith("EncryptionDataKey")
    }
    (log_group,) = _targets(by_service.pop("logs"))
    assert log_group.startswith("FunctionsNotifierLogGroup")
    assert _targets(by_service.pop("xray")) == {"*"}
    assert by_service == {}, "without ses_sender the notifier may not send e-mail"


def test_with_a_sender_the_notifier_may_send_email_only_from_it(with_sender) -> None:
    raw, _, _ = with_sender
    env = props(_notifier(raw)[1])["Environment"]["Variables"]
    assert env["SES_SENDER"] == SENDER
    assert env["ALLOW_PRIVATE_WEBHOOKS"] == "true"
    (statement,) = _by_service(raw)["ses"]
    assert as_list(statement["Action"]) == ["ses:SendEmail"]
    (resource,) = as_list(statement["Resource"])
    assert resource["Fn::Join"][1][-1].endswith(":identity/*")
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": SENDER}}


def test_with_a_sender_cdk_nag_finds_nothing_unacknowledged(with_sender) -> None:
    _, outdir, error = with_sender
    report = outdir / "validation-report.json"
    findings = json.loads(report.read_text()).get("pluginReports", []) if report.exists() else []
    assert not any(plugin.get("violations") for plugin in findings), findings
    assert error is None, str(error)


def test_private_webhooks_are_refused_for_prod() -> None:
    with pytest.raises(ConfigError, match="allow_private_webhooks"):
        GatewayConfig(stage="prod", allow_private_webhooks=True)
    app = App(context=context_with(prod={"allow_private_webhooks": True}))
    with pytest.raises(ConfigError, match="allow_private_webhooks"):
        GatewayConfig.from_node(app.node, stage="prod")
    assert GatewayConfig.from_values({"stage": "dev", "allow_private_webhooks": "true"}).allow_private_webhooks


def test_only_the_local_context_allows_private_webhooks() -> None:
    (spec,) = [s for s in function_specs(GatewayConfig()) if s.name == "notifier"]
    assert "ALLOW_PRIVATE_WEBHOOKS" not in spec.environment
    (spec,) = [s for s in function_specs(GatewayConfig(allow_private_webhooks=True)) if s.name == "notifier"]
    assert spec.environment["ALLOW_PRIVATE_WEBHOOKS"] == "true"


@pytest.mark.parametrize("sender", ["not-an-address", "Alerts <alerts@example.com>"])
def test_a_sender_that_is_not_an_address_is_refused(sender: str) -> None:
    with pytest.raises(ConfigError, match="ses_sender"):
        GatewayConfig.from_values({"ses_sender": sender})
