"""OpenAI chat completions <-> Anthropic Messages translation, both directions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.models.chat import ChatCompletionRequest
from deepseek_gateway.providers.anthropic_translation import from_anthropic, to_anthropic

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "Hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def translate(**fields: Any) -> dict[str, Any]:
    return to_anthropic(request(**fields), "claude-sonnet-4-6-upstream", 4096)


def anthropic_message(**fields: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6-20250929",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    message.update(fields)
    return message


# --- OpenAI request -> Anthropic ------------------------------------------------------------------


def test_a_plain_conversation_keeps_its_turns_and_uses_the_upstream_model():
    kwargs = translate(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "How are you?"},
        ]
    )

    assert kwargs == {
        "model": "claude-sonnet-4-6-upstream",
        "max_tokens": 4096,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
    }


def test_system_and_developer_messages_become_the_system_prompt_in_order():
    kwargs = translate(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Answer"}, {"type": "text", "text": "in French."}],
            },
            {"role": "user", "content": "Bye"},
        ]
    )

    assert kwargs["system"] == "Be brief.\n\nAnswer\nin French."
    assert [m["role"] for m in kwargs["messages"]] == ["user"]
    assert kwargs["messages"][0]["content"] == [
        {"type": "text", "text": "Hi"},
        {"type": "text", "text": "Bye"},
    ]


def test_without_system_messages_no_system_prompt_is_sent():
    assert "system" not in translate()


def test_a_conversation_of_only_system_messages_is_refused():
    with pytest.raises(InvalidRequestError) as raised:
        translate(messages=[{"role": "system", "content": "Be brief."}])

    assert raised.value.param == "messages"


def test_consecutive_messages_of_the_same_role_are_merged_into_one_turn():
    kwargs = translate(
        messages=[
            {"role": "user", "content": "One"},
            {"role": "user", "content": "Two"},
            {"role": "assistant", "content": "Three"},
            {"role": "assistant", "content": "Four"},
        ]
    )

    assert kwargs["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Three"}, {"type": "text", "text": "Four"}],
        },
    ]


def test_user_content_parts_become_text_and_image_blocks():
    kwargs = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ]
    )

    assert kwargs["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_an_image_url_that_is_neither_http_nor_base64_data_is_refused():
    with pytest.raises(InvalidRequestError) as raised:
        translate(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}],
                }
            ]
        )

    assert raised.value.param == "messages[0].content[0].image_url.url"


def test_an_audio_part_is_refused_with_its_position():
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(InvalidRequestError) as raised:
        translate(messages=[{"role": "user", "content": [{"type": "text", "text": "Listen"}, audio]}])

    assert raised.value.param == "messages[0].content[1]"


def test_a_tool_use_round_trip_becomes_tool_use_and_merged_tool_result_blocks():
    """Given an assistant turn with two tool calls and both results, then the user's next question,
    the calls become tool_use blocks and the results one user turn, the question appended to it."""
    kwargs = translate(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "4C, snow"}]},
            {"role": "user", "content": "Which is warmer?"},
        ],
    )

    assert kwargs["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "4C, snow"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_assistant_text_beside_tool_calls_comes_first_and_empty_arguments_mean_no_input():
    kwargs = translate(
        messages=[
            {"role": "user", "content": "Time?"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "now", "arguments": ""}}
                ],
            },
        ]
    )

    assert kwargs["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"a string"'])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str):
    with pytest.raises(InvalidRequestError) as raised:
        translate(
            messages=[
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": arguments}}
                    ],
                },
            ]
        )

    assert raised.value.param == "messages[1].tool_calls"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 4096),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
    ],
)
def test_max_tokens_prefers_max_completion_tokens_then_max_tokens_then_the_default(fields, expected):
    assert translate(**fields)["max_tokens"] == expected


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop, expected):
    assert translate(stop=stop)["stop_sequences"] == expected


def test_user_becomes_metadata_user_id():
    assert translate(user="user-42")["metadata"] == {"user_id": "user-42"}


def test_sampling_and_unsupported_openai_fields_are_not_sent():
    """Anthropic's API (2026-10-21) rejects temperature and top_p outright, so they are dropped."""
    kwargs = translate(temperature=1.7, top_p=0.9, seed=7, presence_penalty=1, metadata={"k": "v"})

    assert set(kwargs) == {"model", "max_tokens", "messages"}


def test_more_than_one_choice_is_refused():
    with pytest.raises(InvalidRequestError) as raised:
        translate(n=2)

    assert raised.value.param == "n"


def test_a_single_choice_is_accepted():
    assert "n" not in translate(n=1)


def test_tools_become_anthropic_tools_with_a_default_input_schema():
    bare = {"type": "function", "function": {"name": "ping"}}

    kwargs = translate(tools=[WEATHER_TOOL, bare])

    assert kwargs["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in kwargs


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_maps_to_anthropic_tool_choice(tool_choice, expected):
    assert translate(tools=[WEATHER_TOOL], tool_choice=tool_choice)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", {"type": "none"}),
    ],
)
def test_parallel_tool_calls_false_disables_parallel_tool_use(tool_choice, expected):
    fields = {"tools": [WEATHER_TOOL], "parallel_tool_calls": False}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice

    assert translate(**fields)["tool_choice"] == expected


