"""`stream: true` answered as Server-Sent Events built from the completed answer.

The provider is called without streaming and the finished answer is cut into
`chat.completion.chunk` events, so clients that only speak streaming work today; the first byte
arrives when the whole answer is ready. Incremental streaming needs API Gateway response
streaming and is a later step (README).
"""

from __future__ import annotations

import json
from typing import Any

from deepseek_gateway.models.chat import ChatCompletion

# Content is cut into pieces of about this many characters, so SDK iterators see several deltas.
CHUNK_CHARS = 64


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


def to_event_stream(completion: ChatCompletion, include_usage: bool) -> str:
    base = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
    }

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return _event({**base, "choices": choices, **extra})

    events: list[str] = []
    for choice in completion.choices:
        message = choice.message
        events.append(chunk([{"index": choice.index, "delta": {"role": "assistant", "content": ""},
                              "finish_reason": None}]))
        reasoning = message.reasoning_content or ""
        for start in range(0, len(reasoning), CHUNK_CHARS):
            events.append(chunk([{"index": choice.index,
                                  "delta": {"reasoning_content": reasoning[start:start + CHUNK_CHARS]},
                                  "finish_reason": None}]))
        content = message.content or ""
        for start in range(0, len(content), CHUNK_CHARS):
            events.append(chunk([{"index": choice.index, "delta": {"content": content[start:start + CHUNK_CHARS]},
                                  "finish_reason": None}]))
        if message.refusal:
            events.append(chunk([{"index": choice.index, "delta": {"refusal": message.refusal},
                                  "finish_reason": None}]))
        for position, call in enumerate(message.tool_calls or []):
            delta = {"tool_calls": [{"index": position, "id": call.id, "type": "function",
                                     "function": {"name": call.function.name,
                                                  "arguments": call.function.arguments}}]}
            events.append(chunk([{"index": choice.index, "delta": delta, "finish_reason": None}]))
        events.append(chunk([{"index": choice.index, "delta": {}, "finish_reason": choice.finish_reason}]))
    if include_usage and completion.usage is not None:
        events.append(chunk([], usage=completion.usage.model_dump(mode="json", exclude_none=True)))
    events.append("data: [DONE]\n\n")
    return "".join(events)
