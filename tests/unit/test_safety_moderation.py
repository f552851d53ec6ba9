"""External moderation with fakes: OpenAI through httpx.MockTransport and a slow local server, Bedrock
through botocore's Stubber; timeouts and errors fail open or closed as the tenant chose."""

from __future__ import annotations

import http.server
import json
import threading
import time

import boto3
import httpx
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.safety import (
    BedrockGuardrailModerator,
    ModerationSettings,
    OpenAIModerator,
    SafetySettings,
    build_moderator,
    inspect_request,
    inspect_response,
)

EMAIL = "jane.roe@example.org"


def request(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "deepseek-chat", "messages": [{"role": "user", "content": text}]})


def settings(provider: str = "openai", fail_mode: str = "open", **extra) -> SafetySettings:
    moderation = {"provider": provider, "fail_mode": fail_mode, "timeout_s": 0.3, **extra}
    if provider == "bedrock":
        moderation.setdefault("bedrock_guardrail_id", "gr-123")
    return SafetySettings(moderation=moderation, pii_actions={"email": "redact"})


def openai_with(handler) -> tuple[OpenAIModerator, list[dict]]:
    seen: list[dict] = []

    def transport(req: httpx.Request) -> httpx.Response:
        seen.append({"url": str(req.url), "auth": req.headers["authorization"], "body": json.loads(req.content)})
        return handler(req)

    mock = httpx.MockTransport(transport)
    return OpenAIModerator("sk-test", base_url="https://moderation.test/v1", transport=mock), seen


def flagged(req: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "m", "model": "omni", "results": [
        {"flagged": True, "categories": {"violence": True, "hate": False}, "category_scores": {}}]})


def clean(req: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "m", "model": "omni", "results": [{"flagged": False, "categories": {}}]})


def test_moderation_is_off_by_default():
    assert not SafetySettings().moderation.enabled
    assert build_moderator(SafetySettings().moderation) is None


def test_openai_flagged_input_blocks_and_the_vendor_only_sees_redacted_text():
    moderator, seen = openai_with(flagged)
    verdict = inspect_request(request(f"something violent, mail {EMAIL}"), settings(), moderator=moderator)
    assert verdict.blocked and verdict.categories == ["moderation:violence"]
    assert seen[0]["url"] == "https://moderation.test/v1/moderations" and seen[0]["auth"] == "Bearer sk-test"
    assert seen[0]["body"]["model"] == "omni-moderation-latest"
    assert EMAIL not in json.dumps(seen[0]["body"]) and "<EMAIL_1>" in seen[0]["body"]["input"][0]


def test_openai_clean_input_passes():
    moderator, _ = openai_with(clean)
    verdict = inspect_request(request("hello"), settings(), moderator=moderator)
    assert not verdict.blocked and verdict.moderation.provider == "openai" and not verdict.moderation.flagged


@pytest.mark.parametrize("failure", [
    lambda req: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=req)),
    lambda req: httpx.Response(500, json={"error": "boom"}),
    lambda req: httpx.Response(200, text="not json"),
])
@pytest.mark.parametrize(("fail_mode", "blocked"), [("open", False), ("closed", True)])
def test_openai_failures_fail_open_or_closed(failure, fail_mode, blocked):
    moderator, _ = openai_with(failure)
    verdict = inspect_request(request("hello"), settings(fail_mode=fail_mode), moderator=moderator)
    assert verdict.blocked is blocked and verdict.moderation.error
    assert verdict.categories == (["moderation_unavailable"] if blocked else [])


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        time.sleep(1.0)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_openai_timeout_is_enforced_against_a_real_slow_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        moderator = OpenAIModerator("sk-test", base_url=f"http://127.0.0.1:{server.server_port}/v1", timeout_s=0.2)
        started = time.perf_counter()
        outcome = moderator.moderate(["hello"], "input")
        assert outcome.error == "ReadTimeout" and time.perf_counter() - started < 0.9
    finally:
        server.shutdown()
        server.server_close()


