"""The real anthropic SDK against the local cloud's `/v1/messages`: API Gateway, the authorizer, the api function
and the provider, all real. The SDK authenticates with `auth_token` (an `Authorization: Bearer` header, the
authorizer's identity source)."""

from __future__ import annotations

import anthropic
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]

HELLO = [{"role": "user", "content": "Hello from the Anthropic SDK"}]


@pytest.fixture
def claude_sdk(cloud):
    base_url = cloud.info()["api_base_url"].removesuffix("/v1")  # the SDK adds /v1/messages
    return anthropic.Anthropic(base_url=base_url, auth_token=cloud.keys["demo"], api_key=None, max_retries=0,
                               timeout=30)


def test_given_the_anthropic_sdk_when_it_creates_a_message_then_the_gateway_answers_as_anthropic_does(
        claude_sdk, client, provider):
    # When a message is created through the whole local cloud
    message = claude_sdk.messages.create(model="deepseek-chat", max_tokens=64, system="Answer briefly.",
                                         messages=HELLO)

    # Then it is a Message with the text /v1/chat/completions gives for the same request
    chat = client.chat.completions.create(model="deepseek-chat", max_tokens=64, messages=[
        {"role": "system", "content": "Answer briefly."}, *HELLO])
    assert message.type == "message" and message.id.startswith("msg_") and message.model == "deepseek-chat"
    assert message.content[0].text == chat.choices[0].message.content
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == chat.usage.prompt_tokens
    assert message.usage.output_tokens == chat.usage.completion_tokens


def test_given_the_anthropic_sdk_when_it_streams_then_the_text_stream_adds_up_to_the_message(claude_sdk, provider):
    with claude_sdk.messages.stream(model="deepseek-chat", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and "Hello from the Anthropic SDK" in text


def test_given_an_unknown_model_or_a_bad_key_when_called_then_the_sdk_raises_its_typed_errors(claude_sdk, cloud):
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude_sdk.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    assert missing.value.body["error"]["type"] == "not_found_error"
    stranger = anthropic.Anthropic(base_url=cloud.info()["api_base_url"].removesuffix("/v1"),
                                   auth_token="dsg_live_not_a_key", api_key=None, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(model="deepseek-chat", max_tokens=8, messages=HELLO)


def test_given_the_printed_anthropic_example_when_run_then_it_answers(cloud, provider):
    # Given the one-line example the local cloud prints (and writes to endpoints.json)
    example = cloud.info()["examples"]["anthropic_sdk"]

    # When it is run as a user would paste it
    client = eval(example, {"Anthropic": anthropic.Anthropic})  # noqa: S307 - our own printed example

    # Then the client it builds gets an answer
    assert client.messages.create(model="deepseek-chat", max_tokens=16, messages=HELLO).content[0].text
