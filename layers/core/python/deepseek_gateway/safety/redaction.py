"""Reversible redaction: values become `<EMAIL_1>`-style placeholders, and come back in the answer.

The provider only ever sees the placeholder; the mapping stays with the gateway (in memory on the
synchronous path, in the execution state on the asynchronous one) and is applied to the answer, so
the client's answer is whole. The same value always gets the same placeholder within a request, and
numbering skips placeholders the client's own text already contains. Restoring tolerates what
models do to placeholders (case, spaces, HTML or JSON escaping of the angle brackets), and escapes
the value when it lands inside JSON (tool-call arguments, JSON mode).
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field

from deepseek_gateway.safety.settings import Entity

_PLACEHOLDER = re.compile(r"(?:<|&lt;|\\u003c)\s*([A-Za-z]+(?:_[A-Za-z]+)*_\d{1,4})\s*(?:>|&gt;|\\u003e)",
                          re.IGNORECASE)


class Redactions(BaseModel):
    """Placeholder → original value. Sensitive: never logged (hidden from repr)."""

    placeholders: dict[str, str] = Field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.placeholders)

    def restore(self, text: str, *, json_escape: bool = False, seen: set[str] | None = None) -> str:
        """`text` with every known placeholder replaced by its value (JSON-escaped inside JSON).

        The placeholders put back are added to `seen` when given.
        """
        if not self.placeholders or not text or ("<" not in text and "&lt;" not in text and "\\u003" not in text):
            return text

        def put_back(match: re.Match[str]) -> str:
            key = f"<{match.group(1).upper()}>"
            value = self.placeholders.get(key)
            if value is None:
                return match.group()
            if seen is not None:
                seen.add(key)
            return json.dumps(value)[1:-1] if json_escape else value

        return _PLACEHOLDER.sub(put_back, text)


class Redactor:
    """Hands out placeholders for one request: same value, same placeholder."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._by_value: dict[tuple[Entity, str], str] = {}
        self._counts: dict[Entity, int] = {}
        self._taken = taken or set()
        self.mapping: dict[str, str] = {}

    def placeholder(self, entity: Entity, value: str) -> str:
        key = (entity, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._counts.get(entity, 0)
        while True:
            number += 1
            candidate = f"<{entity.value.upper()}_{number}>"
            if candidate not in self._taken:
                break
        self._counts[entity] = number
        self._by_value[key] = candidate
        self.mapping[candidate] = value
        return candidate

    def redactions(self) -> Redactions:
        return Redactions(placeholders=dict(self.mapping))


def placeholders_in(text: str) -> set[str]:
    """Placeholder-shaped strings already present in a client's text (so numbering avoids them)."""
    if "<" not in text:
        return set()
    return {f"<{m.group(1).upper()}>" for m in _PLACEHOLDER.finditer(text)}


def replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end) replaced by its string; spans sorted and non-overlapping."""
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end, replacement in spans:
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)
