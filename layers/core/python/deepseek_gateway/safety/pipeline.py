"""The safety layer's two entry points: `inspect_request` before the provider, `inspect_response` after.

Input: size limit (before anything costly) → views of every text (folding, decoded payloads) →
injection score of user content (direct) and, separately, of tool results and retrieved documents
(indirect) → tenant deny patterns → PII and secrets (block / redact / allow per entity) → external
moderation of the redacted text, if on → the canary. System, developer and assistant messages are
the application's or the model's own words: they are redacted but not scored for injection.

Output: canary leak → PII the model produced itself (redacted with a non-restorable marker, or the
choice withheld) → placeholders restored → JSON checked against `response_format`.
A withheld choice keeps its place with `finish_reason: content_filter` and a refusal message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.safety import canary as canaries
from deepseek_gateway.safety import injection, report
from deepseek_gateway.safety.jsoncheck import check_json
from deepseek_gateway.safety.moderation import Moderator, moderation_categories
from deepseek_gateway.safety.normalize import Views, fold_with_offsets, views_of
from deepseek_gateway.safety.pii import PRIORITY, Finding, detect
from deepseek_gateway.safety.redaction import Redactions, Redactor, placeholders_in, replace_spans
from deepseek_gateway.safety.settings import SafetySettings
from deepseek_gateway.safety.verdicts import InputVerdict, ModerationOutcome, OutputVerdict

_SPAN_ENCODINGS = ("base64", "hex")
WITHHELD = "The response was withheld by the gateway's content policy ({})."


@dataclass(slots=True)
class _Segment:
    message: int
    part: int | None
    call: int | None
    role: str
    text: str


def _segments(request: ChatCompletionRequest) -> list[_Segment]:
    out: list[_Segment] = []
    for i, message in enumerate(request.messages):
        content = message.content
        if isinstance(content, str):
            out.append(_Segment(i, None, None, message.role, content))
        elif content:
            for j, part in enumerate(content):
                if part.type in ("text", "refusal"):
                    out.append(_Segment(i, j, None, message.role, part.text if part.type == "text" else part.refusal))
        if message.role == "assistant" and message.tool_calls:
            for k, call in enumerate(message.tool_calls):
                out.append(_Segment(i, None, k, message.role, call.function.arguments))
    return out


def _findings(text: str, views: Views) -> list[Finding]:
    """PII in the text as sent, plus what only folding or decoding reveals, placed on the original."""
    found = detect(text, views.tokens)
    if views.changed:
        seen = {f.value for f in found}
        if any(f.value not in seen for f in detect(views.folded)):
            folded, offsets = fold_with_offsets(text)
            for f in detect(folded):
                if f.value not in seen:
                    start, end = offsets[f.start], offsets[f.end - 1] + 1
                    found.append(Finding(f.entity, start, end, text[start:end]))
    if views.decoded and not views.changed:
        for payload in views.decoded:
            if payload.encoding.split("+")[0] in _SPAN_ENCODINGS:
                inner = detect(payload.decoded)
                if inner:
                    entity = min((f.entity for f in inner), key=PRIORITY.index)
                    found.append(Finding(entity, payload.start, payload.end, text[payload.start:payload.end]))
    if len(found) > 1:
        found.sort(key=lambda f: (f.start, -f.end))
        kept: list[Finding] = []
        for f in found:
            if not kept or f.start >= kept[-1].end:
                kept.append(f)
        found = kept
    return found


def _rebuild(request: ChatCompletionRequest, segments: list[_Segment], texts: dict[int, str]) -> ChatCompletionRequest:
    messages = list(request.messages)
    for index, new_text in texts.items():
        seg = segments[index]
        message = messages[seg.message]
        if seg.call is not None:
            calls = list(message.tool_calls)
            call = calls[seg.call]
            function = call.function.model_copy(update={"arguments": new_text})
            calls[seg.call] = call.model_copy(update={"function": function})
            messages[seg.message] = message.model_copy(update={"tool_calls": calls})
        elif seg.part is None:
            messages[seg.message] = message.model_copy(update={"content": new_text})
        else:
            parts = list(message.content)
            field = "text" if parts[seg.part].type == "text" else "refusal"
            parts[seg.part] = parts[seg.part].model_copy(update={field: new_text})
            messages[seg.message] = message.model_copy(update={"content": parts})
    return request.model_copy(update={"messages": messages})


class _PiiPass:
    """Applies the tenant's per-entity actions to texts, sharing one placeholder numbering."""

    def __init__(self, settings: SafetySettings, redactor: Redactor, categories: set[str]) -> None:
        self.allow, self.actions = settings.allow, settings.pii_actions
        self.redactor, self.categories = redactor, categories
        self.entities: dict[str, int] = {}

    def text(self, text: str, view: Views) -> str | None:
        """The text with its values replaced by placeholders, or None when nothing was redacted."""
        spans: list[tuple[int, int, str]] = []
        for finding in _findings(text, view):
            if self.allow and any(p.search(finding.value) for p in self.allow):
                continue
            self.entities[finding.entity.value] = self.entities.get(finding.entity.value, 0) + 1
            action = self.actions.get(finding.entity, "allow")
            if action == "block":
                self.categories.add(finding.entity.value)
            elif action == "redact":
                spans.append((finding.start, finding.end, self.redactor.placeholder(finding.entity, finding.value)))
        return replace_spans(text, spans) if spans else None

    def arguments(self, arguments: str) -> str | None:
        """Tool-call arguments: redacted string by string inside the JSON, so the mapping holds decoded
        values (restoring JSON-escapes them again); text that is not JSON is treated as text."""
        try:
            value = json.loads(arguments)
        except ValueError:
            return self.text(arguments, views_of(arguments))
        changed = False

        def walk(node: object) -> object:
            nonlocal changed
            if isinstance(node, str):
                new = self.text(node, views_of(node))
                changed = changed or new is not None
                return node if new is None else new
            if isinstance(node, list):
                return [walk(item) for item in node]
            if isinstance(node, dict):
                return {key: walk(item) for key, item in node.items()}
            return node

        result = walk(value)
        return json.dumps(result, ensure_ascii=False) if changed else None


