"""The router function: a batch line's provider chain (`route`), or the next provider after a failure (`next`).

See `deepseek_gateway.batches.routing_task` for the events and results. Refusals (cancelled or expired
batch, policy, budget, no provider) leave as exceptions: Lambda reports the class name as the error
type, which is the name the state machine and the `record` step match.
"""

from deepseek_gateway.batches.task_runtime import run_routing
from deepseek_gateway.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    return run_routing(event)
