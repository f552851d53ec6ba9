"""The Messages API request as Anthropic documents it, validated once: unknown top-level fields and block
types are refused with a 400 naming them, as Anthropic's API does."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.validation import MAX_INT64, request_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Block(BaseModel):
    # Blocks may carry fields this gateway has no use for (`cache_control`, `citations`): accepted, ignored.
    model_config = ConfigDict(extra="allow")


class TextBlock(_Block):
    type: Literal["text"]
    text: str


class ImageSource(_Block):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlock(_Block):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Block):
    """A model's earlier reasoning, sent back by clients that keep whole turns: it goes back to the provider as
    the turn's `reasoning_content` (DeepSeek's thinking mode refuses a tool loop without it)."""

    type: Literal["thinking"]
    thinking: str = ""


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]


UserBlock = Annotated[TextBlock | ImageBlock | ToolResultBlock, Field(discriminator="type")]
AssistantBlock = Annotated[TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock,
                           Field(discriminator="type")]


class UserMessage(_Strict):
    role: Literal["user"]
    content: str | list[UserBlock]


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str | list[AssistantBlock]


class SystemMessage(_Strict):
    """A system turn among the messages (the anthropic SDK's tool runner adds them): kept in place."""

    role: Literal["system"]
    content: str | list[TextBlock]


Message = Annotated[UserMessage | AssistantMessage | SystemMessage, Field(discriminator="role")]


class Tool(_Block):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoice(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Strict):
    user_id: str | None = None


class MessagesRequest(_Strict):
    model: str
    max_tokens: int = Field(ge=1, le=MAX_INT64)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # no OpenAI-shaped provider takes it: accepted and not sent
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    metadata: Metadata | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: dict[str, Any] | None = None  # the catalogue's `thinking` extension, where the model has it
    output_config: dict[str, Any] | None = None  # the catalogue's `output_config` extension (Claude models)
    # Hints to Anthropic's own service (tier, region, speed, prompt caching): accepted and not sent.
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    cache_control: dict[str, Any] | None = None
    container: Any = None  # Anthropic's server-side tools' container: refused by name in the translation


def parse_messages_request(body: Any) -> MessagesRequest:
    """The request, or a 400 naming the deepest offending field: content is a string or a list of blocks, and
    for a bad block pydantic's first error is the string branch's ("should be a valid string")."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    try:
        return MessagesRequest.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise request_error(max(errors, key=lambda error: len(error["loc"]))) from None
