"""OpenAI chat completions <-> Anthropic Messages, as plain data (no SDK import, no I/O).

Targets the `anthropic` 2.x SDK, which speaks API version 2026-10-21. That version removed the
sampling parameters (temperature, top_p, top_k): the SDK no longer accepts them as arguments and the
API answers 400 "Extra inputs are not permitted" even to their default values. OpenAI clients send
temperature and top_p routinely, so we drop them rather than fail every such request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from deepseek_gateway.errors import InvalidRequestError, quoted_id
from deepseek_gateway.models.chat import (
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    PromptTokensDetails,
    ResponseFormat,
    ResponseMessage,
    TextPart,
    ToolCall,
    Usage,
)
from deepseek_gateway.validation import NotJsonError, strict_json

# Arguments of `messages.create` an extension may set directly; any other extension goes into
# `extra_body`, because the SDK raises TypeError on an unknown keyword argument.
_CREATE_ARGUMENTS = frozenset(
    {
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "user_profile_id",
        "workspace_id",
    }
)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_DATA_URL = re.compile(r"data:(?P<media_type>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(?P<data>.*)", re.DOTALL)


def to_anthropic(
    request: ChatCompletionRequest, upstream_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """Keyword arguments for `Anthropic().messages.create(**kwargs)`.

    Anthropic has one system prompt, so system and developer messages are gathered into it wherever
    they appear. Fields Anthropic lacks (seed, penalties, logit_bias, logprobs, temperature, top_p,
    reasoning_effort, metadata other than `user`) are dropped, as an OpenAI model ignores a hint it
    cannot honour; only `n > 1`, whose answer could not have the promised shape, is refused.
    """
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("Anthropic models return a single choice; n must be 1.", param="n")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            if text := _joined_text(message.content):
                system.append(text)
            continue
        role, blocks = _turn(message, i)
        if turns and turns[-1]["role"] == role:  # Anthropic expects user and assistant turns to alternate
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequestError("At least one user or assistant message is required.", param="messages")
    if instruction := _json_instruction(request.response_format):
        system.append(instruction)

    kwargs: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": request.output_token_limit or default_max_tokens,
        "messages": turns,
    }
    if system:
        kwargs["system"] = "\n\n".join(system)
    if request.stop:
        kwargs["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.user:
        kwargs["metadata"] = {"user_id": request.user}
    if request.tools:
        kwargs["tools"] = [
            {
                "name": tool.function.name,
                **({"description": tool.function.description} if tool.function.description else {}),
                "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
            }
            for tool in request.tools
        ]
        if (tool_choice := _tool_choice(request)) is not None:
            kwargs["tool_choice"] = tool_choice
    for name, value in request.extensions.items():
        if name in _CREATE_ARGUMENTS:
            kwargs[name] = value
        else:
            kwargs.setdefault("extra_body", {})[name] = value
    return kwargs


def _turn(message: Any, i: int) -> tuple[str, list[dict[str, Any]]]:
    """One OpenAI message as an Anthropic role and content blocks (a tool result is a user block)."""
    if message.role == "tool":
        content = message.content if isinstance(message.content, str) else _text_blocks(message.content)
        return "user", [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}]
    if message.role == "user":
        if isinstance(message.content, str):
            return "user", _text_blocks(message.content)
        return "user", [_user_block(part, i, j) for j, part in enumerate(message.content)]
    # assistant: earlier reasoning_content is dropped, Anthropic only takes back signed thinking blocks
    blocks = _text_blocks(message.content or "")
    for call in message.tool_calls or []:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name, "input": _arguments(call, i)}
        )
    return "assistant", blocks


def _user_block(part: Any, i: int, j: int) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text}
    if part.type != "image_url":
        raise InvalidRequestError(
            f"Content parts of type {part.type!r} are not supported by Anthropic models.",
            param=f"messages[{i}].content[{j}]",
        )
    url = part.image_url.url
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if match := _DATA_URL.fullmatch(url):
        source = {"type": "base64", "media_type": match["media_type"], "data": match["data"]}
        return {"type": "image", "source": source}
    raise InvalidRequestError(
        "An image URL must be http(s) or a base64 data URL.",
        param=f"messages[{i}].content[{j}].image_url.url",
    )


def _arguments(call: ToolCall, i: int) -> dict[str, Any]:
    """Anthropic wants the arguments as an object; OpenAI carries them as a JSON string."""
    if not call.function.arguments.strip():
        return {}  # some clients echo "" for a function without parameters
    try:
        # Strict: decoded NaN, Infinity or an unpaired surrogate would reach the SDK's encoder, which cannot
        # write them — a failed call read as the provider's fault (a 502), not the request's.
        arguments = strict_json(call.function.arguments)
    except NotJsonError as exc:
        raise InvalidRequestError(f"The arguments of tool call {quoted_id(call.id)!r} contain {exc}.",
                                  param=f"messages[{i}].tool_calls") from None
    except (ValueError, RecursionError):
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(
            f"The arguments of tool call {quoted_id(call.id)!r} are not a JSON object.",
            param=f"messages[{i}].tool_calls",
        )
    return arguments


def _tool_choice(request: ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice == "none":
        return {"type": "none"}  # accepts no other field
    if choice == "required":
        anthropic_choice: dict[str, Any] = {"type": "any"}
    elif choice is None or choice == "auto":
        anthropic_choice = {"type": "auto"}
    else:
        anthropic_choice = {"type": "tool", "name": choice.function.name}
    if request.parallel_tool_calls is False:
        anthropic_choice["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # Anthropic's default is auto already
    return anthropic_choice


def _json_instruction(response_format: ResponseFormat | None) -> str | None:
    """JSON mode emulated by instruction: the answer is asked for, not enforced.

    Anthropic's structured outputs (`output_config.format`) exist only on some models, so we do not
    rely on them; a client needing a guarantee should validate the JSON it gets back.
    """
    if response_format is None or response_format.type == "text":
        return None
    instruction = (
        "Respond with a single JSON object and nothing else: no text before or after it, "
        "no Markdown code fences."
    )
    if response_format.type == "json_schema" and response_format.json_schema.schema_ is not None:
        schema = json.dumps(response_format.json_schema.schema_, separators=(",", ":"))
        instruction += f" The object must conform to this JSON Schema: {schema}"
    return instruction


def _joined_text(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "\n".join(part.text for part in content)


def _text_blocks(content: str | list[Any]) -> list[dict[str, Any]]:
    """Text blocks, leaving out empty ones, which Anthropic rejects (clients echo `content: ""`)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    texts = (part.text if part.type == "text" else part.refusal for part in content)
    return [{"type": "text", "text": text} for text in texts if text]


