"""The safety layer: prompt-injection and jailbreak scoring, PII and secret redaction, output checks.

Pure and synchronous: no I/O unless an external moderator is passed in. The api function calls it
in-process around the provider call; the `safety` Step Functions task calls the same functions.

    verdict = inspect_request(request, settings)          # InputVerdict
    verdict.raise_if_blocked()                            # ContentPolicyViolation (400)
    completion = call_provider(verdict.request)           # placeholders and canary already in
    out = inspect_response(completion, verdict, request, settings)   # OutputVerdict
    return out.completion                                 # values restored, leaks withheld
"""

from deepseek_gateway.safety.moderation import BedrockGuardrailModerator, Moderator, OpenAIModerator, build_moderator
from deepseek_gateway.safety.pipeline import inspect_request, inspect_response
from deepseek_gateway.safety.redaction import Redactions
from deepseek_gateway.safety.settings import DEFAULT_PII_ACTIONS, Entity, ModerationSettings, SafetySettings
from deepseek_gateway.safety.verdicts import ContentPolicyViolation, InputVerdict, ModerationOutcome, OutputVerdict

__all__ = [
    "DEFAULT_PII_ACTIONS",
    "BedrockGuardrailModerator",
    "ContentPolicyViolation",
    "Entity",
    "InputVerdict",
    "ModerationOutcome",
    "ModerationSettings",
    "Moderator",
    "OpenAIModerator",
    "OutputVerdict",
    "Redactions",
    "SafetySettings",
    "build_moderator",
    "inspect_request",
    "inspect_response",
]
