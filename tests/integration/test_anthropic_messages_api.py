"""The real Anthropic SDK against POST /v1/messages in-process: answers match /v1/chat/completions', errors
are typed and Anthropic-shaped, streams parse.

The local provider is deterministic: the same request answers the same text, so each Messages answer is
compared with what /v1/chat/completions answers for the equivalent OpenAI request.
"""

from __future__ import annotations

import json
import re

import anthropic
import pytest

from tests.helpers import ADMIN_PRINCIPAL, FakeLambdaContext, api_event
from tests.sdk_bridge import anthropic_client

# A 1x1 transparent PNG.
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
LOOKUP_TOOL = {
    "name": "lookup",
    "description": "Look a word up in the dictionary.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               503: "overloaded_error", 529: "overloaded_error"}
STREAM_ORDER = re.compile(
    r"message_start( content_block_start( content_block_delta)* content_block_stop)+ message_delta message_stop"
)


@pytest.fixture
def client(api):
    return anthropic_client(api)


def invoke(api, path, body, **kwargs):
    """Status, lower-cased headers and body text of one raw REST proxy event through the handler."""
    response = api.lambda_handler(api_event("POST", path, body, **kwargs), FakeLambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = values[-1]
    return response["statusCode"], headers, response.get("body") or ""


def chat_completion(api, body):
    """What /v1/chat/completions answers for an OpenAI request (must be a 200)."""
    status, _, text = invoke(api, "/v1/chat/completions", body)
    assert status == 200, text
    return json.loads(text)


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def assert_anthropic_error(status, body, expected_status):
    """The body is Anthropic's error shape, with the type that goes with the status."""
    assert status == expected_status, body
    payload = body if isinstance(body, dict) else json.loads(body)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == ERROR_TYPES[expected_status]
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"].strip()
    return payload["error"]


def assert_sdk_error(caught, expected_status):
    error = caught.value
    assert error.status_code == expected_status
    return assert_anthropic_error(error.status_code, error.body, expected_status)


# --- plain messages ------------------------------------------------------------------------------


def test_given_a_system_prompt_when_a_message_is_created_then_it_answers_as_chat_completions_does(api, client):
    system, question = "You are terse.", "What is the capital of France?"
    raw = client.messages.with_raw_response.create(
        model="deepseek-chat", max_tokens=256, system=system, messages=[{"role": "user", "content": question}]
    )
    message = raw.parse()
    chat = chat_completion(api, {"model": "deepseek-chat", "max_tokens": 256, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": question}]})

    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == chat["model"] == "deepseek-chat"
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == chat["choices"][0]["message"]["content"]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    usage = raw.http_response.json()["usage"]
    assert {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"} <= set(usage)
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == chat["usage"]["prompt_tokens"]
    assert usage["output_tokens"] == chat["usage"]["completion_tokens"]
    assert raw.headers.get("x-request-id")
    assert message._request_id == raw.headers["x-request-id"]  # the SDK reads the `request-id` header


def test_given_an_alias_of_an_anthropic_model_when_asked_then_it_reports_the_model_chat_completions_reports(
    api, client
):
    message = client.messages.create(
        model="claude-haiku", max_tokens=128, messages=[{"role": "user", "content": "Hello Claude"}]
    )
    chat = chat_completion(api, {"model": "claude-haiku", "max_tokens": 128,
                                 "messages": [{"role": "user", "content": "Hello Claude"}]})
    assert message.model == chat["model"]
    assert text_of(message) == chat["choices"][0]["message"]["content"]
    assert message.usage.output_tokens == chat["usage"]["completion_tokens"]


def test_given_a_multi_turn_conversation_and_a_system_of_text_blocks_when_asked_then_the_answer_matches_chat(
    api, client
):
    system = [{"type": "text", "text": "You are a geography tutor."}, {"type": "text", "text": "Be brief."}]
    message = client.messages.create(
        model="deepseek-chat",
        max_tokens=200,
        system=system,
        messages=[
            {"role": "user", "content": "Name a river in Egypt."},
            # A thinking block on an assistant turn is ignored on input.
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "Easy one.", "signature": "sig"},
                                              {"type": "text", "text": "The Nile."}]},
            {"role": "user", "content": [{"type": "text", "text": "And one in France?"}]},
            {"role": "assistant", "content": "The Loire."},
            {"role": "user", "content": "Which is longer?"},
        ],
    )
    chat = chat_completion(api, {"model": "deepseek-chat", "max_tokens": 200, "messages": [
        {"role": "system", "content": "You are a geography tutor.\nBe brief."},
        {"role": "user", "content": "Name a river in Egypt."},
        {"role": "assistant", "content": "The Nile."},
        {"role": "user", "content": "And one in France?"},
        {"role": "assistant", "content": "The Loire."},
        {"role": "user", "content": "Which is longer?"},
    ]})
    assert text_of(message) == chat["choices"][0]["message"]["content"]
    assert "Which is longer?" in text_of(message)
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == chat["usage"]["completion_tokens"]


def test_given_a_small_max_tokens_when_the_answer_is_cut_then_stop_reason_is_max_tokens(api, client):
    question = "Please repeat this rather long sentence back to me, word for word, without changes."
    message = client.messages.create(model="deepseek-chat", max_tokens=3,
                                     messages=[{"role": "user", "content": question}])
    chat = chat_completion(api, {"model": "deepseek-chat", "max_tokens": 3,
                                 "messages": [{"role": "user", "content": question}]})
    assert chat["choices"][0]["finish_reason"] == "length"
    assert message.stop_reason == "max_tokens"
    assert text_of(message) == chat["choices"][0]["message"]["content"]


def test_given_sampling_options_stop_sequences_and_metadata_when_sent_then_they_are_accepted(api, client):
    message = client.messages.create(
        model="deepseek-chat", max_tokens=64, messages=[{"role": "user", "content": "Hi there"}],
        stop_sequences=["\n\nHuman:"], metadata={"user_id": "user-42"},
        # anthropic 2.x's create() no longer names the sampling options; the API still takes them.
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},
    )
    chat = chat_completion(api, {"model": "deepseek-chat", "max_tokens": 64,
                                 "messages": [{"role": "user", "content": "Hi there"}]})
    assert text_of(message) == chat["choices"][0]["message"]["content"]
    assert message.stop_reason == "end_turn"


def test_given_extended_thinking_on_a_claude_model_when_asked_then_it_answers(api, client):
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then say hello"}],
    )
    assert message.model == "claude-haiku-4-5"
    assert "Think, then say hello" in text_of(message)


