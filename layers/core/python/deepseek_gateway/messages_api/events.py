"""A Message as Anthropic's stream of server-sent events, built from the completed answer (as
`/v1/chat/completions` streams, docs/decisions.md §6): message_start, each block's start, deltas and stop,
message_delta with the stop reason and output tokens, message_stop."""

from __future__ import annotations

import json
from typing import Any

from deepseek_gateway.streaming import CHUNK_CHARS


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def _pieces(text: str) -> list[str]:
    return [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]


def message_events(message: dict[str, Any]) -> str:
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 0}}
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"])]
        else:  # tool_use: its input arrives as JSON text, as Anthropic streams it
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in _pieces(json.dumps(block["input"], ensure_ascii=False))]
        events.append(_event("content_block_start",
                             {"type": "content_block_start", "index": index, "content_block": opening}))
        events.extend(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                      for d in deltas)
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(_event("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return "".join(events)
