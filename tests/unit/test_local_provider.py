"""The local provider, driven by the real openai and anthropic SDKs as the gateway drives them."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time

import anthropic
import httpx
import openai
import pytest
from local_cloud.provider import LocalProvider

QUESTION = "What is the weather in Lisbon?"
USER = [{"role": "user", "content": QUESTION}]
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}},
]
ANTHROPIC_TOOLS = [
    {"name": "search", "input_schema": {"type": "object", "properties": {}}},
    {"name": "weather", "input_schema": {"type": "object", "properties": {}}},
]


@pytest.fixture(scope="module")
def provider():
    with LocalProvider() as p:
        yield p


@pytest.fixture(autouse=True)
def _clean_switches(provider):
    provider.reset()


def oai(p: LocalProvider, name: str = "deepseek", timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-key", base_url=p.base_url(name), max_retries=0, timeout=timeout)


def anth(p: LocalProvider, timeout: float = 5.0) -> anthropic.Anthropic:
    base_url = p.base_url("anthropic")
    return anthropic.Anthropic(api_key="test-key", base_url=base_url, max_retries=0, timeout=timeout)


def ask(client: openai.OpenAI, model: str = "deepseek-chat", **kwargs):
    return client.chat.completions.create(model=model, messages=kwargs.pop("messages", USER), **kwargs)


def ask_anthropic(client: anthropic.Anthropic, **kwargs):
    kwargs.setdefault("max_tokens", 256)
    return client.messages.create(model="claude-haiku-4-5", messages=kwargs.pop("messages", USER), **kwargs)


def call_collecting_errors(client: openai.OpenAI, errors: list[Exception]) -> None:
    """For a call made in a thread: pytest only sees exceptions raised in the test's own thread."""
    try:
        ask(client)
    except openai.APIError as exc:
        errors.append(exc)


# ---- answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model"), [("deepseek", "deepseek-chat"), ("openai", "gpt-4.1-mini")])
def test_same_request_gets_the_same_echo_answer(provider, name, model):
    client = oai(provider, name)
    first, second = ask(client, model), ask(client, model)
    assert first.model_dump() == second.model_dump()
    assert first.id.startswith("chatcmpl-") and len(first.id) > 20
    assert first.choices[0].message.content == f"[{name}:{model}] echo: {QUESTION}"
    assert first.choices[0].finish_reason == "stop"
    assert first.model == model


def test_openai_usage_counts_a_token_per_four_characters_with_zero_cached(provider):
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    usage = ask(oai(provider, "openai"), "gpt-4.1", messages=messages).usage
    assert usage.prompt_tokens == math.ceil(len("Be brief." + QUESTION) / 4)
    assert usage.completion_tokens == math.ceil(len(f"echo: {QUESTION}") / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0


def test_max_tokens_cuts_the_reply_with_finish_reason_length(provider):
    answer = ask(oai(provider), max_tokens=2)
    assert answer.choices[0].message.content == "[deepseek:deepseek-chat] echo: Wh"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 2


def test_deepseek_reasoner_adds_reasoning_content_and_chat_does_not(provider):
    client = oai(provider)
    first, second = ask(client, "deepseek-reasoner"), ask(client, "deepseek-reasoner")
    reasoning = first.choices[0].message.model_extra["reasoning_content"]
    assert isinstance(reasoning, str) and reasoning
    assert second.choices[0].message.model_extra["reasoning_content"] == reasoning
    assert first.usage.completion_tokens_details.reasoning_tokens == math.ceil(len(reasoning) / 4)
    assert "reasoning_content" not in ask(client).choices[0].message.model_extra


def test_openai_tools_get_a_call_to_the_first_tool_with_the_user_text(provider):
    answer = ask(oai(provider), tools=OPENAI_TOOLS)
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_") and call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": QUESTION}
    assert answer.usage.completion_tokens > 0


