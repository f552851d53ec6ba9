"""In-process fakes for the provider adapters and the clock, used instead of patches."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.providers.base import ProviderFailure

Outcome = ProviderFailure | Callable[[ChatCompletionRequest, ModelEntry], ChatCompletion] | None


def completion_for(entry: ModelEntry, text: str = "hello", prompt: int = 10, completion: int = 5) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{entry.id}",
            "created": int(time.time()),
            "model": entry.upstream,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"[{entry.id}] {text}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }
    )


@dataclass
class FakeProvider:
    """Answers from a script: each call pops the next outcome (a failure to raise, or None to answer)."""

    name: str
    script: list[Outcome] = field(default_factory=list)
    is_configured: bool = True
    calls: list[float] = field(default_factory=list)  # the timeout each call was given

    def configured(self) -> bool:
        return self.is_configured

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry, timeout_s: float) -> ChatCompletion:
        self.calls.append(timeout_s)
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, ProviderFailure):
            raise outcome
        if callable(outcome):
            return outcome(request, entry)
        return completion_for(entry)


@dataclass
class FakeClock:
    """Monotonic time that only moves when the code under test sleeps (or a test advances it)."""

    now: float = 1_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
