"""OpenAI chat completion request and response, as the gateway accepts and returns them.

Top-level request fields are strict (OpenAI rejects unknown arguments, so do we); nested objects
allow extra keys so that newer OpenAI fields inside a message or tool pass through unharmed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from deepseek_gateway.validation import MAX_INT64, MAX_JSON_DEPTH, nesting_exceeds, unpaired_surrogate

# --- request -------------------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ImageUrl(_Open):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(_Open):
    data: str
    format: str


class AudioPart(_Open):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Open):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Open):
    name: str
    arguments: str


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Open):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Open):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Open):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Open):
    role: Literal["assistant"]
    content: str | list[TextPart | RefusalPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None

    @field_validator("tool_calls")
    @classmethod
    def _arguments_not_too_deep(cls, calls: list[ToolCall] | None) -> list[ToolCall] | None:
        """Arguments are JSON in a string, decoded again downstream (safety, the Anthropic translation): held to
        the same depth as a request body, which past Python's recursion limit would be a 500."""
        for call in calls or ():
            arguments = call.function.arguments
            deep = arguments.count("{") + arguments.count("[") > MAX_JSON_DEPTH
            if not deep and "\\u" not in arguments:
                continue
            try:
                decoded = json.loads(arguments)
            except RecursionError:
                decoded, deep = None, True
            except ValueError:
                continue  # not JSON: read as text everywhere
            if deep and (decoded is None or nesting_exceeds(decoded)):
                raise ValueError(f"the arguments of tool call {call.id[:64]!r} nest more than {MAX_JSON_DEPTH} "
                                 "levels deep")
            # Redaction decodes and re-encodes them: a lone surrogate would fail every provider (a 502).
            if unpaired_surrogate(arguments, decoded):
                raise ValueError(f"the arguments of tool call {call.id[:64]!r} contain an unpaired UTF-16 "
                                 "surrogate (\\ud800-\\udfff without its pair), which is not valid Unicode")
        return calls

    @model_validator(mode="after")
    def _has_content_or_tool_calls(self) -> AssistantMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self


class ToolMessage(_Open):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Open):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    type: Literal["function"]
    function: FunctionDefinition


class NamedToolChoiceFunction(_Open):
    name: str


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedToolChoiceFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(_Open):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(_Open):
    type: Literal["text"]


class ResponseFormatJsonObject(_Open):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(_Open):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema, Field(discriminator="type")
]


class StreamOptions(_Open):
    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """The body of POST /v1/chat/completions.

    `extensions` holds provider-specific fields the catalogue declares for the model; they are
    taken out of the body before validation and passed on to the provider as they came.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_INT64)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_INT64)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=8)
    seed: int | None = None
    user: str | None = Field(default=None, max_length=512)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    metadata: dict[str, str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    store: bool | None = None
    service_tier: str | None = None

    extensions: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop accepts at most 4 sequences")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        if self.tool_choice is not None and self.tool_choice != "none" and not self.tools:
            raise ValueError("tool_choice is only allowed when tools are specified")
        return self

    @property
    def output_token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def uses_tools(self) -> bool:
        return bool(self.tools) or any(
            m.role == "tool" or (m.role == "assistant" and m.tool_calls) for m in self.messages
        )

    def uses_json_mode(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    def uses_vision(self) -> bool:
        return any(
            m.role == "user" and isinstance(m.content, list) and any(p.type == "image_url" for p in m.content)
            for m in self.messages
        )

    def to_upstream(self, upstream_model: str) -> dict[str, Any]:
        """The body for an OpenAI-compatible provider: our fields, unset ones left out, plus extensions."""
        body = self.model_dump(mode="json", exclude_none=True, by_alias=True, exclude={"stream", "stream_options"})
        body["model"] = upstream_model
        body.update(self.extensions)
        return body


# --- response ------------------------------------------------------------------------------------


class PromptTokensDetails(_Open):
    cached_tokens: int = 0


class CompletionTokensDetails(_Open):
    reasoning_tokens: int = 0


class Usage(_Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        return self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else 0


class ResponseMessage(_Open):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class Choice(_Open):
    index: int
    message: ResponseMessage
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
