"""PII and secret detection: precompiled patterns, each confirmed by a validator.

Shapes alone over-match, so every candidate is checked: payment cards by length, issuer prefix
and Luhn; IBANs by ISO 7064 mod 97; SSNs by the SSA's never-issued ranges; IP
addresses by `ipaddress`; phone numbers by digit count and grouping (or a nearby word such as
"phone" for bare digit runs); random-looking key bodies for `sk-` keys. Documented example keys
(AWS's `AKIAIOSFODNN7EXAMPLE`) are not secrets. All digit-shaped entities come from one scan.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from deepseek_gateway.safety.normalize import long_tokens
from deepseek_gateway.safety.settings import Entity

# Overlapping findings: the earlier one in this list wins.
PRIORITY = (Entity.PRIVATE_KEY, Entity.JWT, Entity.API_KEY, Entity.AWS_SECRET_KEY, Entity.AWS_ACCESS_KEY,
            Entity.EMAIL, Entity.IBAN, Entity.CREDIT_CARD, Entity.US_SSN, Entity.IP_ADDRESS, Entity.PHONE)
_RANK = {entity: i for i, entity in enumerate(PRIORITY)}


@dataclass(frozen=True, slots=True)
class Finding:
    entity: Entity
    start: int
    end: int
    value: str


# A whole block, or a truncated one up to where its Base64 lines stop (so the prose after it survives).
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,20000}?-----END [A-Z0-9 ]{0,40}"
                  r"PRIVATE KEY(?: BLOCK)?-----|(?:[ \t\r\n]+(?:[A-Za-z0-9+/=]{16,}|[A-Za-z-]+:[^\n]*))*)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# (marker, pattern): the pattern runs only when its marker is in the text (in a long token, for keys).
_API_KEYS = tuple((marker, re.compile(pattern)) for marker, pattern in (
    ("sk-", r"sk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_-]{20,}"),
    ("sk-", r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"),
    ("gh", r"gh[pousr]_[A-Za-z0-9]{36,}"),
    ("github_pat_", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("xox", r"xox[abposer]-[A-Za-z0-9-]{10,}"),
    ("k_", r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("AIza", r"AIza[0-9A-Za-z_-]{35}"),
    ("dsg_", r"dsg_[a-z2-7]{16}_[A-Za-z0-9]{44}"),
    ("hf_", r"hf_[A-Za-z0-9]{30,}"),
    ("npm_", r"npm_[A-Za-z0-9]{36}"),
    ("glpat-", r"glpat-[A-Za-z0-9_-]{20,}"),
))
_DOTTED_KEYS = tuple((marker, re.compile(pattern)) for marker, pattern in (  # keys with dots or slashes
    ("SG.", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    ("hooks.slack.com", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
))
_AWS_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_AWS_ID = re.compile(r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z2-7]{16}(?![A-Za-z0-9])")
_AWS_SECRET_CONTEXT = re.compile(
    r"(?:aws.{0,20}?secret|secret.?access.?key|aws_?sk)[^A-Za-z0-9/+\n]{0,20}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_FORTY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}"
                    r"(?![A-Za-z0-9-])")
_EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
# Each starts with a single character class, so the regex engine skips non-candidates in C.
_IBAN = re.compile(r"[A-Z][A-Z]\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
_NUMBERISH = re.compile(r"[+(\d][\d \t\u00a0().+-]{4,28}\d(?:\s*(?:x|ext\.?|extension)\s*\d{1,5})?(?!\d)")
_IPV6_GATE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_NON_DIGITS = re.compile(r"\D+")
_SEP = re.compile(r"[ \t\u00a0().-]+")
_EXAMPLES = frozenset({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})
_PHONE_WORDS = ("phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "contact", "my number",
                "number is", "reach me", "dial", "office", "home", "landline", "@")
_VERSION_WORDS = ("version", "release", "build", " v", "ver.")
_SSN_WORDS = ("ssn", "social security", "social-security", "taxpayer")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(d: str) -> bool:
    """Issuer prefixes: Visa, Mastercard, Amex, Diners, Discover, JCB (incl. 15-digit 2131/1800),
    UnionPay, Maestro (which may be 12 digits long)."""
    two, four = int(d[:2]), int(d[:4])
    if len(d) == 12:
        return two in (50, 56, 57, 58, 63, 67)
    return (d[0] == "4" or 51 <= two <= 55 or 2221 <= four <= 2720 or two in (34, 37, 36, 38, 62, 65, 35)
            or d[:4] in ("6011", "2131", "1800") or 644 <= int(d[:3]) <= 649 or 300 <= int(d[:3]) <= 305
            or two in (50, 56, 57, 58, 63, 67))


def iban_ok(compact: str) -> bool:
    """ISO 7064 mod 97 over 15-34 characters. The country's exact length is not required: a typo'd or
    synthetic IBAN that still passes the checksum (1 in 97 by chance) is worth redacting all the same."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _near(low: str, start: int, words: tuple[str, ...], span: int = 40, end: int | None = None) -> bool:
    """One of `words` in the `span` characters before `start` (or, given `end`, the 12 after it)."""
    window = low[max(0, start - span):start]
    if end is not None:
        window += " " + low[end:end + 12]
    return any(w in window for w in words)