def inspect_request(request: ChatCompletionRequest, settings: SafetySettings, *, documents: Sequence[str] = (),
                    moderator: Moderator | None = None) -> InputVerdict:
    """Decide on a request: blocked with categories, or the request to send on and how to restore it.

    `documents` are retrieved texts (RAG chunks) the caller will add to the prompt: they are scored
    as indirect input and matched against deny patterns; put them in the request to have them redacted.
    """
    started = time.perf_counter()
    segments = _segments(request)
    total = sum(len(s.text) for s in segments) + sum(len(d) for d in documents)
    if total > settings.max_prompt_chars:
        return _finish_input(InputVerdict(blocked=True, categories=["max_prompt_size"]), started)
    views = [views_of(s.text) for s in segments]
    direct = [v for s, v in zip(segments, views, strict=True) if s.role == "user"]
    tools = settings.check_tool_results
    indirect = [v for s, v in zip(segments, views, strict=True) if tools and s.role == "tool"]
    indirect += [views_of(d) for d in documents]
    categories: set[str] = set()
    allow = settings.allow
    direct_score = injection.score(direct, allow=allow) if direct else injection.InjectionScore()
    indirect_score = injection.score(indirect, indirect=True, allow=allow) if indirect else injection.InjectionScore()
    if settings.injection_action == "block":
        if direct_score.score >= settings.injection_threshold:
            categories.add("prompt_injection")
        if indirect_score.score >= settings.injection_threshold:
            categories.add("indirect_prompt_injection")
    deny = settings.deny
    if deny and _denied(deny, allow, direct + indirect):
        categories.add("denied_pattern")
    pii = _PiiPass(settings, Redactor(set().union(*(placeholders_in(s.text) for s in segments))), categories)
    new_texts: dict[int, str] = {}
    for index, (segment, view) in enumerate(zip(segments, views, strict=True)):
        new = pii.arguments(segment.text) if segment.call is not None else pii.text(segment.text, view)
        if new is not None:
            new_texts[index] = new
    entities, redactor = pii.entities, pii.redactor
    signals = sorted(set(direct_score.signals) | set(indirect_score.signals))
    verdict = InputVerdict(blocked=bool(categories), categories=sorted(categories), signals=signals,
                           injection_score=direct_score.score, indirect_injection_score=indirect_score.score,
                           entities=entities)
    if categories:
        return _finish_input(verdict, started)
    forwarded = _rebuild(request, segments, new_texts) if new_texts else request
    if moderator is not None and settings.moderation.enabled:
        texts = [new_texts.get(i, s.text) for i, s in enumerate(segments) if s.role == "user"]
        outcome = moderator.moderate(texts, "input") if texts else None
        verdict.moderation = outcome
        blocking = moderation_categories(outcome, settings.moderation.fail_mode) if outcome else []
        if blocking:
            verdict.blocked, verdict.categories = True, sorted(blocking)
            return _finish_input(verdict, started)
    token = canaries.canary_token(forwarded, settings.canary_seed) if settings.canary else None
    if token is not None:
        forwarded = canaries.with_canary(forwarded, token)
    verdict.request, verdict.redactions, verdict.canary = forwarded, redactor.redactions(), token
    return _finish_input(verdict, started)


