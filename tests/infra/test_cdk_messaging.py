"""Messaging: each queue has a DLQ (maxReceiveCount 5), KMS, TLS-only, visibility >= 6x consumer timeout."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.components.messaging import QUEUE_CONSUMER_TIMEOUTS, WorkQueue

from tests.infra.infra_helpers import logical_id_of, props, resources


def _messaging_queues(raw: dict) -> dict[str, dict]:
    return {k: v for k, v in resources(raw, "AWS::SQS::Queue").items() if k.startswith("Messaging")}


def _work_queues(raw: dict) -> dict[str, dict]:
    return {k: v for k, v in _messaging_queues(raw).items() if "RedrivePolicy" in props(v)}


def test_ingestion_and_notifications_queues_exist(raw_template: dict) -> None:
    names = {logical_id.removeprefix("Messaging").split("Queue")[0] for logical_id in _work_queues(raw_template)}
    assert names == {"Ingestion", "Notifications"}


def test_every_queue_has_a_dead_letter_queue_after_five_receives(raw_template: dict) -> None:
    queues = _messaging_queues(raw_template)
    work = _work_queues(raw_template)
    dead_letter = set(queues) - set(work)
    assert len(work) == len(dead_letter) == 2
    targets = set()
    for queue in work.values():
        policy = props(queue)["RedrivePolicy"]
        assert policy["maxReceiveCount"] == 5
        targets.add(logical_id_of(policy["deadLetterTargetArn"]))
    assert targets == dead_letter


@pytest.mark.parametrize("name", sorted(QUEUE_CONSUMER_TIMEOUTS))
def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(raw_template: dict, name: str) -> None:
    (queue,) = [q for k, q in _work_queues(raw_template).items() if k.startswith(f"Messaging{name.capitalize()}")]
    assert props(queue)["VisibilityTimeout"] >= 6 * QUEUE_CONSUMER_TIMEOUTS[name].to_seconds()


def test_every_queue_refuses_plain_http(raw_template: dict) -> None:
    queues = set(resources(raw_template, "AWS::SQS::Queue"))
    enforced = set()
    for policy in resources(raw_template, "AWS::SQS::QueuePolicy").values():
        for statement in props(policy)["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                enforced.update(logical_id_of(q) for q in props(policy)["Queues"])
    assert enforced == queues


def test_each_dead_letter_queue_alarms_as_soon_as_it_holds_a_message(raw_template: dict) -> None:
    dead_letter = set(_messaging_queues(raw_template)) - set(_work_queues(raw_template))
    alarmed = set()
    for alarm in resources(raw_template, "AWS::CloudWatch::Alarm").values():
        p = props(alarm)
        if p.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert p["Threshold"] == 0 and p["ComparisonOperator"] == "GreaterThanThreshold"
            assert p["AlarmActions"], "DLQ alarm notifies nobody"
            alarmed.add(logical_id_of(p["Dimensions"][0]["Value"]))
    assert alarmed == dead_letter


def _queue_stack() -> tuple[Stack, WorkQueue]:
    stack = Stack(App(context=cdk_json_context()), "QueueStack")
    queue = WorkQueue(stack, "Work", name="work", key=kms.Key(stack, "Key"), consumer_timeout=Duration.seconds(20))
    return stack, queue


def _consumer(stack: Stack, timeout_s: int) -> lambda_.Function:
    return lambda_.Function(
        stack,
        f"Consumer{timeout_s}",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        timeout=Duration.seconds(timeout_s),
    )


def test_a_consumer_gets_partial_batch_responses() -> None:
    stack, queue = _queue_stack()
    queue.add_consumer(_consumer(stack, 20), timeout=Duration.seconds(20), batch_size=5)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"BatchSize": 5, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    )
    assert queue.queue_visibility_seconds == 120


def test_a_consumer_slower_than_the_queue_was_sized_for_is_refused() -> None:
    stack, queue = _queue_stack()
    with pytest.raises(ValueError, match="visibility timeout"):
        queue.add_consumer(_consumer(stack, 30), timeout=Duration.seconds(30))