def test_given_the_primary_provider_fails_when_asked_then_model_names_the_fallback_that_answered(
    client, local_provider
):
    local_provider.set_fault("deepseek", status=500)
    message = client.messages.create(model="deepseek-chat", max_tokens=64,
                                     messages=[{"role": "user", "content": "Hello gateway"}])
    assert message.model == "gpt-4.1-mini"
    assert "Hello gateway" in text_of(message)


# --- tools ---------------------------------------------------------------------------------------
# The local provider calls a tool whenever the request offers tools, tool_choice is not "none" and the last
# turn is a new user turn: the named tool (tool_choice "tool"), else the first, with {"query": <last user
# text>}. A turn that answers with tool results gets text.


@pytest.mark.parametrize("model", ["deepseek-chat", "claude-haiku-4-5"])
@pytest.mark.parametrize(
    ("tool_choice", "called"),
    [(None, "get_weather"), ({"type": "auto"}, "get_weather"), ({"type": "any"}, "get_weather"),
     ({"type": "tool", "name": "lookup"}, "lookup"), ({"type": "none"}, None)],
)
def test_given_tools_when_the_model_calls_one_then_the_answer_is_a_tool_use_block(client, model, tool_choice,
                                                                                 called):
    question = "What is the weather in Paris?"
    extra = {"tool_choice": tool_choice} if tool_choice else {}
    message = client.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL, LOOKUP_TOOL],
                                     messages=[{"role": "user", "content": question}], **extra)
    if called is None:  # tool_choice "none": the model may not call a tool, so it answers with text
        assert message.stop_reason == "end_turn"
        assert [block.type for block in message.content] == ["text"]
        return
    assert message.stop_reason == "tool_use"
    uses = [block for block in message.content if block.type == "tool_use"]
    assert len(uses) == 1
    assert uses[0].name == called
    assert isinstance(uses[0].id, str) and uses[0].id
    assert uses[0].input == {"query": question}


