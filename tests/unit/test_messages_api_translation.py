"""The Messages API's translation: what reaches the chat pipeline, and what goes back to the anthropic SDK."""

from __future__ import annotations

import pytest
from deepseek_gateway.errors import GatewayError, InvalidRequestError
from deepseek_gateway.messages_api.models import parse_messages_request
from deepseek_gateway.messages_api.translate import error_body, to_chat_body, to_message
from deepseek_gateway.models.chat import ChatCompletion

PNG = "iVBORw0KGgo="


def body(**changes):
    return {"model": "deepseek-reasoner", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}],
            **changes}


def chat_body(**changes):
    return to_chat_body(parse_messages_request(body(**changes)))


def test_given_a_thinking_turn_sent_back_in_a_tool_loop_then_its_reasoning_goes_back_with_the_tool_calls():
    # Given DeepSeek's thinking mode, which refuses a tool loop whose assistant turn lost its reasoning
    turn = {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I should look it up.", "signature": ""},
        {"type": "tool_use", "id": "call_1", "name": "search", "input": {"q": "x"}}]}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "found"}]}

    # When translated
    messages = chat_body(messages=[{"role": "user", "content": "Find x"}, turn, result])["messages"]

    # Then the assistant turn carries the reasoning beside its call, and the result follows as a tool message
    assert messages[1] == {"role": "assistant", "content": None, "reasoning_content": "I should look it up.",
                           "tool_calls": [{"id": "call_1", "type": "function",
                                           "function": {"name": "search", "arguments": '{"q": "x"}'}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "found"}


def test_given_a_tool_result_with_a_screenshot_then_the_text_is_the_tool_message_and_the_image_follows():
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": [
        {"type": "text", "text": "the page"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]}
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "shot", "input": {}}]}

    messages = chat_body(messages=[{"role": "user", "content": "Look"}, call, result])["messages"]

    assert messages[2] == {"role": "tool", "tool_call_id": "c", "content": "the page"}
    assert messages[3] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}


def test_given_system_turns_and_service_hints_then_system_stays_in_place_and_hints_are_not_sent():
    sent = chat_body(system="Be brief.", service_tier="auto", inference_geo="us", speed="fast",
                     cache_control={"type": "ephemeral"}, output_config={"effort": "low"},
                     messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                               {"role": "system", "content": "Now in French."},
                               {"role": "user", "content": "Again"}])

    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "system", "user"]
    assert sent["messages"][3]["content"] == "Now in French."
    assert sent["output_config"] == {"effort": "low"}  # the catalogue's extension, checked per model later
    assert not {"service_tier", "inference_geo", "speed", "cache_control"} & set(sent)


def test_given_a_server_tool_container_then_it_is_a_400_naming_it():
    with pytest.raises(InvalidRequestError) as refused:
        chat_body(container="container_1")
    assert refused.value.param == "container"


def test_given_an_answer_then_the_message_keeps_an_anthropic_id_and_a_refusal_is_a_refusal():
    base = {"created": 1, "model": "claude-haiku-4-5", "object": "chat.completion",
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                      "prompt_tokens_details": {"cached_tokens": 4}}}
    answered = ChatCompletion.model_validate({**base, "id": "msg_01abc", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]})
    refused = ChatCompletion.model_validate({**base, "id": "chatcmpl-9", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
         "finish_reason": "stop"}]})

    message = to_message(answered)
    assert message["id"] == "msg_01abc"
    assert message["usage"] == {"input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4,
                                "cache_creation_input_tokens": 0}
    refusal = to_message(refused)
    assert refusal["id"] == "msg_9" and refusal["stop_reason"] == "refusal"
    assert refusal["content"] == [{"type": "text", "text": "I can't help with that."}]


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error"),
                                              (403, "permission_error"), (404, "not_found_error"),
                                              (413, "request_too_large"), (429, "rate_limit_error"),
                                              (500, "api_error"), (502, "api_error"), (503, "overloaded_error"),
                                              (504, "timeout_error")])
def test_given_a_gateway_error_then_its_anthropic_type_follows_the_status(status, kind):
    error = GatewayError("m")
    error.status = status
    assert error_body(error) == {"type": "error", "error": {"type": kind, "message": "m"}}
