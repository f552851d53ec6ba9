"""The real OpenAI SDK against the local cloud: everything between the SDK and the provider is real."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]

HELLO = [{"role": "user", "content": "Hello from the end-to-end test"}]


def test_chat_completion_through_api_gateway_and_the_api_function(client, provider):
    response = client.chat.completions.with_raw_response.create(model="deepseek-chat", messages=HELLO)
    answer = response.parse()
    assert answer.model == "deepseek-chat"
    assert "Hello from the end-to-end test" in answer.choices[0].message.content
    assert answer.usage.total_tokens > 0
    assert response.headers["x-gateway-provider"] == "deepseek"
    assert response.headers["x-request-id"]
    assert float(response.headers["x-gateway-cost-usd"]) > 0


def test_streaming_iterator_yields_the_same_text(client, provider):
    plain = client.chat.completions.create(model="deepseek-chat", messages=HELLO).choices[0].message.content
    stream = client.chat.completions.create(model="deepseek-chat", messages=HELLO, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain
    assert chunks[-1].usage.total_tokens > 0


def test_models_list_and_retrieve(client):
    listed = {m.id for m in client.models.list()}
    assert {"deepseek-chat", "deepseek-reasoner", "gpt-4.1-mini", "claude-haiku-4-5"} <= listed
    assert client.models.retrieve("deepseek").id == "deepseek-chat"


def test_fallback_to_openai_when_deepseek_is_switched_to_fail(client, provider):
    provider.set_fault("deepseek", status=500)
    response = client.chat.completions.with_raw_response.create(model="deepseek-chat", messages=HELLO)
    assert response.headers["x-gateway-provider"] == "openai"
    assert response.headers["x-gateway-fallbacks"] == "1"
    assert response.parse().model == "gpt-4.1-mini"


def test_every_provider_down_raises_the_sdks_server_error(client, provider):
    for name in ("deepseek", "openai", "anthropic"):
        provider.set_fault(name, status=503)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert caught.value.status_code == 502


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="deepseek-v99", messages=HELLO)
    assert caught.value.code == "model_not_found"


def test_unknown_argument_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="deepseek-chat", messages=HELLO, extra_body={"tenant_id": "t-2"})
    assert caught.value.param == "tenant_id"


def test_body_over_the_functions_limit_is_413_in_openai_shape(cloud):
    big = [{"role": "user", "content": "x" * 1_100_000}]
    response = httpx.post(f"{cloud.info()['api_base_url']}/chat/completions",
                          json={"model": "deepseek-chat", "messages": big}, timeout=30,
                          headers={"Authorization": f"Bearer {cloud.keys['demo']}"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_unknown_path_gets_api_gateways_answer_in_openai_shape(cloud):
    response = httpx.get(f"{cloud.api_url}/nothing/here", timeout=10)
    assert response.status_code == 403  # API Gateway's MISSING_AUTHENTICATION_TOKEN for an unknown resource
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