@pytest.mark.parametrize("model", ["deepseek-chat", "claude-haiku-4-5"])
@pytest.mark.parametrize("result", ["18 degrees and sunny", [{"type": "text", "text": "18 degrees and sunny"}]])
def test_given_a_tool_call_when_its_result_is_sent_back_then_the_model_answers_with_text(api, client, model, result):
    question = "What is the weather in Paris?"
    first = client.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL],
                                   messages=[{"role": "user", "content": question}])
    call = next(block for block in first.content if block.type == "tool_use")

    second = client.messages.create(
        model=model, max_tokens=256, tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name,
                                               "input": call.input}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": result, "is_error": False}]},
        ],
    )
    openai_tools = [{"type": "function", "function": {"name": WEATHER_TOOL["name"],
                                                      "description": WEATHER_TOOL["description"],
                                                      "parameters": WEATHER_TOOL["input_schema"]}}]
    chat = chat_completion(api, {"model": model, "max_tokens": 256, "tools": openai_tools, "messages": [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [{"id": call.id, "type": "function", "function": {
            "name": call.name, "arguments": json.dumps(call.input)}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]})
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]
    assert text_of(second) == chat["choices"][0]["message"]["content"]


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "source"),
    [("gpt-4.1-mini", {"type": "base64", "media_type": "image/png", "data": TINY_PNG}),
     ("claude-haiku-4-5", {"type": "base64", "media_type": "image/png", "data": TINY_PNG}),
     ("claude-haiku-4-5", {"type": "url", "url": "https://example.com/cat.png"})],
)
def test_given_an_image_when_sent_to_a_vision_model_then_it_answers(api, client, model, source):
    message = client.messages.create(model=model, max_tokens=128, messages=[{"role": "user", "content": [
        {"type": "image", "source": source}, {"type": "text", "text": "What is in this picture?"}]}])
    url = source.get("url") or f"data:image/png;base64,{TINY_PNG}"
    chat = chat_completion(api, {"model": model, "max_tokens": 128, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What is in this picture?"}]}]})
    assert message.stop_reason == "end_turn"
    assert text_of(message) == chat["choices"][0]["message"]["content"]


def test_given_an_image_when_sent_to_a_model_without_vision_then_it_is_a_bad_request(client, local_provider):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="deepseek-chat", max_tokens=128, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TINY_PNG}},
            {"type": "text", "text": "What is in this picture?"}]}])
    error = assert_sdk_error(caught, 400)
    assert "image" in error["message"].lower()
    assert local_provider.request_count("deepseek") == 0


# --- streaming -----------------------------------------------------------------------------------

STREAMED = {"max_tokens": 256, "system": "You are helpful.",
            "messages": [{"role": "user", "content": "Stream this please, it is a fairly long sentence to be cut up."}]}


@pytest.mark.parametrize("model", ["deepseek-chat", "deepseek-reasoner", "claude-haiku-4-5"])
def test_given_messages_stream_when_consumed_then_text_and_final_message_equal_the_plain_answer(client, model):
    plain = client.messages.create(model=model, **STREAMED)
    with client.messages.stream(model=model, **STREAMED) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == text_of(plain)
    assert [block.model_dump() for block in final.content] == [block.model_dump() for block in plain.content]
    assert final.stop_reason == plain.stop_reason == "end_turn"
    assert final.model == plain.model
    assert final.id.startswith("msg_")
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_given_create_with_stream_true_when_iterated_then_events_come_in_anthropic_order(client):
    plain = client.messages.create(model="deepseek-chat", **STREAMED)
    events = [event for event in client.messages.create(model="deepseek-chat", stream=True, **STREAMED)
              if event.type != "ping"]
    assert STREAM_ORDER.fullmatch(" ".join(event.type for event in events)), [e.type for e in events]
    start = events[0].message
    assert start.id.startswith("msg_") and start.role == "assistant" and start.content == []
    assert start.model == plain.model
    deltas = [event.delta for event in events if event.type == "content_block_delta"]
    assert all(delta.type == "text_delta" for delta in deltas)
    assert "".join(delta.text for delta in deltas) == text_of(plain)
    end = next(event for event in events if event.type == "message_delta")
    assert end.delta.stop_reason == "end_turn"
    assert end.usage.output_tokens == plain.usage.output_tokens


