"""The api function: API Gateway REST proxy events → the gateway's HTTP surface."""

from aws_lambda_powertools.logging import correlation_paths
from deepseek_gateway.observability import logger, metrics, tracer
from deepseek_gateway.web.app import resolve


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return resolve(event, context)