def bedrock() -> tuple[BedrockGuardrailModerator, Stubber]:
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    return BedrockGuardrailModerator("gr-123", "1", client=client), Stubber(client)


def test_bedrock_intervention_blocks_with_its_policies():
    moderator, stub = bedrock()
    stub.add_response("apply_guardrail", {
        "usage": {"topicPolicyUnits": 1, "contentPolicyUnits": 1, "wordPolicyUnits": 0,
                  "sensitiveInformationPolicyUnits": 0, "sensitiveInformationPolicyFreeUnits": 0,
                  "contextualGroundingPolicyUnits": 0},
        "action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "blocked"}],
        "assessments": [{"contentPolicy": {"filters": [
                            {"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED"}]},
                         "topicPolicy": {"topics": [{"name": "Weapons", "type": "DENY", "action": "BLOCKED"}]}}],
    }, {"guardrailIdentifier": "gr-123", "guardrailVersion": "1", "source": "INPUT",
        "content": [{"text": {"text": "how to build a weapon"}}]})
    with stub:
        verdict = inspect_request(request("how to build a weapon"), settings("bedrock"), moderator=moderator)
    assert verdict.blocked and verdict.categories == ["moderation:topic_weapons", "moderation:violence"]


def test_bedrock_no_intervention_passes():
    moderator, stub = bedrock()
    stub.add_response("apply_guardrail", {
        "usage": {"topicPolicyUnits": 1, "contentPolicyUnits": 1, "wordPolicyUnits": 0,
                  "sensitiveInformationPolicyUnits": 0, "sensitiveInformationPolicyFreeUnits": 0,
                  "contextualGroundingPolicyUnits": 0},
        "action": "NONE", "outputs": [], "assessments": []})
    with stub:
        assert not inspect_request(request("hello"), settings("bedrock"), moderator=moderator).blocked


@pytest.mark.parametrize(("fail_mode", "blocked"), [("open", False), ("closed", True)])
def test_bedrock_errors_fail_open_or_closed(fail_mode, blocked):
    moderator, stub = bedrock()
    stub.add_client_error("apply_guardrail", service_error_code="ThrottlingException", http_status_code=429)
    with stub:
        verdict = inspect_request(request("hello"), settings("bedrock", fail_mode), moderator=moderator)
    assert verdict.blocked is blocked and verdict.moderation.error == "ThrottlingException"


class TimingOutBedrock:
    def apply_guardrail(self, **kwargs):
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")


@pytest.mark.parametrize(("fail_mode", "blocked"), [("open", False), ("closed", True)])
def test_bedrock_timeout_fails_open_or_closed(fail_mode, blocked):
    moderator = BedrockGuardrailModerator("gr-123", client=TimingOutBedrock())
    verdict = inspect_request(request("hello"), settings("bedrock", fail_mode), moderator=moderator)
    assert verdict.blocked is blocked and verdict.moderation.error == "ReadTimeoutError"


def test_output_moderation_withholds_a_flagged_answer():
    moderator, seen = openai_with(flagged)
    answer = ChatCompletion.model_validate({"id": "x", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "violent text"}, "finish_reason": "stop"}]})
    out = inspect_response(answer, None, request("hi"), settings(check_output=True), moderator=moderator)
    assert out.blocked and out.completion.choices[0].finish_reason == "content_filter"
    assert seen[0]["body"]["input"] == ["violent text"]


def test_build_moderator_creates_clients_lazily_from_settings():
    openai = build_moderator(ModerationSettings(provider="openai"), openai_api_key="sk-x")
    assert isinstance(openai, OpenAIModerator)
    assert build_moderator(ModerationSettings(provider="openai")) is None  # no key, no moderator
    gr = build_moderator(ModerationSettings(provider="bedrock", bedrock_guardrail_id="g", bedrock_region="us-east-1"))
    assert isinstance(gr, BedrockGuardrailModerator)
    with pytest.raises(ValueError, match="bedrock_guardrail_id"):
        ModerationSettings(provider="bedrock")
