"""The batch workflow's contract: statemachines/batch.asl.json run by moto's Step Functions interpreter.

A test of the state machine alone: its task functions are fakes (Python callables keyed by function
name) that follow docs/batch_contract.md. moto runs in-process (ThreadedMotoServer on a free port);
its interpreter invokes Lambda through that server (localhost:MOTO_PORT), and the invocation is
routed to the fakes: moto's no-Docker Lambda backend would only echo the event, so its `invoke` is the
full backend's, whose `_invoke_lambda` is patched. Every function has a `live` alias, as deployed, so
the ASL's alias ARNs resolve.

The definition runs as written, Retry intervals included: the one test that exercises the backend
retry waits for them (2 retries with full jitter, at most 6 s).

One gap of moto is filled as AWS behaves: its Distributed Map (the outer Map over chunks) does not
enforce ToleratedFailureCount/Percentage (default 0), so a failed child execution would be dropped
silently instead of failing the Map with States.ExceedToleratedFailureThreshold.
`local_cloud.moto_stepfunctions.enforce_tolerated_failures` adds that check (the local cloud applies it too).
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from local_cloud.moto_stepfunctions import enforce_tolerated_failures

from tests.infra.infra_helpers import ROOT

pytestmark = pytest.mark.xdist_group("moto-sfn")

ASL = ROOT / "statemachines" / "batch.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = ("batch", "safety", "router", "backend_deepseek", "backend_openai", "backend_anthropic")

TENANT = "acme"
PRINCIPAL = {"tenant_id": TENANT, "principal_id": "key_1", "kind": "api_key", "scopes": ["batch"]}
SAFETY = {"injection_threshold": 0.5, "canary": True}


class FakeError(Exception):
    """Raised by a fake: becomes a Lambda function error with this errorType."""

    def __init__(self, error_type: str, message: str = "fake failure") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass
class Call:
    function: str
    event: dict[str, Any]

    @property
    def step(self) -> str:
        """e.g. `safety:input`, `router:next`, `batch:record`, `backend_openai`."""
        kind = self.event.get("action") or self.event.get("stage")
        return f"{self.function}:{kind}" if kind and self.function in {"batch", "safety", "router"} else self.function


@dataclass
class Fakes:
    """The task functions of one test, and every call they received, in order."""

    handlers: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function: str, event: dict[str, Any]) -> tuple[str, bool, str]:
        with self.lock:
            self.calls.append(Call(function, event))
        try:
            return json.dumps(self.handlers[function](event)), False, ""
        except FakeError as exc:
            error = {"errorType": exc.error_type, "errorMessage": exc.message, "stackTrace": []}
            return json.dumps(error), True, ""

    def of(self, step: str) -> list[Call]:
        return [c for c in self.calls if c.step == step]

    def steps_of_line(self, line: int) -> list[str]:
        return [c.step for c in self.calls if line_of(c) == line]


def line_of(call: Call) -> int | None:
    """The item a call belongs to: every fake request body carries its line under `test.line`."""
    event = call.event
    if call.function == "batch":
        return event["state"]["item"]["line"] if event.get("action") == "record" else None
    if call.function == "router" and event.get("action") == "next":
        return event["route"]["test_line"]  # the fake router puts it there
    return event["request"]["test"]["line"]


# --- moto: server, Lambda routed to the fakes, functions with `live` aliases -----------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Moto:
    endpoint: str
    sfn: Any
    state_machine_arn: str
    fakes_slot: list[Fakes]

    def run(self, fakes: Fakes, execution_input: dict[str, Any], *, timeout_s: float = 60) -> dict[str, Any]:
        self.fakes_slot[0] = fakes
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=f"batch_{uuid.uuid4().hex[:24]}",
            input=json.dumps(execution_input),
        )["executionArn"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.05)
        raise AssertionError(f"the execution did not finish in {timeout_s} s")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    fakes_slot: list[Fakes] = [Fakes()]

    def invoke_fake(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        return fakes_slot[0].invoke(self.function_name, payload)

    port = _free_port()
    with pytest.MonkeyPatch.context() as patch:
        # moto's interpreter calls Lambda through this server: localhost:MOTO_PORT.
        patch.setenv("MOTO_PORT", str(port))
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(key, "testing")
        patch.setitem(default_user_config, "lambda", {"use_docker": False})
        patch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
        patch.setattr(LambdaSimpleBackend, "invoke", LambdaBackend.invoke)
        patch.setattr(LambdaFunction, "_invoke_lambda", invoke_fake)
        enforce_tolerated_failures(patch.setattr)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
            iam = session.client("iam", endpoint_url=endpoint)
            role = iam.create_role(
                RoleName="batch-workflow",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
            lambda_client = session.client("lambda", endpoint_url=endpoint)
            aliases = {}
            for name in FUNCTIONS:
                lambda_client.create_function(
                    FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.lambda_handler",
                    Code={"ZipFile": _zip()},
                )
                version = lambda_client.publish_version(FunctionName=name)["Version"]
                aliases[name] = lambda_client.create_alias(
                    FunctionName=name, Name="live", FunctionVersion=version
                )["AliasArn"]
            definition = ASL.read_text()
            for name, arn in aliases.items():
                definition = definition.replace(f"${{FunctionArn_{name}}}", arn)
            assert "${" not in definition
            sfn = session.client("stepfunctions", endpoint_url=endpoint)
            machine = sfn.create_state_machine(name="batch", definition=definition, roleArn=role)["stateMachineArn"]
            yield Moto(endpoint, sfn, machine, fakes_slot)
        finally:
            server.stop()


# --- the fakes of the task functions (docs/batch_contract.md) -------------------------------------------


def body(line: int, **test: Any) -> dict[str, Any]:
    """A request body; `test` says what the fakes do with it (and carries the line)."""
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": f"line {line}"}],
            "test": {"line": line, **test}}


def item(line: int, **test: Any) -> dict[str, Any]:
    return {"line": line, "custom_id": f"req-{line}", "body": body(line, **test)}


def completion(provider: str, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{provider}", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"from {provider}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


CHAIN = [{"provider": "deepseek", "model": "deepseek-chat"}, {"provider": "openai", "model": "gpt-4o-mini"},
         {"provider": "anthropic", "model": "claude-3-5-haiku"}]


def make_fakes(chunks: dict[str, list[dict[str, Any]]], *, failing_chunk: str | None = None,
               failing_finalize: bool = False) -> Fakes:
    fakes = Fakes()

    def batch(event: dict[str, Any]) -> Any:
        action = event["action"]
        if action == "load_chunk":
            if event["chunk"]["key"] == failing_chunk:
                raise FakeError("NoSuchKey", "the chunk is missing")
            return {"items": chunks[event["chunk"]["key"]]}
        if action == "record":
            state = event["state"]
            failed = "error" in state or state["input"]["blocked"] or state["output"]["blocked"]
            return {"kind": "error" if failed else "output"}
        if action == "finalize" and failing_finalize:
            raise FakeError("ConflictError", "the batch cannot be finalized")
        if action in {"finalize", "fail"}:
            status = "completed" if action == "finalize" else "failed"
            return {"id": event["batch_id"], "object": "batch", "status": status}
        raise AssertionError(f"unknown action {action}")

    def safety(event: dict[str, Any]) -> Any:
        request = event["request"]
        if event["stage"] == "input":
            blocked = bool(request["test"].get("blocked"))
            return {"blocked": blocked, "categories": ["prompt_injection"] if blocked else [], "signals": [],
                    "request": request, "redactions": {"placeholders": {"<EMAIL_1>": "a@b.c"}},
                    "canary": "canary-123", "moderation": None}
        return {"blocked": False, "categories": [], "completion": event["completion"], "canary_leaked": False}

    def router(event: dict[str, Any]) -> Any:
        if event["action"] == "route":
            test = event["request"]["test"]
            if test.get("refuse"):
                raise FakeError("PolicyViolationError", "the policy denies this model")
            chain = [dict(c) for c in CHAIN[: test.get("chain", 2)]]
            if test.get("provider"):
                chain[0]["provider"] = test["provider"]
            first, *rest = chain
            return {**first, "remaining": rest, "failures": [], "test_line": test["line"]}
        route = event["route"]
        failures = [*route["failures"], f"{route['provider']}: {event['error']['Error']}"]
        if not route["remaining"]:
            raise FakeError("UpstreamError", "; ".join(failures))
        first, *rest = route["remaining"]
        return {**first, "remaining": rest, "failures": failures, "test_line": route["test_line"]}

    def backend(provider: str) -> Callable[[dict[str, Any]], Any]:
        def call(event: dict[str, Any]) -> Any:
            error = event["request"]["test"].get("fail", {}).get(provider)
            if error:
                raise FakeError(error, f"{provider} failed")
            return completion(provider, event["model"])

        return call

    fakes.handlers = {
        "batch": batch,
        "safety": safety,
        "router": router,
        **{f"backend_{p}": backend(p) for p in ("deepseek", "openai", "anthropic")},
    }
    return fakes


def execution_input(chunks: dict[str, list[dict[str, Any]]], batch_id: str = "batch_test") -> dict[str, Any]:
    return {"tenant_id": TENANT, "batch_id": batch_id, "principal": PRINCIPAL, "safety": SAFETY,
            "chunks": [{"index": i, "key": key} for i, key in enumerate(chunks)]}


def chunk_key(index: int, batch_id: str = "batch_test") -> str:
    return f"{TENANT}/batches/{batch_id}/chunks/{index:05d}.json"


HAPPY = ["safety:input", "router:route", "backend_deepseek", "safety:output", "batch:record"]


# --- the tests --------------------------------------------------------------------------------------------


def test_every_item_runs_safety_router_backend_safety_record_in_order_then_finalize_once(moto: Moto) -> None:
    chunks = {chunk_key(0): [item(1), item(2), item(3)], chunk_key(1): [item(5), item(6)]}
    fakes = make_fakes(chunks)
    execution = moto.run(fakes, execution_input(chunks))
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"id": "batch_test", "object": "batch", "status": "completed"}

    for line in (1, 2, 3, 5, 6):
        assert fakes.steps_of_line(line) == HAPPY, line
    assert sorted(c.event["chunk"]["index"] for c in fakes.of("batch:load_chunk")) == [0, 1]
    steps = [c.step for c in fakes.calls]
    assert steps.count("batch:finalize") == 1 and steps[-1] == "batch:finalize"
    assert not fakes.of("batch:fail")


def test_the_tasks_receive_exactly_the_contract_events(moto: Moto) -> None:
    chunks = {chunk_key(0): [item(7)]}
    fakes = make_fakes(chunks)
    assert moto.run(fakes, execution_input(chunks))["status"] == "SUCCEEDED"
    request = body(7)
    verdict = fakes.handlers["safety"]({"stage": "input", "request": request})

    (load,) = fakes.of("batch:load_chunk")
    assert load.event == {"action": "load_chunk", "tenant_id": TENANT, "batch_id": "batch_test",
                          "chunk": {"index": 0, "key": chunk_key(0)}}
    (check_in, check_out) = fakes.of("safety:input") + fakes.of("safety:output")
    assert check_in.event == {"stage": "input", "tenant_id": TENANT, "request": request, "settings": SAFETY}
    (route,) = fakes.of("router:route")
    assert route.event == {"action": "route", "tenant_id": TENANT, "batch_id": "batch_test", "principal": PRINCIPAL,
                           "request": request, "line": 7}
    (call,) = [c for c in fakes.calls if c.function == "backend_deepseek"]
    assert call.event == {"request": request, "model": "deepseek-chat",
                          "idempotency_key": "batch_test:7:deepseek-chat"}
    assert check_out.event == {"stage": "output", "request": request,
                               "completion": completion("deepseek", "deepseek-chat"),
                               "redactions": verdict["redactions"], "canary": "canary-123", "settings": SAFETY}
    (record,) = fakes.of("batch:record")
    assert set(record.event) == {"action", "state"}
    state = record.event["state"]
    assert set(state) == {"tenant_id", "batch_id", "principal", "safety", "item", "input", "route", "completion",
                          "output"}
    assert state["item"] == item(7)
    assert state["input"] == verdict
    assert state["route"]["provider"] == "deepseek"
    (finalize,) = fakes.of("batch:finalize")
    assert finalize.event == {"action": "finalize", "tenant_id": TENANT, "batch_id": "batch_test"}


def test_a_retryable_provider_error_is_retried_then_the_next_provider_answers(moto: Moto) -> None:
    chunks = {chunk_key(0): [item(1, fail={"deepseek": "ProviderRetryableError"})]}
    fakes = make_fakes(chunks)
    assert moto.run(fakes, execution_input(chunks))["status"] == "SUCCEEDED"

    # One call and two retries (MaxAttempts 2), then the router's next candidate.
    assert fakes.steps_of_line(1) == [
        "safety:input", "router:route", "backend_deepseek", "backend_deepseek", "backend_deepseek",
        "router:next", "backend_openai", "safety:output", "batch:record",
    ]
    (next_call,) = fakes.of("router:next")
    assert next_call.event["error"]["Error"] == "ProviderRetryableError"
    assert json.loads(next_call.event["error"]["Cause"])["errorType"] == "ProviderRetryableError"
    assert next_call.event["route"]["provider"] == "deepseek"
    (openai,) = [c for c in fakes.calls if c.function == "backend_openai"]
    assert openai.event["model"] == "gpt-4o-mini"
    assert openai.event["idempotency_key"] == "batch_test:1:gpt-4o-mini"
    # The answered line carries no error: the failed attempt lives on in route.failures.
    (record,) = fakes.of("batch:record")
    state = record.event["state"]
    assert "error" not in state
    assert state["route"]["provider"] == "openai"
    assert state["route"]["failures"] == ["deepseek: ProviderRetryableError"]
    assert state["completion"]["model"] == "gpt-4o-mini"


def test_errors_end_in_record_with_the_error_and_no_more_work(moto: Moto) -> None:
    chunks = {
        chunk_key(0): [
            item(1, fail={"deepseek": "ProviderClientError"}),  # client error: no fallback
            item(2, fail={"deepseek": "UpstreamError"}),  # refused key: no fallback
            item(3, blocked=True),  # blocked input: no routing
            item(4, refuse=True),  # router refusal
        ],
        chunk_key(1): [
            item(5, fail={"deepseek": "ProviderTimeout", "openai": "ProviderTimeout"}),  # chain exhausted
            item(6, provider="mistral"),  # a provider without a backend function
            item(7),
        ],
    }
    fakes = make_fakes(chunks)
    assert moto.run(fakes, execution_input(chunks))["status"] == "SUCCEEDED"
    records = {c.event["state"]["item"]["line"]: c.event["state"] for c in fakes.of("batch:record")}

    # Every item reaches Record exactly once.
    assert sorted(line_of(c) for c in fakes.of("batch:record")) == [1, 2, 3, 4, 5, 6, 7]

    for line, error in ((1, "ProviderClientError"), (2, "UpstreamError")):
        assert fakes.steps_of_line(line) == ["safety:input", "router:route", "backend_deepseek", "batch:record"]
        assert records[line]["error"]["Error"] == error
        assert json.loads(records[line]["error"]["Cause"])["errorType"] == error
    assert fakes.steps_of_line(3) == ["safety:input", "batch:record"]
    assert records[3]["input"]["blocked"] is True and "error" not in records[3] and "route" not in records[3]
    assert fakes.steps_of_line(4) == ["safety:input", "router:route", "batch:record"]
    assert records[4]["error"]["Error"] == "PolicyViolationError"
    # Any other backend error moves to the next provider at once; the router ends the chain with UpstreamError.
    assert fakes.steps_of_line(5) == [
        "safety:input", "router:route", "backend_deepseek", "router:next", "backend_openai", "router:next",
        "batch:record",
    ]
    assert records[5]["error"]["Error"] == "UpstreamError"
    assert fakes.steps_of_line(6) == ["safety:input", "router:route", "batch:record"]
    assert records[6]["error"]["Error"] == "NoBackendError"
    assert fakes.steps_of_line(7) == HAPPY and "error" not in records[7]
    assert [c.step for c in fakes.calls][-1] == "batch:finalize"


def test_a_failed_chunk_costs_only_its_own_lines_and_finalize_still_runs(moto: Moto) -> None:
    # Given two chunks, the second of which cannot be loaded (its child execution fails)
    chunks = {chunk_key(0): [item(1)], chunk_key(1): [item(2)]}
    fakes = make_fakes(chunks, failing_chunk=chunk_key(1))
    # When the batch runs
    execution = moto.run(fakes, execution_input(chunks))
    # Then the first chunk's line is answered and Finalize runs once (it records the lost line as an error)
    assert execution["status"] == "SUCCEEDED"
    assert fakes.steps_of_line(1) == HAPPY
    assert len(fakes.of("batch:finalize")) == 1 and not fakes.of("batch:fail")


def test_a_finalize_that_keeps_failing_ends_in_the_fail_task(moto: Moto) -> None:
    # Given a batch whose finalize fails on every attempt
    chunks = {chunk_key(0): [item(1)]}
    fakes = make_fakes(chunks, failing_finalize=True)
    # When it runs
    execution = moto.run(fakes, execution_input(chunks))
    # Then the workflow fails the batch through the fail task, with the finalize error
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "BatchFailed"
    (fail,) = fakes.of("batch:fail")
    assert (fail.event["tenant_id"], fail.event["batch_id"]) == (TENANT, "batch_test")
    assert fail.event["error"]["Error"] == "ConflictError"