def test_given_a_streamed_tool_call_when_consumed_then_its_input_arrives_as_json_deltas(client):
    request = {"model": "deepseek-chat", "max_tokens": 256, "tools": [WEATHER_TOOL],
               "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    plain = client.messages.create(**request)
    events = [event for event in client.messages.create(stream=True, **request) if event.type != "ping"]
    assert STREAM_ORDER.fullmatch(" ".join(event.type for event in events)), [e.type for e in events]
    start = next(event for event in events if event.type == "content_block_start")
    assert start.content_block.type == "tool_use" and start.content_block.name == "get_weather"
    partial = "".join(event.delta.partial_json for event in events
                      if event.type == "content_block_delta" and event.delta.type == "input_json_delta")
    assert json.loads(partial) == {"query": "What is the weather in Paris?"}
    assert next(event for event in events if event.type == "message_delta").delta.stop_reason == "tool_use"
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [(b.type, b.name, b.input) for b in plain.content]


def test_given_stream_true_on_the_wire_then_it_is_server_sent_events_named_as_their_type(api):
    status, headers, body = invoke(api, "/v1/messages", {"model": "deepseek-chat", "stream": True, **STREAMED})
    assert status == 200, body
    assert headers["content-type"].startswith("text/event-stream")
    assert headers.get("x-request-id")
    blocks = [block for block in body.replace("\r\n", "\n").split("\n\n") if block.strip()]
    names = []
    for block in blocks:
        fields = {name: value.removeprefix(" ") for name, _, value in
                  (line.partition(":") for line in block.split("\n") if not line.startswith(":"))}
        assert json.loads(fields["data"])["type"] == fields["event"]
        names.append(fields["event"])
    assert names[0] == "message_start" and names[-1] == "message_stop"


# --- errors --------------------------------------------------------------------------------------

VALID = {"model": "deepseek-chat", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}


def test_given_no_max_tokens_when_posted_then_it_is_a_400_naming_max_tokens(api, client):
    body = {key: value for key, value in VALID.items() if key != "max_tokens"}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    assert "max_tokens" in assert_sdk_error(caught, 400)["message"]
    status, headers, raw = invoke(api, "/v1/messages", body)
    assert "max_tokens" in assert_anthropic_error(status, raw, 400)["message"]
    assert headers.get("x-request-id")


@pytest.mark.parametrize(
    "change",
    [
        {"messages": "Hello"},
        {"max_tokens": 0},
        {"max_tokens": "many"},
        {"tenant_id": "other-tenant"},
        {"container": "container_1"},
        {"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A memo."}}]}]},
        {"tool_choice": {"type": "sometimes"}, "tools": [WEATHER_TOOL]},
        {"tool_choice": {"type": "tool"}, "tools": [WEATHER_TOOL]},
        {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]}]},
        {"messages": []},
    ],
    ids=["messages-not-a-list", "max-tokens-zero", "max-tokens-not-an-int", "unknown-field", "server-tool-container",
         "document-block", "unknown-tool-choice", "tool-choice-tool-without-name", "image-without-data",
         "no-messages"],
)
def test_given_an_invalid_request_when_posted_then_the_sdk_raises_bad_request(client, local_provider, change):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", cast_to=anthropic.types.Message, body={**VALID, **change})
    assert_sdk_error(caught, 400)
    assert sum(local_provider.request_count(p) for p in ("deepseek", "openai", "anthropic")) == 0


