"""Validation of chat completion bodies: OpenAI's schema, strict top level, catalogue extensions."""

from __future__ import annotations

import pytest
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.chat_service import parse_request
from deepseek_gateway.errors import InvalidRequestError, ModelNotFoundError, UnrecognizedArgumentError


def parse(body):
    return parse_request(body, load_catalogue())


def body(**extra):
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_full_openai_request_is_accepted():
    request = parse(body(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        tool_choice="auto", temperature=0.2, top_p=0.9, max_completion_tokens=100, stop=["\n\n"], n=1,
        seed=7, user="u-1", stream=True, stream_options={"include_usage": True}, metadata={"team": "a"},
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
    ))
    assert request.uses_tools() and request.uses_json_mode()
    assert request.output_token_limit == 100


def test_tenant_id_in_the_body_is_refused_by_name():
    with pytest.raises(UnrecognizedArgumentError) as caught:
        parse(body(tenant_id="someone-else"))
    assert caught.value.param == "tenant_id"
    assert caught.value.status == 400


def test_extension_declared_for_the_model_passes_through_to_the_provider():
    request = parse(body(thinking={"type": "enabled"}))
    assert request.to_upstream("deepseek-chat")["thinking"] == {"type": "enabled"}


def test_extension_of_another_provider_is_refused():
    with pytest.raises(UnrecognizedArgumentError):
        parse(body(output_config={"effort": "low"}))  # an Anthropic extension, not DeepSeek's


def test_unknown_model_is_404_model_not_found():
    with pytest.raises(ModelNotFoundError) as caught:
        parse(body(model="gpt-17"))
    assert (caught.value.status, caught.value.code, caught.value.param) == (404, "model_not_found", "model")


def test_alias_resolves_to_its_model():
    assert parse(body(model="deepseek-v3")).model == "deepseek-v3"
    assert load_catalogue().resolve("deepseek-v3").id == "deepseek-chat"


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"n": 0}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format.json_schema.name"),
    ],
)
def test_wrong_types_and_values_name_the_parameter(patch, param):
    with pytest.raises(InvalidRequestError) as caught:
        parse(body(**patch))
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


def test_model_missing_or_not_a_string_is_a_400():
    with pytest.raises(InvalidRequestError) as caught:
        parse({"messages": []})
    assert caught.value.param == "model"
    with pytest.raises(InvalidRequestError):
        parse(body(model=["deepseek-chat"]))


def test_body_that_is_not_an_object_is_a_400():
    with pytest.raises(InvalidRequestError):
        parse(["model"])


def test_stream_options_without_stream_is_refused():
    with pytest.raises(InvalidRequestError):
        parse(body(stream_options={"include_usage": True}))
