"""The safety layer as a Step Functions task: a JSON event in, the verdict as JSON out.

    {"stage": "input", "request": {...chat body...}, "settings": {...}, "documents": [...]}
        → InputVerdict: blocked, categories, ..., "request" (to send on), "redactions", "canary"
    {"stage": "output", "request": {...}, "completion": {...}, "redactions": {...}, "canary": "...",
     "settings": {...}}
        → OutputVerdict: blocked, categories, ..., "completion" (restored, filtered), "json_valid"

`redactions` is the input verdict's object (`{"placeholders": {...}}`) or the bare mapping. Fields
of the request body that are not OpenAI's are kept as provider extensions, as the api path does
after its catalogue check (the batch workflow validated the body when it was submitted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.safety.moderation import Moderator
from deepseek_gateway.safety.pipeline import inspect_request, inspect_response
from deepseek_gateway.safety.redaction import Redactions
from deepseek_gateway.safety.settings import SafetySettings
from deepseek_gateway.validation import invalid_request

_KNOWN = frozenset(info.alias or name for name, info in ChatCompletionRequest.model_fields.items()) - {"extensions"}


class SafetyTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stage: Literal["input", "output"]
    # The batch workflow's tasks name the tenant instead of carrying its canary seed (see safety/seeds.py).
    tenant_id: str | None = None
    request: dict[str, Any]
    completion: dict[str, Any] | None = None
    redactions: dict[str, Any] = Field(default_factory=dict)
    canary: str | None = None
    documents: list[str] = Field(default_factory=list)
    settings: SafetySettings = Field(default_factory=SafetySettings)


def parse_request(body: dict[str, Any]) -> ChatCompletionRequest:
    extensions = {k: v for k, v in body.items() if k not in _KNOWN}
    request = ChatCompletionRequest.model_validate({k: v for k, v in body.items() if k in _KNOWN})
    request.extensions = extensions
    return request


def run_task(event: dict[str, Any], *, moderator: Moderator | None = None,
             seeds: Callable[[str], str] | None = None,
             moderators: Callable[[SafetySettings], Moderator | None] | None = None) -> dict[str, Any]:
    """Run one stage of the safety layer on a task event; invalid events raise InvalidRequestError.

    `seeds` gives a tenant's canary seed when the event names the tenant but carries no seed;
    `moderators` gives the external moderator the event's settings ask for (as the api function's do).
    """
    try:
        task = SafetyTask.model_validate(event)
        if moderator is None and moderators is not None:
            moderator = moderators(task.settings)
        request = parse_request(task.request)
        if task.stage == "input":
            settings = task.settings
            if task.tenant_id and settings.canary and not settings.canary_seed and seeds is not None:
                settings = settings.model_copy(update={"canary_seed": seeds(task.tenant_id)})
            verdict = inspect_request(request, settings, documents=task.documents, moderator=moderator)
            return verdict.model_dump(mode="json")
        if task.completion is None:
            raise InvalidRequestError("The output stage needs `completion`.", param="completion")
        completion = ChatCompletion.model_validate(task.completion)
        mapping = task.redactions.get("placeholders", task.redactions)
        redactions = Redactions(placeholders={str(k): str(v) for k, v in mapping.items()})
    except ValidationError as exc:
        raise invalid_request(exc) from None
    result = inspect_response(completion, redactions, request, task.settings, canary=task.canary, moderator=moderator)
    return result.model_dump(mode="json")