def from_anthropic(message: dict[str, Any], public_model: str, created: int) -> ChatCompletion:
    """An Anthropic Message (its JSON, or `message.model_dump()`) as an OpenAI chat completion."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.get("content") or []:
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "thinking":
            thoughts.append(block["thinking"])
        elif block["type"] == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(
                ToolCall(id=block["id"], function=FunctionCall(name=block["name"], arguments=arguments))
            )
        # redacted thinking and server-tool blocks have no OpenAI counterpart
    stop_reason = message.get("stop_reason") or ""
    refusal = (message.get("stop_details") or {}).get("explanation") if stop_reason == "refusal" else None
    response = ResponseMessage(
        content="".join(texts) if texts or not calls else None,  # OpenAI sends null beside tool calls
        tool_calls=calls or None,
        reasoning_content="\n\n".join(thoughts) if thoughts else None,
        refusal=refusal,
    )
    return ChatCompletion(
        id=f"chatcmpl-{message['id']}",
        created=created,
        model=public_model,
        choices=[Choice(index=0, message=response, finish_reason=_FINISH_REASONS.get(stop_reason, "stop"))],
        usage=_usage(message.get("usage") or {}),
    )


def _usage(usage: dict[str, Any]) -> Usage:
    """OpenAI counts cached tokens inside prompt_tokens; Anthropic reports them beside input_tokens."""
    cache_read = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cache_read + (usage.get("cache_creation_input_tokens") or 0)
    completion = usage.get("output_tokens") or 0
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    details = None if thinking is None else CompletionTokensDetails(reasoning_tokens=thinking)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cache_read),
        completion_tokens_details=details,
    )
