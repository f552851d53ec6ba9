"""The safety function: a Step Functions task event → the safety layer's verdict as JSON.

The same core the api function calls in-process (`deepseek_gateway.safety`); see
`deepseek_gateway.safety.task` for the event and result shapes. The result holds the redaction
mapping (the original values), so the tracer never captures it.
"""

from deepseek_gateway.observability import logger, metrics, tracer
from deepseek_gateway.safety.seeds import tenant_canary_seeds, tenant_moderators
from deepseek_gateway.safety.task import run_task


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return run_task(event, seeds=tenant_canary_seeds(), moderators=tenant_moderators())
