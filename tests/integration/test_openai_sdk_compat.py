"""The real OpenAI SDK against the api function in-process: responses parse, errors are typed."""

from __future__ import annotations

import openai
import pytest

from tests.sdk_bridge import openai_client


@pytest.fixture
def client(api):
    return openai_client(api)


def test_sdk_chat_completion_parses(client):
    answer = client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content
    assert answer.usage.total_tokens > 0


def test_sdk_streaming_iterator_consumes_the_event_stream(client):
    stream = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "Stream this please, it is a fairly long sentence to be cut up."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "Stream this please, it is a fairly long sentence to be cut up."}],
    )
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_sdk_lists_and_retrieves_models(client):
    ids = [m.id for m in client.models.list()]
    assert {"deepseek-chat", "deepseek-reasoner", "gpt-4.1-mini", "claude-sonnet-4-6"} <= set(ids)
    assert client.models.retrieve("deepseek-r1").id == "deepseek-reasoner"


def test_sdk_raises_not_found_for_an_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


def test_sdk_raises_bad_request_for_an_unknown_argument(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "x"}], extra_body={"tenant_id": "other"}
        )
    assert caught.value.param == "tenant_id"