def _classify_number(cand: str, start: int, low: str) -> Entity | None:
    core = cand.split("x")[0].split("ext")[0].rstrip(" .(") if ("x" in cand or "ext" in cand) else cand
    digits = _NON_DIGITS.sub("", core)
    n = len(digits)
    groups = [g for g in _SEP.split(core.strip("+() ")) if g]
    seps = set(core) - set("0123456789")
    grouped = len(groups) == 1 or all(2 <= len(g) <= 8 for g in groups)
    if core[0] not in "+(" and 12 <= n <= 19 and seps <= {" ", "-"} and grouped and luhn_ok(digits) \
            and _card_prefix_ok(digits):
        return Entity.CREDIT_CARD
    if n == 9 and [len(g) for g in groups] == [3, 2, 4] and seps <= {"-", " "} and ssn_ok(*groups):
        return Entity.US_SSN
    if n == 9 and len(groups) == 1 and _near(low, start, _SSN_WORDS) and ssn_ok(digits[:3], digits[3:5], digits[5:]):
        return Entity.US_SSN
    if seps == {"."} and len(groups) == 4:
        if _near(low, start, _VERSION_WORDS, 16):
            return None
        return Entity.IP_ADDRESS if all(len(g) <= 3 and int(g) <= 255 and (g == "0" or g[0] != "0") for g in groups) \
            else None
    return Entity.PHONE if _phone_ok(core, digits, groups, seps, start, start + len(cand), low) else None


def _phone_ok(core: str, digits: str, groups: list[str], seps: set[str], start: int, end: int, low: str) -> bool:
    n = len(digits)
    if n < 7 or n > 15 or len(set(digits)) < 3:
        return False
    lens = [len(g) for g in groups]
    if lens in ([4, 2, 2], [2, 2, 4], [4, 1, 1], [1, 1, 4]) and seps <= {"-", ".", " "}:
        return False  # a date
    if core.startswith(("+", "(+")):
        return n >= 8
    if core.startswith("00") and len(groups) > 1:
        return 10 <= n <= 15
    if seps == {"."} and lens not in ([3, 3, 4], [2, 2, 2, 2, 2]):
        return False  # version numbers, decimals
    if len(groups) == 1:
        return 10 <= n <= 12 and _near(low, start, _PHONE_WORDS, end=end)
    if "(" in core and 10 <= n <= 12:
        return True
    if lens in ([3, 3, 4], [1, 3, 3, 4], [3, 4, 4], [4, 3, 4], [4, 4, 4], [3, 3, 3, 3], [4, 6], [5, 6], [3, 8],
                [4, 7], [2, 4, 4], [2, 2, 2, 2, 2], [3, 3, 2, 2]):
        return 9 <= n <= 12 and (lens != [2, 2, 2, 2, 2] or digits[0] == "0")
    if lens in ([5, 5], [4, 5], [5, 4], [3, 6], [3, 7]) and digits[0] == "0":  # national formats: 08075 18024
        return 9 <= n <= 11
    if len(groups) >= 3 and all(2 <= x <= 4 for x in lens[1:]) and lens[0] <= 5 and 9 <= n <= 13 and lens != [3, 2, 4]:
        return True
    return lens in ([3, 4],) and _near(low, start, _PHONE_WORDS, end=end)


def _left_ok(text: str, start: int, chars: frozenset[str]) -> bool:
    return start == 0 or text[start - 1] not in chars


def _random_enough(body: str) -> bool:
    return (any(c.isdigit() for c in body) and any(c.isalpha() for c in body) and len(set(body)) >= 10
            and "xxxx" not in body.lower())


