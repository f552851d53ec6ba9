"""The notifier function: the notifications queue → tenants' webhooks, email (SES) and SMS (SNS).

Partial batch responses: a record that fails is listed in `batchItemFailures` and comes back from
SQS later (with a backoff, see `deepseek_gateway.notifications.consumer`), then goes to the DLQ
after maxReceiveCount; the other records of the batch are done. When every record fails the
response lists them all instead of raising, so an outage of tenants' endpoints is not counted as
function errors (which the deployment's alarms and canary watch).
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from deepseek_gateway.notifications.consumer import QueueMessage
from deepseek_gateway.notifications.runtime import get_consumer
from deepseek_gateway.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    get_consumer().consume(QueueMessage.from_sqs_record(record.raw_event),
                           time_left_s=lambda_context.get_remaining_time_in_millis() / 1000)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