def test_given_an_unknown_top_level_argument_through_create_then_it_is_a_bad_request(client):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**VALID, extra_body={"tenant_id": "other-tenant"})
    assert "tenant_id" in assert_sdk_error(caught, 400)["message"]


def test_given_an_unknown_model_when_asked_then_the_sdk_raises_not_found(client, local_provider):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(**{**VALID, "model": "claude-opus-99"})
    assert "claude-opus-99" in assert_sdk_error(caught, 404)["message"]
    with pytest.raises(anthropic.NotFoundError) as caught:  # a stream fails before it starts, typed the same
        client.messages.create(**{**VALID, "model": "claude-opus-99"}, stream=True)
    assert_sdk_error(caught, 404)
    assert sum(local_provider.request_count(p) for p in ("deepseek", "openai", "anthropic")) == 0


def test_given_a_principal_without_the_chat_scope_then_it_is_permission_denied(api):
    status, headers, body = invoke(api, "/v1/messages", VALID, principal=ADMIN_PRINCIPAL)
    assert_anthropic_error(status, body, 403)
    assert headers.get("x-request-id")
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        anthropic_client(api, principal=ADMIN_PRINCIPAL).messages.create(**VALID)
    assert_sdk_error(caught, 403)


def test_given_no_authorizer_context_then_the_sdk_raises_authentication_error(api):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic_client(api, principal=None).messages.create(**VALID)
    assert_sdk_error(caught, 401)


def test_given_an_oversize_body_then_it_is_a_413_request_too_large(client, gateway_env):
    from deepseek_gateway.web.services import reset_services

    gateway_env.setenv("MAX_REQUEST_BYTES", "1000")
    reset_services()
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**{**VALID, "messages": [{"role": "user", "content": "x" * 2000}]})
    assert_sdk_error(caught, 413)


def test_given_every_provider_failing_then_it_is_a_server_error_in_anthropic_shape(client, local_provider):
    for provider in ("deepseek", "openai", "anthropic"):
        local_provider.set_fault(provider, status=500)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(**VALID)
    error = caught.value
    assert error.status_code >= 500
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] in {"api_error", "overloaded_error"}
    assert error.body["error"]["message"].strip()
    assert "Traceback" not in json.dumps(error.body)


def test_given_thinking_for_a_model_without_it_when_creating_a_message_then_disabled_passes_and_enabled_is_a_400(
        api):
    # Given a model whose catalogue entry has no `thinking` extension
    client = anthropic_client(api)
    hello = [{"role": "user", "content": "Hello"}]

    # When thinking is sent disabled, Then it is the default and the message is answered
    answered = client.messages.create(model="gpt-4.1-mini", max_tokens=32, messages=hello,
                                      thinking={"type": "disabled"})
    assert answered.content[0].text

    # When it is enabled, Then a 400 names `thinking` and says the model does not support it
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="gpt-4.1-mini", max_tokens=32, messages=hello,
                               thinking={"type": "enabled", "budget_tokens": 1024})
    assert "does not support extended thinking" in refused.value.body["error"]["message"]


def test_given_an_error_on_the_messages_api_then_the_sdk_sees_its_request_id(api):
    # Given a request for a model that does not exist
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client(api).messages.create(**{**VALID, "model": "no-such-model"})

    # Then the SDK's error names the request, as Anthropic's does (the `request-id` header)
    assert caught.value.request_id


def test_given_claude_output_config_and_a_screenshot_tool_result_then_both_are_answered(api):
    client = anthropic_client(api)
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    effort = client.messages.create(model="claude-haiku-4-5", max_tokens=32, output_config={"effort": "low"},
                                    messages=[{"role": "user", "content": "Hi"}])
    assert effort.content[0].text
    loop = [{"role": "user", "content": "Take a screenshot"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "s1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "s1", "content": [
                {"type": "text", "text": "the page"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}]}]}]
    answered = client.messages.create(model="gpt-4.1-mini", max_tokens=32, messages=loop)
    assert answered.stop_reason == "end_turn" and answered.content[0].text