def test_openai_named_tool_choice_is_obeyed_and_none_answers_in_text(provider):
    named = {"type": "function", "function": {"name": "weather"}}
    answer = ask(oai(provider, "openai"), "gpt-4.1", tools=OPENAI_TOOLS, tool_choice=named)
    assert answer.choices[0].message.tool_calls[0].function.name == "weather"
    plain = ask(oai(provider, "openai"), "gpt-4.1", tools=OPENAI_TOOLS, tool_choice="none")
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].finish_reason == "stop"


def test_openai_turn_after_a_tool_result_is_answered_in_text(provider):
    call = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    answer = ask(oai(provider), tools=OPENAI_TOOLS, messages=messages)
    assert answer.choices[0].message.content == f"[deepseek:deepseek-chat] echo: {QUESTION}"


def test_anthropic_answer_is_deterministic_with_usage_in_anthropic_shape(provider):
    client = anth(provider)
    first, second = ask_anthropic(client, system="Be brief."), ask_anthropic(client, system="Be brief.")
    assert first.model_dump() == second.model_dump()
    assert first.id.startswith("msg_01") and first.type == "message"
    assert first.content[0].text == f"[anthropic:claude-haiku-4-5] echo: {QUESTION}"
    assert first.stop_reason == "end_turn"
    assert first.usage.input_tokens == math.ceil(len("Be brief." + QUESTION) / 4)
    assert first.usage.output_tokens == math.ceil(len(f"echo: {QUESTION}") / 4)
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens == 0


def test_anthropic_max_tokens_cut_gives_stop_reason_max_tokens(provider):
    answer = ask_anthropic(anth(provider), max_tokens=1)
    assert answer.content[0].text == "[anthropic:claude-haiku-4-5] echo"
    assert answer.stop_reason == "max_tokens" and answer.usage.output_tokens == 1


def test_anthropic_tools_get_a_tool_use_block_then_text_after_the_result(provider):
    client = anth(provider)
    answer = ask_anthropic(client, tools=ANTHROPIC_TOOLS)
    block = answer.content[0]
    assert answer.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.id.startswith("toolu_") and block.name == "search"
    assert block.input == {"query": QUESTION}
    named = ask_anthropic(client, tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "weather"})
    assert named.content[0].name == "weather"
    result = {"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}
    messages = [
        *USER,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {"role": "user", "content": [result]},
    ]
    after = ask_anthropic(client, tools=ANTHROPIC_TOOLS, messages=messages)
    assert after.stop_reason == "end_turn" and after.content[0].type == "text"


def test_openai_compatible_providers_list_their_models(provider):
    assert "deepseek-reasoner" in [m.id for m in oai(provider).models.list()]
    assert "gpt-4.1" in [m.id for m in oai(provider, "openai").models.list()]


# ---- refusals -------------------------------------------------------------------------------------


def test_invalid_requests_get_400_in_each_providers_error_shape(provider):
    with pytest.raises(openai.BadRequestError) as empty:
        ask(oai(provider), messages=[])
    assert empty.value.body["message"].startswith("messages is required")  # the SDK unwraps "error"
    response = httpx.post(
        provider.base_url("anthropic") + "/v1/messages",
        json={"model": "claude-haiku-4-5", "messages": USER},
        headers={"x-api-key": "test-key"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }


def test_streaming_is_refused_with_400(provider):
    with pytest.raises(openai.BadRequestError, match="streaming not supported by the local provider"):
        ask(oai(provider), stream=True)
    with pytest.raises(anthropic.BadRequestError, match="streaming not supported by the local provider"):
        ask_anthropic(anth(provider), stream=True)


@pytest.mark.parametrize(("name", "path"), [("deepseek", "/chat/completions"), ("anthropic", "/v1/messages")])
def test_requests_without_an_api_key_get_401(provider, name, path):
    response = httpx.post(provider.base_url(name) + path, json={"model": "m", "messages": USER}, timeout=5)
    assert response.status_code == 401
    body = response.json()
    if name == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    else:
        assert body["error"]["code"] == "invalid_api_key"


def test_anthropic_accepts_the_x_api_key_header_too(provider):
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER}
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
    url = provider.base_url("anthropic") + "/v1/messages"
    response = httpx.post(url, json=body, headers=headers, timeout=5)
    assert response.status_code == 200 and response.json()["type"] == "message"


# ---- fault switches -------------------------------------------------------------------------------


def test_forced_429_carries_retry_after_then_clears_after_times(provider):
    provider.set_fault("openai", status=429, retry_after=2, times=1)
    client = oai(provider, "openai")
    with pytest.raises(openai.RateLimitError) as limited:
        ask(client, "gpt-4.1")
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.body["code"] == "rate_limit_exceeded"
    assert ask(client, "gpt-4.1").choices[0].finish_reason == "stop"
    assert provider.control()["faults"]["openai"]["status"] is None


def test_forced_503_retry_after_is_on_the_response_and_500_has_none(provider):
    provider.set_fault("deepseek", status=503, retry_after=0.5)
    with pytest.raises(openai.InternalServerError) as unavailable:
        oai(provider).chat.completions.with_raw_response.create(model="deepseek-chat", messages=USER)
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.headers["retry-after"] == "0.5"
    provider.set_fault("deepseek", status=500, retry_after=3)
    with pytest.raises(openai.InternalServerError) as broken:
        ask(oai(provider))
    assert "retry-after" not in broken.value.response.headers
    assert broken.value.body["type"] == "server_error"


def test_forced_anthropic_529_is_overloaded_error_and_400_invalid_request(provider):
    provider.set_fault("anthropic", status=529, times=2)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        ask_anthropic(anth(provider))
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "forced HTTP 529 by the local provider"},
    }
    with pytest.raises(anthropic.InternalServerError):
        ask_anthropic(anth(provider))
    assert ask_anthropic(anth(provider)).stop_reason == "end_turn"  # times=2 used up
    provider.set_fault("anthropic", status=400)
    with pytest.raises(anthropic.BadRequestError) as bad:
        ask_anthropic(anth(provider))
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_delay_holds_the_answer_then_answers_normally(provider):
    provider.set_fault("deepseek", delay_ms=200)
    started = time.monotonic()
    answer = ask(oai(provider))
    assert time.monotonic() - started >= 0.2
    assert answer.choices[0].message.content.endswith(QUESTION)


