"""Server-sent events built from a finished answer, and the cost of an answer."""

from __future__ import annotations

import json
from decimal import Decimal

from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.cost import answer_cost
from deepseek_gateway.models.chat import ChatCompletion, Usage
from deepseek_gateway.streaming import CHUNK_CHARS, to_event_stream


def completion(content="x" * 150, **message) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": "chatcmpl-1", "created": 1, "model": "deepseek-chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 40, "total_tokens": 50},
    })


def events(stream: str) -> list:
    assert stream.endswith("data: [DONE]\n\n")
    frames = [f for f in stream.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    return [json.loads(f[6:]) for f in frames[:-1]]


def test_stream_reassembles_to_the_same_content_and_ends_with_done():
    chunks = events(to_event_stream(completion(), include_usage=False))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "x" * 150
    assert len(chunks) == 1 + -(-150 // CHUNK_CHARS) + 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_usage_chunk_only_when_asked():
    assert all("usage" not in c for c in events(to_event_stream(completion(), include_usage=False)))
    last = events(to_event_stream(completion(), include_usage=True))[-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 50


def test_tool_calls_and_reasoning_are_streamed():
    chunks = events(to_event_stream(completion(
        content=None, reasoning_content="think",
        tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}],
    ), include_usage=False))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert {"reasoning_content": "think"} in deltas
    assert any(d.get("tool_calls", [{}])[0].get("function", {}).get("arguments") == "{\"a\":1}" for d in deltas)


def test_cost_uses_cached_price_for_cached_tokens():
    entry = load_catalogue().resolve("deepseek-chat")  # 0.28 in, 0.028 cached, 0.42 out per million
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000,
                  prompt_tokens_details={"cached_tokens": 500_000})
    assert answer_cost(entry, usage) == Decimal("0.28") / 2 + Decimal("0.028") / 2 + Decimal("0.42")


def test_cost_without_usage_is_zero():
    assert answer_cost(load_catalogue().resolve("gpt-4.1"), None) == 0


def test_catalogue_lists_every_provider_with_prices_and_valid_fallbacks():
    catalogue = load_catalogue()
    assert {m.provider for m in catalogue.models} == {"deepseek", "openai", "anthropic"}
    chain = catalogue.chain(catalogue.resolve("deepseek-chat"))
    assert [m.provider for m in chain] == ["deepseek", "openai", "anthropic"]
    assert all(m.prices.output > 0 for m in catalogue.models)
