"""SQS queues, each with a dead-letter queue and an alarm on the DLQ's depth.

The visibility timeout of a queue must cover a consumer's retries of one batch: AWS recommends at
least six times the consumer function's timeout. `WorkQueue` takes the consumer's timeout and
derives it; `add_consumer` refuses a consumer whose timeout the queue was not sized for.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RECEIVE_COUNT = 5
VISIBILITY_FACTOR = 6

# The consumer function of each queue and the timeout it will have (the consumers arrive with
# later issues; their function specs must use the same timeouts).
QUEUE_CONSUMER_TIMEOUTS: dict[str, Duration] = {
    "ingestion": Duration.seconds(60),
    "notifications": Duration.seconds(30),
}


class WorkQueue(Construct):
    """A KMS-encrypted, TLS-only queue with a DLQ (maxReceiveCount 5) and a DLQ-depth alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        key: kms.IKey,
        consumer_timeout: Duration,
        max_receive_count: int = MAX_RECEIVE_COUNT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.consumer_timeout = consumer_timeout
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="Serverless-SQSRedrivePolicy",
                reason=f"This is the {name} queue's dead-letter queue, the end of its redrive chain: "
                "a message here raises the DLQ-depth alarm and waits for the operator to redrive it.",
            )
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_FACTOR),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
        )
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotEmpty",
            alarm_description=(
                f"Messages in the {name} dead-letter queue: a consumer failed them {max_receive_count} times."
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def add_consumer(
        self,
        consumer: lambda_.IFunction,
        *,
        timeout: Duration,
        batch_size: int = 10,
        max_batching_window: Duration | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        """Attach a Lambda consumer (use the function's `live` alias) with partial batch responses.

        `max_concurrency` caps the concurrent invocations of this event source (2-1000).
        """
        if timeout.to_seconds() * VISIBILITY_FACTOR > self.queue_visibility_seconds:
            raise ValueError(
                f"the {self.name} queue's visibility timeout ({self.queue_visibility_seconds} s) is less "
                f"than {VISIBILITY_FACTOR}x the consumer's timeout ({timeout.to_seconds()} s)"
            )
        source = event_sources.SqsEventSource(
            self.queue,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            report_batch_item_failures=True,
            max_concurrency=max_concurrency,
        )
        consumer.add_event_source(source)
        # CDK names an alias as `<function name>:<alias>`, cut out of the alias's ARN with Fn::Split and
        # Fn::Select; the mapping takes the alias ARN itself (one plain Ref, which the local cloud resolves too).
        mapping = [child for child in consumer.node.children if isinstance(child, lambda_.EventSourceMapping)][-1]
        mapping.node.default_child.add_property_override("FunctionName", consumer.function_arn)  # type: ignore[union-attr]
        Validations.of(consumer).acknowledge(
            Acknowledgment(
                id="Serverless-LambdaEventSourceMappingDestination",
                reason=f"An SQS event source mapping takes no on-failure destination: the {self.name} "
                "queue's redrive policy moves a message its consumer keeps failing to the queue's "
                "dead-letter queue, which alarms.",
            )
        )

    @property
    def queue_visibility_seconds(self) -> int:
        return int(self.consumer_timeout.to_seconds() * VISIBILITY_FACTOR)


class Messaging(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        consumer_timeouts: dict[str, Duration] | None = None,
        queue_keys: Mapping[str, kms.IKey] | None = None,
    ) -> None:
        """`key` encrypts every queue but those given a key of their own in `queue_keys`."""
        super().__init__(scope, construct_id)
        timeouts = consumer_timeouts or QUEUE_CONSUMER_TIMEOUTS
        own_keys = queue_keys or {}
        self.queues: dict[str, WorkQueue] = {
            name: WorkQueue(
                self, f"{name.capitalize()}", name=name, key=own_keys.get(name, key), consumer_timeout=timeout
            )
            for name, timeout in timeouts.items()
        }

    @property
    def dlq_alarms(self) -> list[cloudwatch.Alarm]:
        return [queue.dlq_alarm for queue in self.queues.values()]