def test_json_object_response_format_adds_a_json_instruction_after_the_system_prompt():
    kwargs = translate(
        messages=[{"role": "system", "content": "You extract data."}, {"role": "user", "content": "Hi"}],
        response_format={"type": "json_object"},
    )

    first, instruction = kwargs["system"].split("\n\n")
    assert first == "You extract data."
    assert "single JSON object" in instruction


def test_json_schema_response_format_puts_the_serialized_schema_in_the_instruction():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

    kwargs = translate(
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    )

    assert "single JSON object" in kwargs["system"]
    assert json.dumps(schema, separators=(",", ":")) in kwargs["system"]


def test_text_response_format_adds_no_instruction():
    assert "system" not in translate(response_format={"type": "text"})


def test_extensions_pass_through_as_sdk_arguments_or_extra_body():
    """Given extensions thinking (a messages.create argument) and top_k (no longer one), thinking is a
    keyword argument and top_k goes in extra_body, where the SDK would otherwise raise TypeError."""
    req = request()
    req.extensions = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "top_k": 40}

    kwargs = to_anthropic(req, "claude-x", 4096)

    assert kwargs["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert kwargs["extra_body"] == {"top_k": 40}


def test_the_anthropic_sdk_accepts_the_translated_arguments_and_its_answer_translates_back():
    """Given a tool-using request sent through the real SDK (HTTP mocked), the SDK takes every argument
    and its parsed Message translates back to an OpenAI completion."""
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    sent: dict[str, Any] = {}

    def answer(http_request):
        sent.update(json.loads(http_request.content))
        return httpx2.Response(
            200,
            json=anthropic_message(
                content=[
                    {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}}
                ],
                stop_reason="tool_use",
            ),
        )

    client = anthropic.Anthropic(
        api_key="test", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(answer))
    )
    req = request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        stop="END",
        user="u1",
        temperature=0.2,
    )
    req.extensions = {"top_k": 5}

    message = client.messages.create(**to_anthropic(req, "claude-x", 1024))
    completion = from_anthropic(message.model_dump(), "claude-sonnet-4-6", 1_700_000_000)

    assert sent["top_k"] == 5
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "temperature" not in sent
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"


# --- Anthropic Message -> OpenAI completion -------------------------------------------------------


def test_a_text_answer_becomes_a_chat_completion_under_the_public_model():
    completion = from_anthropic(anthropic_message(), "claude-sonnet-4-6", 1_700_000_000)

    assert completion.id == "chatcmpl-msg_01"
    assert completion.object == "chat.completion"
    assert completion.created == 1_700_000_000
    assert completion.model == "claude-sonnet-4-6"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello!"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"


def test_several_text_blocks_are_joined_into_one_content():
    message = anthropic_message(content=[{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}])

    assert from_anthropic(message, "m", 0).choices[0].message.content == "Hello"


def test_a_tool_use_answer_becomes_tool_calls_with_json_arguments():
    message = anthropic_message(
        content=[
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        stop_reason="tool_use",
    )

    choice = from_anthropic(message, "m", 0).choices[0]

    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert [(c.id, c.type, c.function.name) for c in choice.message.tool_calls] == [
        ("toolu_1", "function", "get_weather"),
        ("toolu_2", "function", "get_weather"),
    ]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}


def test_text_before_a_tool_use_is_kept_as_content():
    message = anthropic_message(
        content=[
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}},
        ],
        stop_reason="tool_use",
    )

    choice = from_anthropic(message, "m", 0).choices[0]

    assert choice.message.content == "Checking."
    assert choice.message.tool_calls[0].function.arguments == "{}"


def test_thinking_blocks_become_reasoning_content_and_redacted_thinking_is_left_out():
    message = anthropic_message(
        content=[
            {"type": "thinking", "thinking": "Step one.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "Step two.", "signature": "sig"},
            {"type": "text", "text": "42"},
        ]
    )

    answer = from_anthropic(message, "m", 0).choices[0].message

    assert answer.reasoning_content == "Step one.\n\nStep two."
    assert answer.content == "42"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_future_reason", "stop"),
    ],
)
def test_stop_reasons_map_to_openai_finish_reasons(stop_reason, finish_reason):
    message = anthropic_message(stop_reason=stop_reason)

    assert from_anthropic(message, "m", 0).choices[0].finish_reason == finish_reason


def test_a_refusal_carries_anthropics_explanation():
    message = anthropic_message(
        content=[],
        stop_reason="refusal",
        stop_details={"type": "refusal", "category": "cyber", "explanation": "Not able to help with that."},
    )

    answer = from_anthropic(message, "m", 0).choices[0].message

    assert answer.refusal == "Not able to help with that."
    assert answer.content == ""


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens_and_reports_reads_as_cached():
    message = anthropic_message(
        usage={
            "input_tokens": 50,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 30,
            "output_tokens_details": {"thinking_tokens": 12},
        }
    )

    usage = from_anthropic(message, "m", 0).usage

    assert usage.prompt_tokens == 1250
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.completion_tokens == 30
    assert usage.total_tokens == 1280
    assert usage.completion_tokens_details.reasoning_tokens == 12


def test_usage_without_cache_fields_or_with_nulls_counts_only_input_tokens():
    message = anthropic_message(
        usage={
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": None,
            "output_tokens_details": None,
        }
    )

    usage = from_anthropic(message, "m", 0).usage

    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.cached_tokens == 0
    assert usage.completion_tokens_details is None
