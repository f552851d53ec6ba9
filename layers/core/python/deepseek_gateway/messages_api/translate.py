"""Messages API ⇄ chat completions: a request into the body `/v1/chat/completions` takes, an answer back into a
Message, a gateway error into Anthropic's error shape.

By hand: the anthropic SDK translates nothing (it only types Anthropic's own shapes), and the reverse
direction (providers/anthropic_translation.py) serves the Anthropic provider, not callers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from deepseek_gateway.errors import GatewayError, InvalidRequestError, UnrecognizedArgumentError, quoted_id
from deepseek_gateway.messages_api.models import (
    AssistantMessage,
    ImageBlock,
    MessagesRequest,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    parse_messages_request,
)
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                 "content_filter": "refusal"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}


def chat_request(body: Any, parse_chat: Callable[[dict[str, Any]], ChatCompletionRequest]) -> ChatCompletionRequest:
    """A Messages API body as the chat request `parse_chat` (the chat service's parser) makes of its translation."""
    request = parse_messages_request(body)
    try:
        return parse_chat(to_chat_body(request))
    except UnrecognizedArgumentError as exc:
        if exc.param != "thinking":
            raise
        # A Messages API field, but the catalogue's `thinking` extension is not this model's.
        raise InvalidRequestError(f"The model `{quoted_id(request.model)}` does not support extended thinking; "
                                  "leave `thinking` out or set it to {\"type\": \"disabled\"}.",
                                  param="thinking") from None


def to_chat_body(request: MessagesRequest) -> dict[str, Any]:
    """The `/v1/chat/completions` body that asks the same: the gateway then parses and checks it as its own."""
    messages: list[dict[str, Any]] = []
    if request.system:
        system = request.system if isinstance(request.system, str) else "\n\n".join(b.text for b in request.system)
        messages.append({"role": "system", "content": system})
    if request.container is not None:
        raise InvalidRequestError("`container` belongs to Anthropic's server-side tools (code execution), which this "
                                  "gateway does not run.", param="container")
    for i, message in enumerate(request.messages):
        if isinstance(message, UserMessage):
            messages.extend(_user_turn(message, i))
        elif isinstance(message, SystemMessage):
            text = message.content if isinstance(message.content, str) else "\n\n".join(b.text for b in message.content)
            messages.append({"role": "system", "content": text})
        else:
            messages.append(_assistant_turn(message))
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    for name in ("temperature", "top_p", "stream"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.thinking is not None and request.thinking.get("type") != "disabled":  # disabled: the default
        body["thinking"] = request.thinking
    if request.output_config is not None:
        body["output_config"] = request.output_config
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.metadata and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    if request.tools:
        body["tools"] = [{"type": "function", "function": {
            "name": tool.name, **({"description": tool.description} if tool.description else {}),
            "parameters": tool.input_schema}} for tool in request.tools]
    choice = request.tool_choice
    if choice is not None:
        if choice.type == "tool":
            if not choice.name:
                raise InvalidRequestError("`tool_choice.name` is required when `tool_choice.type` is `tool`.",
                                          param="tool_choice.name")
            body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            body["tool_choice"] = _TOOL_CHOICE[choice.type]
        if choice.disable_parallel_tool_use and request.tools:
            body["parallel_tool_calls"] = False
    return body


def _user_turn(message: UserMessage, i: int) -> list[dict[str, Any]]:
    """Tool results first, as the `tool` messages that must follow the assistant's calls, then the rest."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(message.content):
        if isinstance(block, ToolResultBlock):
            blocks = [] if isinstance(block.content, str) else block.content or []
            text = block.content if isinstance(block.content, str) else \
                "\n\n".join(b.text for b in blocks if isinstance(b, TextBlock))
            out.append({"role": "tool", "tool_call_id": block.tool_use_id,
                        "content": f"Error: {text}" if block.is_error else text})
            # A tool message carries text only: its images (screenshots, MCP tools) follow as the user's.
            parts.extend({"type": "image_url", "image_url": {"url": _image_url(b, i, j)}}
                         for b in blocks if isinstance(b, ImageBlock))
        elif isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, i, j)}})
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _image_url(block: ImageBlock, i: int, j: int) -> str:
    source = block.source
    if source.type == "base64" and source.media_type and source.data:
        return f"data:{source.media_type};base64,{source.data}"
    if source.type == "url" and source.url:
        return source.url
    raise InvalidRequestError("An image needs `source.media_type` and `source.data` (base64) or `source.url`.",
                              param=f"messages.{i}.content.{j}.source")


def _assistant_turn(message: AssistantMessage) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    calls = [{"id": b.id, "type": "function",
              "function": {"name": b.name, "arguments": json.dumps(b.input, ensure_ascii=False)}}
             for b in message.content if isinstance(b, ToolUseBlock)]
    reasoning = "".join(b.thinking for b in message.content if isinstance(b, ThinkingBlock))
    turn: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        turn["tool_calls"] = calls
    elif not text:
        turn["content"] = ""  # a turn of thinking only: an empty assistant turn keeps the alternation
    if reasoning:
        turn["reasoning_content"] = reasoning
    return turn


def to_message(completion: ChatCompletion) -> dict[str, Any]:
    """The answer as Anthropic's Message: thinking, text and tool_use blocks, stop reason and usage."""
    choice = completion.choices[0]
    answer = choice.message
    content: list[dict[str, Any]] = []
    if answer.reasoning_content:
        content.append({"type": "thinking", "thinking": answer.reasoning_content, "signature": ""})
    if answer.content:
        content.append({"type": "text", "text": answer.content})
    elif answer.refusal:
        content.append({"type": "text", "text": answer.refusal})
    for call in answer.tool_calls or []:
        content.append({"type": "tool_use", "id": call.id, "name": call.function.name,
                        "input": _tool_input(call.function.arguments)})
    usage = completion.usage
    cached = usage.cached_tokens if usage else 0
    return {
        "id": completion.id if completion.id.startswith("msg_") else "msg_" + completion.id.removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": "refusal" if answer.refusal and not answer.content else
        _STOP_REASONS.get(choice.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": (usage.prompt_tokens if usage else 0) - cached,
                  "output_tokens": usage.completion_tokens if usage else 0,
                  "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0},
    }


def _tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's `input` is; arguments that are no JSON object (a
    model's slip) are kept whole under `arguments` rather than lost."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}


def error_body(error: GatewayError) -> dict[str, Any]:
    """Anthropic's error shape, its type chosen by the status as Anthropic's API chooses it."""
    kind = _ERROR_TYPES.get(error.status) or ("api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}