def _denied(deny: tuple[re.Pattern[str], ...], allow: tuple[re.Pattern[str], ...], views: list[Views]) -> bool:
    for view in views:
        for text in (view.folded, view.hidden, *(p.decoded for p in view.decoded)):
            for pattern in deny:
                match = pattern.search(text) if text else None
                if match and not any(p.search(match.group()) for p in allow):
                    return True
    return False


def _finish_input(verdict: InputVerdict, started: float) -> InputVerdict:
    verdict.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    report.record_input(verdict)
    return verdict


def inspect_response(completion: ChatCompletion, verdict: InputVerdict | Redactions | None,
                     request: ChatCompletionRequest, settings: SafetySettings, *, canary: str | None = None,
                     moderator: Moderator | None = None) -> OutputVerdict:
    """Restore placeholders, redact what the model produced itself, catch canary leaks, check JSON."""
    started = time.perf_counter()
    redactions = verdict.redactions if isinstance(verdict, InputVerdict) else (verdict or Redactions())
    token = canary or (verdict.canary if isinstance(verdict, InputVerdict) else None)
    json_mode = request.uses_json_mode()
    categories: set[str] = set()
    entities: dict[str, int] = {}
    leaked = False
    redacted = 0
    restored: set[str] = set()
    outcome: ModerationOutcome | None = None
    if moderator is not None and settings.moderation.enabled and settings.moderation.check_output:
        texts = [c.message.content for c in completion.choices if c.message.content]
        outcome = moderator.moderate(texts, "output") if texts else None
        if outcome is not None:
            categories.update(moderation_categories(outcome, settings.moderation.fail_mode))
    choices = []
    for choice in completion.choices:
        message = choice.message
        withheld: set[str] = set(categories)
        fields = {"content": message.content, "refusal": message.refusal,
                  "reasoning_content": message.reasoning_content}
        args = [call.function.arguments for call in message.tool_calls or []]
        seen = {t: views_of(t) for t in (*fields.values(), *args) if t} if settings.output_checks else {}
        if token and seen:
            readings = [r for t, v in seen.items() for r in (t, v.folded, v.hidden, *(p.decoded for p in v.decoded))]
            if canaries.leaked(readings, token):
                leaked = True
                withheld.add("system_prompt_leak")
        if seen:
            for name, text in list(fields.items()):
                if text:
                    fields[name], count = _redact_output(text, seen[text], settings, withheld, entities)
                    redacted += count
            args = [_redact_output(a, seen[a], settings, withheld, entities)[0] if a else a for a in args]
        if withheld:
            categories |= withheld
            choices.append(choice.model_copy(update={"finish_reason": "content_filter", "message": message.model_copy(
                update={"content": None, "tool_calls": None, "reasoning_content": None,
                        "refusal": WITHHELD.format(", ".join(sorted(withheld)))})}))
            continue
        update = {name: redactions.restore(text, json_escape=json_mode and name == "content", seen=restored)
                  if text else text for name, text in fields.items()}
        if message.tool_calls:
            update["tool_calls"] = [
                call.model_copy(update={"function": call.function.model_copy(
                    update={"arguments": redactions.restore(a, json_escape=True, seen=restored)})})
                for call, a in zip(message.tool_calls, args, strict=True)
            ]
        choices.append(choice.model_copy(update={"message": message.model_copy(update=update)}))
    final = completion.model_copy(update={"choices": choices})
    json_valid, json_error = None, None
    if settings.output_checks and not categories:
        for choice in final.choices:
            if choice.message.tool_calls and not choice.message.content:
                continue
            json_valid, json_error = check_json(choice.message.content, request)
            if json_valid is False:
                break
    result = OutputVerdict(blocked=bool(categories), categories=sorted(categories), completion=final,
                           restored=len(restored), entities=entities, redacted=redacted,
                           canary_leaked=leaked, json_valid=json_valid, json_error=json_error, moderation=outcome)
    result.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    report.record_output(result)
    return result


def _redact_output(text: str, views: Views, settings: SafetySettings, withheld: set[str],
                   entities: dict[str, int]) -> tuple[str, int]:
    """What the model produced on its own: redacted with a marker (nothing to restore) or withheld."""
    spans: list[tuple[int, int, str]] = []
    findings = _findings(text, views)
    for finding in findings:
        if settings.allow and settings.is_allowed(finding.value):
            continue
        entities[finding.entity.value] = entities.get(finding.entity.value, 0) + 1
        action = settings.action_for(finding.entity)
        if action == "block":
            withheld.add(finding.entity.value)
        elif action == "redact":
            spans.append((finding.start, finding.end, f"[REDACTED_{finding.entity.value.upper()}]"))
    return replace_spans(text, spans), len(spans)
