"""The batch function: the batch workflow's bookkeeping tasks (load_chunk, record, finalize, fail).

A thin adapter over `deepseek_gateway.batches.tasks`; see docs/batch_contract.md for the events. The
results carry completions, so the tracer never captures them.
"""

from deepseek_gateway.batches.runtime import get_task_services
from deepseek_gateway.batches.tasks import run_task
from deepseek_gateway.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: object) -> dict:
    logger.append_keys(action=event.get("action"), batch_id=event.get("batch_id")
                       or (event.get("state") or {}).get("batch_id"))
    return run_task(event, get_task_services())
