"""moto's Step Functions interpreter, mended where the batch workflow needs it to behave as AWS does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def enforce_tolerated_failures(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """AWS fails a Distributed Map whose failed child executions exceed the tolerated failures
    (States.ExceedToleratedFailureThreshold, 0 by default); moto drops the failed children and goes on, so a
    batch whose chunk failed would be finalized as if nothing happened. `setattr_` lets a test undo it."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    map_run = DistributedIterationComponent._map_run

    def map_run_with_tolerated_failures(self: Any, env: Any, eval_input: Any) -> None:
        map_run(self, env, eval_input)
        items = eval_input.map_run_record.item_counter
        failed, total = items.failed.get() + items.timed_out.get(), items.total.get()
        count, percentage = eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        share = 100.0 * failed / total if total else 0.0
        # Either limit applies when it alone is set, the first one exceeded when both are; none tolerates nothing.
        if count and percentage:
            exceeded = failed > count or share > percentage
        elif count or percentage:
            exceeded = failed > count if count else share > percentage
        else:
            exceeded = failed > 0
        if exceeded:
            env.stack.pop()  # the outputs
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
            cause = f"{failed} of {total} child executions failed"
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(
                        mapRunFailedEventDetails=MapRunFailedEventDetails(error=error, cause=cause)
                    ),
                )
            )

    if getattr(DistributedIterationComponent._map_run, "_tolerated", False):
        return
    map_run_with_tolerated_failures._tolerated = True  # type: ignore[attr-defined]
    setattr_(DistributedIterationComponent, "_map_run", map_run_with_tolerated_failures)


def child_events_in_parent_history() -> None:
    """A Distributed Map's child executions leave their events in the parent execution's history.

    In AWS each child execution has its own history (listed under the map run). moto runs the children
    with a fresh event manager and throws it away, so a local run shows no trace of the items' states:
    nothing to debug with, nothing to count state transitions with (`make bench-batch`). Here each child
    event is also appended to the parent's history, renumbered there, without its details (inputs and
    outputs of every item's states would hold the whole batch in memory twice): type, ids and time.
    """

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    component = distributed.DistributedIterationComponent
    if getattr(component._eval_body, "_child_events", False):
        return
    parents = threading.local()

    class _ChildEventManager(EventManager):
        def __init__(self, parent: EventManager) -> None:
            super().__init__()
            self._parent = parent

        def _publish_history_event(self, event_id: int, source_event_id: int, event_type: Any, timestamp: Any,
                                   event_details: Any) -> None:
            super()._publish_history_event(event_id=event_id, source_event_id=source_event_id,
                                           event_type=event_type, timestamp=timestamp, event_details=event_details)
            parent = self._parent
            with parent._mutex:
                parent._history_event_list.append(parent._create_history_event(
                    event_id=parent._event_id_gen.get(), source_event_id=0, event_type=event_type,
                    timestamp=timestamp, event_details=None))

    original_eval_body = component._eval_body
    original_map_run = component._map_run

    def eval_body(self: Any, env: Any) -> Any:
        parents.manager = env.event_manager
        return original_eval_body(self, env)

    def map_run(self: Any, env: Any, eval_input: Any) -> Any:
        parent = getattr(parents, "manager", None)
        if parent is not None and type(env.event_manager) is EventManager:
            env.event_manager = _ChildEventManager(parent)
        return original_map_run(self, env, eval_input)

    eval_body._child_events = True  # type: ignore[attr-defined]
    component._eval_body = eval_body  # type: ignore[method-assign]
    component._map_run = map_run  # type: ignore[method-assign]


def one_step_functions_backend() -> None:
    """With `execute_state_machine` on, moto's Step Functions API uses its interpreter's backend, but its
    CloudFormation still creates state machines in the plain one: the template's state machines would be
    invisible to StartExecution. Both now use the interpreter's backend."""
    import moto.stepfunctions.models as plain
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    plain.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