def detect(text: str, tokens: tuple[str, ...] | None = None) -> list[Finding]:
    """Every PII / secret finding in `text`, non-overlapping, in text order.

    `tokens` is `normalize.long_tokens(text)` when the caller has it already.
    """
    found: list[Finding] = []
    add = found.append
    keys = "\n".join(long_tokens(text) if tokens is None else tokens)
    if "PRIVATE KEY" in text:
        for m in _PEM.finditer(text):
            add(Finding(Entity.PRIVATE_KEY, m.start(), m.end(), m.group()))
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            if _left_ok(text, m.start(), _KEY_CHARS):
                add(Finding(Entity.JWT, m.start(), m.end(), m.group()))
    for _marker, pattern in [*(k for k in _API_KEYS if k[0] in keys), *(k for k in _DOTTED_KEYS if k[0] in text)]:
        for m in pattern.finditer(text):
            value = m.group()
            if not _left_ok(text, m.start(), _KEY_CHARS) or (value.startswith("sk-") and not _random_enough(value[3:])):
                continue
            add(Finding(Entity.API_KEY, m.start(), m.end(), value))
    aws_ids = [m for m in (_AWS_ID.finditer(text) if any(p in keys for p in _AWS_PREFIXES) else ())
               if m.group() not in _EXAMPLES and "EXAMPLE" not in m.group() and _left_ok(text, m.start(), _KEY_CHARS)]
    for m in aws_ids:
        add(Finding(Entity.AWS_ACCESS_KEY, m.start(), m.end(), m.group()))
    low = text.lower()
    for word in ("secret", "aws"):
        position = low.find(word)
        while position != -1:
            for m in _AWS_SECRET_CONTEXT.finditer(low, max(0, position - 25), position + 90):
                value = text[m.start(1):m.end(1)]
                if value not in _EXAMPLES and "EXAMPLE" not in value and _random_enough(value):
                    add(Finding(Entity.AWS_SECRET_KEY, m.start(1), m.end(1), value))
            position = low.find(word, position + 1)
    for m in aws_ids:  # a 40-character secret next to an access key id
        lo, hi = max(0, m.start() - 300), min(len(text), m.end() + 300)
        for s in _FORTY.finditer(text, lo, hi):
            value = s.group()
            if _random_enough(value) and not all(c in "0123456789abcdef" for c in value) and "EXAMPLE" not in value:
                add(Finding(Entity.AWS_SECRET_KEY, s.start(), s.end(), value))
    position, floor = text.find("@"), 0
    while position != -1:
        m = _EMAIL.search(text, max(floor, position - 64), position + 256)
        while m is not None and m.end() <= position:  # an earlier address in the window: skip past it
            m = _EMAIL.search(text, m.end(), position + 256)
        if m is not None and m.start() < position < m.end() and _left_ok(text, m.start(), _EMAIL_LOCAL):
            add(Finding(Entity.EMAIL, m.start(), m.end(), m.group()))
            floor = m.end()
            position = text.find("@", m.end())
        else:
            position = text.find("@", position + 1)
    for m in _IBAN.finditer(text):
        compact = m.group().replace(" ", "")
        if _left_ok(text, m.start(), _KEY_CHARS) and iban_ok(compact):
            add(Finding(Entity.IBAN, m.start(), m.end(), m.group()))
    for m in _NUMBERISH.finditer(text):
        start, value = m.start(), m.group()
        if value[0] in "+(" and not (value[1:2].isdigit() or value[:2] == "(+"):
            continue
        if start and (text[start - 1].isalnum() or text[start - 1] in "_/+.-:#"):
            continue
        entity = _classify_number(value, start, low)
        if entity is not None:
            add(Finding(entity, start, m.end(), value))
    if _IPV6_GATE.search(text):
        for m in _IPV6.finditer(text):
            value = m.group()
            if value.count(":") >= 3 and any(c.isdigit() for c in value):
                try:
                    ipaddress.IPv6Address(value)
                except ValueError:
                    continue
                add(Finding(Entity.IP_ADDRESS, m.start(), m.end(), value))
    return _resolve(found) if len(found) > 1 else found


def _resolve(found: list[Finding]) -> list[Finding]:
    """Drop overlapping findings, keeping the higher-priority one (clusters are resolved one by one)."""
    found.sort(key=lambda f: (f.start, -f.end))
    kept: list[Finding] = []
    cluster: list[Finding] = [found[0]]
    reach = found[0].end
    for f in found[1:]:
        if f.start < reach:
            cluster.append(f)
            reach = max(reach, f.end)
            continue
        kept.extend(_best(cluster))
        cluster, reach = [f], f.end
    kept.extend(_best(cluster))
    return kept


def _best(cluster: list[Finding]) -> list[Finding]:
    if len(cluster) == 1:
        return cluster
    chosen: list[Finding] = []
    for f in sorted(cluster, key=lambda f: (_RANK[f.entity], f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)
