"""The ingestion function: the ingestion queue (S3 upload notifications, `batch.submitted`) → started batches.

See `deepseek_gateway.batches.ingestion`. Partial batch responses: a record that fails is listed in
`batchItemFailures` and comes back from SQS after its visibility timeout, then goes to the DLQ after
maxReceiveCount; the other records of the batch are done. A batch whose records all fail is answered
the same way rather than raised, so SQS retries only what failed.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from deepseek_gateway.batches.ingestion_runtime import get_ingestion
from deepseek_gateway.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    get_ingestion(lambda_context).handle(record.body, message_id=record.message_id)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
