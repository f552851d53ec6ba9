"""Views of a text for inspection: what a model would read, not what a filter would see.

Obfuscation hides an instruction or a secret from pattern matching while the model still reads
it: full-width or mathematical letters, Cyrillic look-alikes, zero-width characters between
letters, Unicode tag characters (invisible ASCII), Base64 / hex / URL-encoded payloads. Each view
here undoes one of those; the detectors run on every view. Views are for inspection only: the text
sent to the provider is never rewritten except where a value is redacted.

Speed: ASCII text (the common case) skips folding entirely (`str.isascii` is O(1) in CPython);
folding is NFKC plus regex substitutions, in C; encoded payloads are looked for among the long
tokens of one bytes-level split, and decoded only when such a token exists.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from itertools import compress
from urllib.parse import unquote

_TAG_START, _TAG_END = 0xE0000, 0xE007F
_INVISIBLE = [
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A),
    0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0,
    *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0),
]
# Letters that look like ASCII ones (Cyrillic, Greek, Armenian, Latin extensions) and survive NFKC.
_HOMOGLYPHS = (
    "аa еe ёe іi їi јj кk мm нh оo рp сc тt уy хx ѕs ԁd ԛq ԝw һh ӏl ɡg ʏy "
    "АA ВB ЕE ЅS ІI ЈJ КK МM НH ОO РP СC ТT ХX УY "
    "αa βb γy εe ηn ιi κk νv οo ρp τt υu χx ωw ϲc ϳj "
    "ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX "
    "օo սu հh ոn ցg ıi ȷj ɑa ɩi ǀl ʟl ɴn ʀr ꜱs ᴀa ᴄc ᴅd ᴇe ᴊj ᴋk ᴍm ᴏo ᴘp ᴛt ᴜu ᴠv ᴡw ᴢz"
)
_B64_TOKENS = bytes(c if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "+/=_-") else 32 for c in range(256))
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_HEX_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){4,}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})")
_HTML_ENTITY = re.compile(r"&#(x[0-9A-Fa-f]{1,6}|\d{1,7});")
MAX_CANDIDATES = 16
MAX_PAYLOAD = 65_536


@cache
def _fold_table() -> dict[int, str | None]:
    """Built once, on first non-ASCII text: invisibles dropped, look-alikes and accents to ASCII."""
    table: dict[int, str | None] = dict.fromkeys(_INVISIBLE)
    table.update(dict.fromkeys(range(_TAG_START, _TAG_END + 1)))
    table.update(dict.fromkeys(range(0x0300, 0x0370)))  # combining marks: "i\u0308gnore"
    for pair in _HOMOGLYPHS.split():
        table[ord(pair[0])] = pair[1]
    for code in range(0x00C0, 0x0250):  # Latin-1 / Extended-A/B letters with accents → base letter
        base = unicodedata.normalize("NFKD", chr(code))[:1]
        if base.isascii() and base.isalpha():
            table[code] = base
    for start, first in ((0x1F130, "A"), (0x1F150, "A"), (0x1F170, "A"), (0x1F1E6, "a")):
        for i in range(26):  # squared, circled and regional-indicator letters
            table[start + i] = chr(ord(first) + i)
    return table


def _char_class(codes: list[int]) -> str:
    """A regex character class for `codes`, consecutive runs written as ranges."""
    codes = sorted(set(codes))
    parts, first, last = [], codes[0], codes[0]
    for code in [*codes[1:], -1]:
        if code == last + 1:
            last = code
            continue
        parts.append(re.escape(chr(first)) + ("" if first == last else "-" + re.escape(chr(last))))
        first = last = code
    return "[" + "".join(parts) + "]"


@cache
def _fold_bmp() -> re.Pattern[str]:
    # Only BMP characters: the regex engine then tests membership with a bitmap, in C.
    return re.compile(_char_class([c for c in _fold_table() if c <= 0xFFFF]))


def _fold_char(match: re.Match[str]) -> str:
    char = match.group()
    folded = _fold_table().get(ord(char), char)
    return folded or ""


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
_ASTRAL_INVISIBLE = re.compile("[\U000E0000-\U000E007F\U000E0100-\U000E01EF]+")


def fold(text: str) -> str:
    """NFKC, invisibles and tag characters dropped, look-alikes and accents folded to ASCII.

    Regex substitutions rather than `str.translate`: mostly-ASCII text has few characters to fold,
    and a regex skips the rest in C where translate looks every character up in a dict.
    """
    if text.isascii():
        return text
    normal = text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
    folded = _fold_bmp().sub(_fold_char, normal)
    if _ASTRAL.search(folded):
        folded = _ASTRAL.sub(_fold_char, _ASTRAL_INVISIBLE.sub("", folded))
    return folded


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """`fold` one character at a time, with the original index of every output character.

    Slow (a Python loop); used only to place a redaction found in the folded view alone.
    """
    table = _fold_table()
    out: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        piece = unicodedata.normalize("NFKC", char).translate(table)
        out.append(piece)
        offsets.extend([index] * len(piece))
    offsets.append(len(text))
    return "".join(out), offsets


_TAGS = re.compile("[\U000E0001-\U000E007E]+")


def hidden_text(text: str) -> str:
    """ASCII smuggled in Unicode tag characters (invisible when rendered), decoded."""
    if text.isascii():
        return ""
    runs = _TAGS.findall(text)
    return " ".join("".join(chr(ord(c) - _TAG_START) for c in run) for run in runs)



@dataclass(slots=True)
class Payload:
    """An encoded run of `text[start:end]` and what it decodes to."""

    start: int
    end: int
    decoded: str
    encoding: str


def _readable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(1 for c in text if c.isprintable() or c in "\n\r\t") < 0.95 * len(text):
        return None
    return text if any(c.isalpha() for c in text) else None


def _decode_candidate(token: str) -> tuple[str, str] | None:
    body = token[2:] if token[:2] in ("0x", "0X") else token
    if len(body) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in body):
        try:
            text = _readable(bytes.fromhex(body))
        except ValueError:
            text = None
        return (text, "hex") if text else None
    stripped = token.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in token or "_" in token:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    text = _readable(raw)
    return (text, "base64") if text else None


def long_tokens(text: str, minimum: int = 16) -> tuple[str, ...]:
    """Distinct runs of Base64 / key characters at least `minimum` long: where encoded payloads and
    API keys can be. One C-level pass; ordinary prose has none, so what follows costs nothing."""
    tokens = text.encode("utf-8", "ignore").translate(_B64_TOKENS).split()
    lengths = list(map(len, tokens))
    if max(lengths, default=0) < minimum:
        return ()
    long = compress(tokens, map((minimum - 1).__lt__, lengths))  # all in C: no per-token Python code
    return tuple(dict.fromkeys(t.decode() for t in long))


def payloads(text: str, depth: int = 2, tokens: tuple[str, ...] | None = None) -> list[Payload]:
    """Base64, hex, `\\x..`, URL-, `\\u`- and HTML-entity-encoded runs, decoded (nested up to `depth`)."""
    found: list[Payload] = []
    candidates = [t for t in (long_tokens(text) if tokens is None else tokens) if 20 <= len(t) <= MAX_PAYLOAD]
    for tried, token in enumerate(candidates):
        if tried >= 4 * MAX_CANDIDATES or len(found) >= MAX_CANDIDATES:
            break
        decoded = _decode_candidate(token)
        if decoded:
            for start, end in _spans(text, token):
                found.append(Payload(start, end, decoded[0], decoded[1]))
    if "\\x" in text:
        for match in _HEX_ESCAPES.finditer(text):
            decoded_text = _readable(bytes.fromhex(match.group().replace("\\x", "")))
            if decoded_text:
                found.append(Payload(match.start(), match.end(), decoded_text, "hex"))
    if "%" in text and _PERCENT.search(text):
        found.append(Payload(0, len(text), unquote(text), "url"))
    if "\\u" in text and _UNICODE_ESCAPE.search(text):
        found.append(Payload(0, len(text), _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text), "unicode"))
    if "&#" in text and _HTML_ENTITY.search(text):
        found.append(Payload(0, len(text), _HTML_ENTITY.sub(_entity, text), "html"))
    if depth > 1:
        for payload in list(found):
            for inner in payloads(payload.decoded, depth - 1):
                found.append(Payload(payload.start, payload.end, inner.decoded, f"{payload.encoding}+{inner.encoding}"))
    return found


def _spans(text: str, token: str) -> list[tuple[int, int]]:
    """Where `token` stands alone (not inside a longer Base64 run) in `text`."""
    spans = []
    start = text.find(token)
    while start != -1:
        end = start + len(token)
        if (not start or text[start - 1] not in _B64_CHARS) and (end == len(text) or text[end] not in _B64_CHARS):
            spans.append((start, end))
        start = text.find(token, end)
    return spans


def _entity(match: re.Match[str]) -> str:
    ref = match.group(1)
    code = int(ref[1:], 16) if ref[0] in "xX" else int(ref)
    return chr(code) if code < 0x110000 else ""


@dataclass(slots=True)
class Views:
    """Every reading of one text that the detectors inspect."""

    original: str
    folded: str
    hidden: str = ""
    decoded: list[Payload] = field(default_factory=list)
    tokens: tuple[str, ...] = ()  # long_tokens(original)

    @property
    def changed(self) -> bool:
        return self.folded is not self.original and self.folded != self.original


def views_of(text: str) -> Views:
    folded = fold(text)
    tokens = long_tokens(text)
    if folded is text:
        return Views(text, text, decoded=payloads(text, tokens=tokens), tokens=tokens)
    return Views(text, folded, hidden_text(text), payloads(folded), tokens)
