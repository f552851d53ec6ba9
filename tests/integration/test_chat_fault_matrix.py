"""The fault matrix through the api handler, against the local provider's failure switches."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import FakeLambdaContext, api_event

CHAT = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello gateway"}]}


def call(api, body=CHAT, **kwargs):
    response = api.lambda_handler(api_event("POST", "/v1/chat/completions", body, **kwargs), FakeLambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = values[-1]
    return response["statusCode"], headers, response["body"]


def assert_openai_error(status, body, expected_status, code=None):
    assert status == expected_status
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in body
    if code:
        assert error["code"] == code
    return error


def test_healthy_deepseek_answers_with_provider_cost_and_request_id_headers(api, local_provider):
    status, headers, body = call(api)
    assert status == 200
    answer = json.loads(body)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "deepseek-chat"
    assert "Hello gateway" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["total_tokens"] > 0
    assert headers["x-gateway-provider"] == "deepseek"
    assert headers["x-gateway-fallbacks"] == "0"
    assert float(headers["x-gateway-cost-usd"]) > 0
    assert headers["x-request-id"]
    assert local_provider.request_count("openai") == 0


def test_reasoner_keeps_reasoning_content(api):
    status, _, body = call(api, {**CHAT, "model": "deepseek-reasoner"})
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["reasoning_content"]


def test_primary_500_is_answered_by_openai(api, local_provider):
    local_provider.set_fault("deepseek", status=500)
    status, headers, body = call(api)
    assert status == 200
    assert headers["x-gateway-provider"] == "openai"
    assert headers["x-gateway-fallbacks"] == "1"
    assert json.loads(body)["model"] == "gpt-4.1-mini"
    assert local_provider.request_count("deepseek") == 2  # one retry before the fallback


def test_429_with_retry_after_is_waited_for_then_the_same_provider_answers(api, local_provider):
    local_provider.set_fault("deepseek", status=429, retry_after=1, times=1)
    started = time.monotonic()
    status, headers, _ = call(api)
    assert status == 200
    assert headers["x-gateway-provider"] == "deepseek"
    assert time.monotonic() - started >= 1.0
    assert local_provider.request_count("openai") == 0


def test_hanging_provider_times_out_and_falls_back(api, local_provider):
    local_provider.set_fault("deepseek", hang=True)
    started = time.monotonic()
    status, headers, _ = call(api)
    assert status == 200
    assert headers["x-gateway-provider"] == "openai"
    assert time.monotonic() - started < 3.0  # two 0.5 s attempts, not the provider's hang


@pytest.mark.parametrize("fault", [{"malformed": True}, {"drop": True}, {"status": 503}, {"status": 529}])
def test_unusable_primary_answers_fall_back(api, local_provider, fault):
    local_provider.set_fault("deepseek", **fault)
    status, headers, _ = call(api)
    assert status == 200
    assert headers["x-gateway-provider"] == "openai"


def test_anthropic_answers_when_deepseek_and_openai_are_down(api, local_provider):
    local_provider.set_fault("deepseek", status=500)
    local_provider.set_fault("openai", status=503)
    status, headers, body = call(api, {**CHAT, "max_tokens": 200})
    assert status == 200
    assert headers["x-gateway-provider"] == "anthropic"
    assert headers["x-gateway-fallbacks"] == "2"
    answer = json.loads(body)
    assert answer["model"] == "claude-haiku-4-5"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] > 0


def test_tool_call_through_anthropic_comes_back_in_openai_shape(api, local_provider):
    local_provider.set_fault("deepseek", status=500)
    local_provider.set_fault("openai", status=500)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    status, _, body = call(api, {**CHAT, "tools": tools})
    assert status == 200
    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call_ = choice["message"]["tool_calls"][0]
    assert call_["function"]["name"] == "lookup"
    assert json.loads(call_["function"]["arguments"]) == {"query": "Hello gateway"}


def test_all_providers_down_is_a_502_in_openai_shape(api, local_provider):
    for name in ("deepseek", "openai", "anthropic"):
        local_provider.set_fault(name, status=500)
    status, headers, body = call(api)
    assert_openai_error(status, body, 502, "upstream_error")
    assert headers["x-request-id"]


def test_all_providers_hanging_is_a_504(api, local_provider, gateway_env):
    gateway_env.setenv("ATTEMPT_TIMEOUT_S", "0.2")
    gateway_env.setenv("ATTEMPTS_PER_PROVIDER", "1")
    from deepseek_gateway.web.services import reset_services

    reset_services()
    for name in ("deepseek", "openai", "anthropic"):
        local_provider.set_fault(name, hang=True)
    status, _, body = call(api)
    assert_openai_error(status, body, 504, "timeout")


def test_client_error_from_provider_is_returned_without_fallback(api, local_provider):
    local_provider.set_fault("deepseek", status=400)
    status, _, body = call(api)
    assert_openai_error(status, body, 400)
    assert local_provider.request_count("deepseek") == 1
    assert local_provider.request_count("openai") == 0
    assert local_provider.request_count("anthropic") == 0


def test_breaker_opens_skips_deepseek_and_closes_after_cooldown(api, local_provider, gateway_env):
    from deepseek_gateway.web.services import reset_services

    gateway_env.setenv("BREAKER_FAILURE_THRESHOLD", "2")
    gateway_env.setenv("BREAKER_COOLDOWN_S", "1")
    reset_services()
    local_provider.set_fault("deepseek", status=500)
    assert call(api)[1]["x-gateway-provider"] == "openai"  # two failures: open
    assert call(api)[1]["x-gateway-provider"] == "openai"
    assert local_provider.request_count("deepseek") == 2  # skipped while open
    local_provider.reset()
    time.sleep(1.1)
    assert call(api)[1]["x-gateway-provider"] == "deepseek"  # half-open trial succeeds: closed


def test_malformed_json_body_is_a_400(api):
    status, _, body = call(api, raw_body='{"model": "deepseek-chat", ')
    assert_openai_error(status, body, 400, "invalid_json")


def test_wrong_type_is_a_400_naming_the_parameter(api):
    status, _, body = call(api, {**CHAT, "max_tokens": "many"})
    assert assert_openai_error(status, body, 400)["param"] == "max_tokens"


def test_oversize_body_is_a_413(api, gateway_env):
    from deepseek_gateway.web.services import reset_services

    gateway_env.setenv("MAX_REQUEST_BYTES", "1000")
    reset_services()
    status, _, body = call(api, {**CHAT, "messages": [{"role": "user", "content": "x" * 2000}]})
    assert_openai_error(status, body, 413, "request_too_large")


def test_unknown_model_is_404_model_not_found(api, local_provider):
    status, _, body = call(api, {**CHAT, "model": "deepseek-v99"})
    assert_openai_error(status, body, 404, "model_not_found")
    assert local_provider.request_count("deepseek") == 0


def test_unknown_route_is_404_in_openai_shape(api):
    response = api.lambda_handler(api_event("GET", "/v1/nothing-here"), FakeLambdaContext())
    assert_openai_error(response["statusCode"], response["body"], 404)


@pytest.fixture
def json_logs():
    """What the gateway's logger writes, formatted exactly as in Lambda (Powertools' JSON formatter)."""
    import io
    import logging

    from deepseek_gateway.observability import logger

    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield sink
    logger.removeHandler(handler)


def test_logs_carry_the_request_id_but_never_the_prompt_or_keys(api, json_logs, local_provider):
    local_provider.set_fault("deepseek", status=500, times=1)
    secret_prompt = "my-secret-prompt-text-4711"
    status, headers, _ = call(api, {**CHAT, "messages": [{"role": "user", "content": secret_prompt}]})
    assert status == 200
    logs = json_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "chat completion served" for line in lines)
    assert all(line.get("request_id") == headers["x-request-id"] for line in lines if "request_id" in line)
    assert secret_prompt not in logs
    assert "local-deepseek-key" not in logs and "sk-demo" not in logs
