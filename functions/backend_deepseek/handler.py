"""The DeepSeek backend: one call to DeepSeek for a batch line (see `deepseek_gateway.batches.backend_task`).

The result is a chat completion with the answer's content, so the tracer never captures it. Failures
leave as exceptions whose class name is the error the state machine matches (ProviderRetryableError,
ProviderClientError, UpstreamError).
"""

from deepseek_gateway.batches.task_runtime import run_backend
from deepseek_gateway.observability import logger, metrics, tracer

PROVIDER = "deepseek"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return run_backend(event, PROVIDER, context)
