"""Optional external moderation: OpenAI's moderation endpoint, Amazon Bedrock Guardrails.

Off by default. Each moderator gets the already-redacted texts (the moderation vendor never sees a
redacted value), is bounded by a timeout, and never raises: a failure becomes an outcome with
`error` set, which `fail_mode` turns into a pass (open) or a block (closed) in the pipeline. httpx
and boto3 are imported only when a moderator is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from deepseek_gateway.safety.settings import ModerationSettings, SafetySettings
from deepseek_gateway.safety.verdicts import ModerationOutcome

Source = Literal["input", "output"]


class Moderator(Protocol):
    name: str

    def moderate(self, texts: list[str], source: Source) -> ModerationOutcome: ...


class OpenAIModerator:
    """POST {base_url}/moderations; categories flagged true become `moderation:<category>`."""

    name = "openai"

    def __init__(self, api_key: str, *, base_url: str = "https://api.openai.com/v1",
                 model: str = "omni-moderation-latest", timeout_s: float = 2.0, transport: Any = None) -> None:
        import httpx  # noqa: PLC0415 - only when moderation is on

        self._model = model
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout_s),
                                    headers={"Authorization": f"Bearer {api_key}"}, transport=transport)

    def moderate(self, texts: list[str], source: Source) -> ModerationOutcome:
        try:
            response = self._client.post("/moderations", json={"model": self._model, "input": texts})
            response.raise_for_status()
            results = response.json()["results"]
        except Exception as exc:  # noqa: BLE001 - timeouts, HTTP errors, bad JSON: all mean "unavailable"
            return ModerationOutcome(provider=self.name, error=type(exc).__name__)
        categories = sorted({name for r in results for name, hit in (r.get("categories") or {}).items() if hit})
        flagged = any(r.get("flagged") for r in results)
        return ModerationOutcome(provider=self.name, flagged=flagged, categories=categories)


class BedrockGuardrailModerator:
    """Bedrock `ApplyGuardrail`; an intervention's blocked policies become the categories."""

    name = "bedrock"

    def __init__(self, guardrail_id: str, version: str = "DRAFT", *, client: Any = None,
                 region: str | None = None, timeout_s: float = 2.0) -> None:
        if client is None:
            import boto3  # noqa: PLC0415 - only when moderation is on
            from botocore.config import Config  # noqa: PLC0415

            config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1})
            client = boto3.client("bedrock-runtime", region_name=region, config=config)
        self._client = client
        self._id = guardrail_id
        self._version = version

    def moderate(self, texts: list[str], source: Source) -> ModerationOutcome:
        try:
            answer = self._client.apply_guardrail(
                guardrailIdentifier=self._id, guardrailVersion=self._version,
                source="INPUT" if source == "input" else "OUTPUT",
                content=[{"text": {"text": t}} for t in texts],
            )
        except Exception as exc:  # noqa: BLE001 - ClientError, timeouts, no credentials: "unavailable"
            return ModerationOutcome(provider=self.name, error=type(exc).__name__)
        if answer.get("action") != "GUARDRAIL_INTERVENED":
            return ModerationOutcome(provider=self.name)
        return ModerationOutcome(provider=self.name, flagged=True, categories=_blocked_policies(answer))


def _blocked_policies(answer: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for assessment in answer.get("assessments") or []:
        for topic in (assessment.get("topicPolicy") or {}).get("topics", []):
            found.add(f"topic_{topic.get('name', 'denied')}".lower())
        for item in (assessment.get("contentPolicy") or {}).get("filters", []):
            found.add(str(item.get("type", "content")).lower())
        words = assessment.get("wordPolicy") or {}
        if words.get("customWords") or words.get("managedWordLists"):
            found.add("word_policy")
        sensitive = assessment.get("sensitiveInformationPolicy") or {}
        for item in sensitive.get("piiEntities", []):
            found.add(f"pii_{item.get('type', 'entity')}".lower())
        if sensitive.get("regexes"):
            found.add("sensitive_regex")
    return sorted(found) or ["guardrail_intervened"]


def build_moderator(settings: ModerationSettings, *, openai_api_key: str | None = None,
                    bedrock_client: Any = None) -> Moderator | None:
    """The moderator the settings ask for, or None when moderation is off (or has no key)."""
    if settings.provider == "openai" and openai_api_key:
        return OpenAIModerator(openai_api_key, base_url=settings.openai_base_url, model=settings.openai_model,
                               timeout_s=settings.timeout_s)
    if settings.provider == "bedrock" and settings.bedrock_guardrail_id:
        return BedrockGuardrailModerator(settings.bedrock_guardrail_id, settings.bedrock_guardrail_version,
                                         client=bedrock_client, region=settings.bedrock_region,
                                         timeout_s=settings.timeout_s)
    return None


def moderation_categories(outcome: ModerationOutcome, fail_mode: Literal["open", "closed"]) -> list[str]:
    """The blocking categories an outcome adds: flagged categories, or `moderation_unavailable` if closed."""
    if outcome.error is not None:
        return ["moderation_unavailable"] if fail_mode == "closed" else []
    if outcome.flagged:
        return [f"moderation:{c}" for c in outcome.categories] or ["moderation:flagged"]
    return []


def moderator_factory(settings: Any) -> Callable[[SafetySettings], Moderator | None]:
    """One external moderator per distinct moderation setting, built on first use and kept.

    `settings` is the function's Settings: OpenAI moderation uses the OpenAI key it names.
    """
    from deepseek_gateway.providers.credentials import key_source

    openai_key = key_source(settings, "openai")
    built: dict[str, Moderator | None] = {}

    def moderator_for(safety: SafetySettings) -> Moderator | None:
        if safety.moderation.provider == "none":
            return None
        key = safety.moderation.model_dump_json()
        if key not in built:
            built[key] = build_moderator(safety.moderation, openai_api_key=openai_key())
        return built[key]

    return moderator_for
