"""Monitoring: dashboard, alarms on the API 5xx rate, function errors and DLQ depth, to an encrypted topic."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template
from gateway_cdk.components.monitoring import CUSTOM_METRICS

from tests.infra.infra_helpers import PROD_ALARM_EMAIL, logical_id_of, only, props, resources


def _dashboard_body(raw: dict) -> str:
    _, dashboard = only(resources(raw, "AWS::CloudWatch::Dashboard"))
    return json.dumps(props(dashboard)["DashboardBody"])


def _dashboard_widgets(raw: dict) -> list[dict]:
    """The dashboard's widgets, references to resources replaced by "<ref>"."""
    _, dashboard = only(resources(raw, "AWS::CloudWatch::Dashboard"))
    body = props(dashboard)["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return json.loads("".join(p if isinstance(p, str) else "<ref>" for p in parts))["widgets"]


def test_every_alarm_notifies_the_alarm_topic(raw_template: dict) -> None:
    topic_id, _ = only(resources(raw_template, "AWS::SNS::Topic"))
    alarms = resources(raw_template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 4  # API 5xx, api function errors, two DLQs
    for alarm in alarms.values():
        assert [logical_id_of(a) for a in props(alarm)["AlarmActions"]] == [topic_id]
        assert [logical_id_of(a) for a in props(alarm)["OKActions"]] == [topic_id]


def test_alarm_topic_is_encrypted_and_refuses_plain_http(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_api_5xx_rate_alarm_divides_errors_by_requests(raw_template: dict) -> None:
    (alarm,) = [
        a for k, a in resources(raw_template, "AWS::CloudWatch::Alarm").items() if k.startswith("MonitoringApi5xx")
    ]
    p = props(alarm)
    expression = next(m for m in p["Metrics"] if "Expression" in m)
    assert "errors / requests" in expression["Expression"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in p["Metrics"] if "MetricStat" in m}
    assert names == {"5XXError", "Count"}
    assert p["Threshold"] == 5


def test_api_function_errors_alarm_watches_the_live_alias(raw_template: dict) -> None:
    (alarm,) = [
        a for k, a in resources(raw_template, "AWS::CloudWatch::Alarm").items() if k.startswith("MonitoringApiErrors")
    ]
    p = props(alarm)
    assert p["MetricName"] == "Errors" and p["Namespace"] == "AWS/Lambda"
    dimensions = {d["Name"]: d["Value"] for d in p["Dimensions"]}
    assert "live" in json.dumps(dimensions["Resource"])
    assert p["Threshold"] == 1


def test_dashboard_shows_api_lambda_custom_and_dlq_metrics(raw_template: dict) -> None:
    body = _dashboard_body(raw_template)
    for metric in ("Count", "Latency", "p50", "p99", "4XXError", "5XXError", "Errors", "Duration", "Throttles"):
        assert metric in body, metric
    assert "ApproximateNumberOfMessagesVisible" in body


def test_dashboard_finds_custom_metrics_of_any_dimension_in_the_gateway_namespace(raw_template: dict) -> None:
    expressions = {
        metric["label"]: metric["expression"]
        for widget in _dashboard_widgets(raw_template)
        for row in widget.get("properties", {}).get("metrics", [])
        for metric in row
        if isinstance(metric, dict) and "expression" in metric
    }
    for name in CUSTOM_METRICS:
        assert expressions[name] == f"SEARCH('{{DeepSeekGateway}} MetricName=\"{name}\"', 'Sum', 300)"


def test_dashboard_url_and_topic_are_stack_outputs(raw_template: dict) -> None:
    outputs = raw_template["Outputs"]
    assert {"DashboardUrl", "AlarmTopicArn", "ApiFunctionName"} <= set(outputs)


def test_alarm_email_subscribes_only_when_configured(dev: Template, prod: Template) -> None:
    dev.resource_count_is("AWS::SNS::Subscription", 0)
    prod.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": PROD_ALARM_EMAIL})


def test_undeliverable_alarm_emails_go_to_an_encrypted_dead_letter_queue(synthesized) -> None:
    raw = synthesized.raw["prod"]
    (subscription,) = resources(raw, "AWS::SNS::Subscription").values()
    target = logical_id_of(props(subscription)["RedrivePolicy"]["deadLetterTargetArn"])
    assert target.startswith("MonitoringUndeliveredAlarms")
    assert "KmsMasterKeyId" in props(raw["Resources"][target])


def test_router_and_backend_tasks_alarm_on_their_error_rate_not_on_one_expected_error(raw_template: dict) -> None:
    # Given the workflow's router and backend functions, which report a provider's 429 as an error by design
    alarms = resources(raw_template, "AWS::CloudWatch::Alarm")
    for name in ("Router", "BackendDeepseek", "BackendOpenai", "BackendAnthropic"):
        # Then no single-error alarm watches them (it would stop a canary over one 429) ...
        assert not [k for k in alarms if k.startswith(f"Monitoring{name}Errors")], name
        # ... and an error-rate alarm does, over several minutes
        (alarm,) = [a for k, a in alarms.items() if k.startswith(f"Monitoring{name}ErrorRate")]
        p = props(alarm)
        expression = next(m for m in p["Metrics"] if "Expression" in m)
        assert "errors / invocations" in expression["Expression"]
        assert p["Threshold"] == 50 and p["EvaluationPeriods"] == 5 and p["DatapointsToAlarm"] == 3
    # While the batch bookkeeping function, whose errors are never expected, still alarms on one
    assert [k for k in alarms if k.startswith("MonitoringBatchErrors")]


def test_a_failed_batch_execution_raises_an_alarm(raw_template: dict) -> None:
    (alarm,) = [a for k, a in resources(raw_template, "AWS::CloudWatch::Alarm").items()
                if k.startswith("MonitoringBatchExecutionsFailed")]
    p = props(alarm)
    assert p["MetricName"] == "ExecutionsFailed" and p["Namespace"] == "AWS/States"
    assert p["Threshold"] == 1
