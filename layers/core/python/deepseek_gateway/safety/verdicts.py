"""What the safety layer decided, and the error a blocked request becomes.

Verdicts carry categories, signal names, scores and counts, never matched text: they are logged
and returned by the Step Functions task as they are. The forwarded request and the redaction
mapping do hold content and are left out of `repr` (and of logs).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.safety.redaction import Redactions


class ContentPolicyViolation(InvalidRequestError):
    """400 `content_policy_violation`, naming the categories that matched and nothing they matched."""

    code = "content_policy_violation"

    def __init__(self, categories: list[str], *, stage: Literal["input", "output"] = "input") -> None:
        self.categories = sorted(set(categories))
        what = "request" if stage == "input" else "response"
        super().__init__(
            f"The {what} was blocked by the gateway's content policy. Categories: {', '.join(self.categories)}."
        )


class ModerationOutcome(BaseModel):
    provider: str
    flagged: bool = False
    categories: list[str] = Field(default_factory=list)
    error: str | None = None  # the exception type when the call failed (fail-open or fail-closed)


class InputVerdict(BaseModel):
    blocked: bool
    categories: list[str] = Field(default_factory=list)
    signals: list[str] = Field(default_factory=list)
    injection_score: float = 0.0
    indirect_injection_score: float = 0.0
    entities: dict[str, int] = Field(default_factory=dict)
    request: ChatCompletionRequest | None = Field(default=None, repr=False)
    redactions: Redactions = Field(default_factory=Redactions, repr=False)
    canary: str | None = Field(default=None, repr=False)
    moderation: ModerationOutcome | None = None
    elapsed_ms: float = 0.0

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise ContentPolicyViolation(self.categories)

    @field_serializer("request")
    def _dump_request(self, request: ChatCompletionRequest | None) -> dict[str, Any] | None:
        if request is None:
            return None
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        body.update(request.extensions)
        return body


class OutputVerdict(BaseModel):
    blocked: bool
    categories: list[str] = Field(default_factory=list)
    completion: ChatCompletion = Field(repr=False)
    restored: int = 0
    redacted: int = 0
    entities: dict[str, int] = Field(default_factory=dict)
    canary_leaked: bool = False
    json_valid: bool | None = None
    json_error: str | None = Field(default=None, repr=False)
    moderation: ModerationOutcome | None = None
    elapsed_ms: float = 0.0

    @field_serializer("completion")
    def _dump_completion(self, completion: ChatCompletion) -> dict[str, Any]:
        return completion.model_dump(mode="json", exclude_none=True)
