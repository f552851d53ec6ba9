"""Token estimates before a call, for reservations: about four characters a token.

No tokenizer is shipped (tiktoken would fetch its encodings at run time); the estimate only
sizes a reservation, which is settled with the provider's reported usage after the call.
"""

from __future__ import annotations

import json

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.models.chat import ChatCompletionRequest

CHARS_PER_TOKEN = 4
PER_MESSAGE_OVERHEAD = 4
# Without max_tokens from the client, this many output tokens are reserved (capped by the model).
DEFAULT_OUTPUT_RESERVE = 1024


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(getattr(part, "text", "") or "" for part in content)
    return ""


def estimate_prompt_tokens(request: ChatCompletionRequest) -> int:
    chars = sum(len(_text(m.content)) for m in request.messages)
    if request.tools:
        chars += len(json.dumps([t.model_dump(mode="json") for t in request.tools]))
    return chars // CHARS_PER_TOKEN + PER_MESSAGE_OVERHEAD * len(request.messages) + 1


def output_reserve(request: ChatCompletionRequest, entry: ModelEntry) -> int:
    return min(request.output_token_limit or DEFAULT_OUTPUT_RESERVE, entry.max_output_tokens) * (request.n or 1)