def test_hang_times_out_the_client_without_blocking_other_providers(provider):
    provider.set_fault("deepseek", hang=True)
    errors: list[Exception] = []
    hung = threading.Thread(target=call_collecting_errors, args=(oai(provider, timeout=0.6), errors))
    hung.start()
    while provider.request_count("deepseek") == 0:
        time.sleep(0.01)
    started = time.monotonic()
    assert ask(oai(provider, "openai"), "gpt-4.1").choices[0].finish_reason == "stop"
    assert ask_anthropic(anth(provider)).stop_reason == "end_turn"
    assert time.monotonic() - started < 0.5  # answered while the DeepSeek request is still held
    with pytest.raises(openai.APITimeoutError):
        ask(oai(provider, timeout=0.2))
    hung.join(timeout=3)
    assert [type(e) for e in errors] == [openai.APITimeoutError]


def test_hang_gives_up_after_hang_s_by_dropping_the_connection(provider):
    provider.set_fault("anthropic", hang=True, hang_s=0.2)
    started = time.monotonic()
    with pytest.raises(anthropic.APIConnectionError) as dropped:
        ask_anthropic(anth(provider, timeout=5))
    assert not isinstance(dropped.value, anthropic.APITimeoutError)
    assert 0.2 <= time.monotonic() - started < 2


def test_stop_is_prompt_while_a_request_hangs():
    errors: list[Exception] = []
    with LocalProvider() as p:
        p.set_fault("deepseek", hang=True)
        caller = threading.Thread(target=call_collecting_errors, args=(oai(p, timeout=10), errors))
        caller.start()
        while p.request_count("deepseek") == 0:
            time.sleep(0.01)
        started = time.monotonic()
        p.stop()
        assert time.monotonic() - started < 1
    caller.join(timeout=3)
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)


def test_malformed_body_is_a_200_the_sdks_cannot_parse(provider):
    provider.set_fault("openai", malformed=True)
    with pytest.raises(ValueError, match="Expecting"):  # json.JSONDecodeError from the SDK's parse
        ask(oai(provider, "openai"), "gpt-4.1")
    raw = oai(provider, "openai").chat.completions.with_raw_response.create(model="gpt-4.1", messages=USER)
    assert raw.http_response.status_code == 200  # the gateway's path: .json() fails on it
    with pytest.raises(ValueError):
        raw.http_response.json()
    provider.set_fault("anthropic", malformed=True)
    with pytest.raises(ValueError):
        ask_anthropic(anth(provider))


def test_drop_closes_the_connection_without_any_response(provider):
    provider.set_fault("deepseek", drop=True)
    provider.set_fault("anthropic", drop=True)
    with pytest.raises(openai.APIConnectionError) as dropped:
        ask(oai(provider))
    assert not isinstance(dropped.value, openai.APITimeoutError)
    with pytest.raises(anthropic.APIConnectionError):
        ask_anthropic(anth(provider))


def test_faults_apply_to_their_provider_only(provider):
    provider.set_fault("deepseek", status=500)
    assert ask(oai(provider, "openai"), "gpt-4.1").choices[0].finish_reason == "stop"
    with pytest.raises(openai.InternalServerError):
        ask(oai(provider))


# ---- control ----------------------------------------------------------------------------------------


def test_request_counts_are_per_provider_and_reset_clears_counts_and_switches(provider):
    ask(oai(provider))
    ask(oai(provider))
    ask_anthropic(anth(provider))
    provider.set_fault("openai", status=500)
    assert [provider.request_count(n) for n in ("deepseek", "openai", "anthropic")] == [2, 0, 1]
    provider.reset()
    assert provider.control()["requests"] == {"deepseek": 0, "openai": 0, "anthropic": 0}
    assert ask(oai(provider, "openai"), "gpt-4.1").choices[0].finish_reason == "stop"


def test_control_api_over_http_sets_reports_and_resets(provider):
    control = provider.url + "/_control"
    put = httpx.put(control + "/openai", json={"status": 503, "retry_after": 1, "times": 2}, timeout=5)
    assert put.status_code == 200
    state = httpx.get(control, timeout=5).json()
    assert state["faults"]["openai"] == {
        "delay_ms": 0, "status": 503, "retry_after": 1, "hang": False, "hang_s": 60.0,
        "malformed": False, "drop": False, "times": 2,
    }
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(oai(provider, "openai"), "gpt-4.1")
    assert ask(oai(provider, "openai"), "gpt-4.1").choices[0].finish_reason == "stop"
    assert httpx.get(control, timeout=5).json()["requests"]["openai"] == 3
    reset = httpx.delete(control, timeout=5).json()
    assert reset["requests"]["openai"] == 0 and reset["faults"]["openai"]["status"] is None


def test_control_api_rejects_unknown_switches_providers_and_bad_values(provider):
    control = provider.url + "/_control"
    assert httpx.put(control + "/openai", json={"explode": True}, timeout=5).status_code == 400
    assert httpx.put(control + "/openai", json={"hang": "yes"}, timeout=5).status_code == 400
    assert httpx.put(control + "/mistral", json={}, timeout=5).status_code == 404
    with pytest.raises(ValueError, match="status"):
        provider.set_fault("deepseek", status=200)
    with pytest.raises(ValueError, match="times"):
        provider.set_fault("deepseek", status=500, times=0)
    with pytest.raises(ValueError, match="unknown provider"):
        provider.set_fault("mistral", drop=True)


def test_cli_serves_until_sigterm_and_prints_the_base_urls():
    cli = [sys.executable, "-m", "local_cloud.provider", "--port", "0", "--quiet"]
    process = subprocess.Popen(cli, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own module
    try:
        lines = dict(process.stdout.readline().split() for _ in range(3))
        assert lines["anthropic"].endswith("/anthropic") and lines["openai"].endswith("/openai/v1")
        answer = ask(openai.OpenAI(api_key="k", base_url=lines["deepseek"], max_retries=0, timeout=5))
        assert answer.choices[0].message.content.startswith("[deepseek:deepseek-chat] ")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        process.stdout.close()
