"""Labelled PII sentences: presidio-evaluator's templates filled with generated values, plus secrets.

Structured values come from Faker (as in presidio-evaluator) or from generators here, with real
formats and check digits (Luhn for cards, mod 97 for IBANs, SSA ranges for SSNs) in the varied
shapes people type them (spaced and dashed cards, grouped IBANs, international phone numbers).
Names, addresses, companies and the other unstructured slots come from presidio-evaluator's
FakeNameGenerator sample, so the sentences carry realistic non-PII numbers (house numbers, zip
codes, ages, years) that must not be flagged. Secrets (not in presidio's templates) use templates
written here, in code and config snippets, beside secret-shaped non-secrets (commit hashes, UUIDs,
documented example keys).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from typing import Any

ENTITY_OF_SLOT = {"credit_card_number": "credit_card", "email": "email", "phone_number": "phone", "iban": "iban",
                  "ssn": "us_ssn", "ip_address": "ip_address"}
_IBAN_FORMATS = {"DE": "8n10n", "GB": "4a6n8n", "FR": "5n5n11c2n", "ES": "4n4n1n1n10n", "IT": "1a5n5n12c",
                 "NL": "4a10n", "CH": "5n12c", "BE": "3n7n2n", "PL": "8n16n", "AT": "5n11n", "IE": "4a6n8n",
                 "SE": "3n16n1n"}


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + _digits(rng, length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("3530", 16), ("36", 14), ("4", 13)])
    number = _luhn_complete(prefix, length, rng)
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain" or length not in (15, 16):
        return number
    groups = [number[:4], number[4:10], number[10:]] if length == 15 else [number[i:i + 4] for i in range(0, 16, 4)]
    return (" " if style == "space" else "-").join(groups)


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_FORMATS))
    bban = ""
    for count, kind in re.findall(r"(\d+)([nac])", _IBAN_FORMATS[country]):
        pool = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[kind]
        bban += "".join(rng.choice(pool) for _ in range(int(count)))
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    value = f"{country}{98 - numeric % 97:02d}{bban}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.6 else value


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
    return rng.choice([
        f"{a}-{b}-{c}", f"({a}){b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"+1-{a}-{b}-{c}", f"+1 {a} {b} {c}",
        f"{a}-{b}-{c}x{rng.randint(100, 99999)}", f"001-{a}-{b}-{c}", f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
        f"07700 {_digits(rng, 6)}", f"+49 30 {_digits(rng, 8)}", f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} "
        f"{_digits(rng, 2)} {_digits(rng, 2)}", f"+91 98{_digits(rng, 3)} {_digits(rng, 5)}", f"+1{a}{b}{c}",
    ])


def email(rng: random.Random) -> str:
    first, last = rng.choice(["jane", "omar", "li", "sara", "kofi", "ana"]), rng.choice(["roe", "khan", "wei", "lund"])
    user = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}", f"{first}+news"])
    return f"{user}@{rng.choice(['gmail.com', 'outlook.com', 'acme-corp.co.uk', 'mail.example.org', 'uni.edu'])}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    return ":".join(groups) if rng.random() < 0.5 else ":".join(groups[:3]) + "::" + ":".join(groups[6:])


OWN_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "credit_card": card, "iban": iban, "us_ssn": ssn, "phone": phone, "ip_address": ip, "email": email}


def _rand(rng: random.Random, pool: str, n: int) -> str:
    return "".join(rng.choice(pool) for _ in range(n))


_B62 = string.ascii_letters + string.digits


def secret(rng: random.Random, kind: str) -> str:
    return {
        "aws_access_key": lambda: "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16),
        "aws_secret_key": lambda: _rand(rng, _B62 + "/+", 40),
        "openai": lambda: "sk-proj-" + _rand(rng, _B62 + "_-", 48),
        "anthropic": lambda: "sk-ant-api03-" + _rand(rng, _B62 + "_-", 60),
        "github": lambda: "ghp_" + _rand(rng, _B62, 36),
        "slack": lambda: f"xoxb-{_digits(rng, 11)}-{_digits(rng, 12)}-{_rand(rng, _B62, 24)}",
        "stripe": lambda: "sk_live_" + _rand(rng, _B62, 24),
        "google": lambda: "AIza" + _rand(rng, _B62 + "_-", 35),
        "jwt": lambda: ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in (
            {"alg": "HS256", "typ": "JWT"}, {"sub": _digits(rng, 8), "iat": rng.randint(1.6e9, 1.8e9)})) + "."
            + _rand(rng, _B62 + "_-", 43),
        "private_key": lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(
            _rand(rng, _B62 + "+/", 64) for _ in range(4)) + "\n-----END RSA PRIVATE KEY-----",
    }[kind]()


# Written here, in presidio's template syntax, so that every structured entity has several templates
# (presidio's own file has only two or three for IBAN, SSN and IP addresses).
EXTRA_TEMPLATES = [
    "Please wire the deposit to {{iban}} and put the booking number in the reference.",
    "Our new supplier's bank details: {{organization}}, IBAN {{iban}}, BIC DEUTDEFF.",
    "Refund failed for account {{iban}}; can you check whether the IBAN is valid?",
    "SEPA mandate for {{person}}: debtor IBAN {{iban}}, creditor ID DE98ZZZ09999999999.",
    "My social security number is {{ssn}} and my date of birth is {{date_of_birth}}.",
    "W-2 for {{person}}, SSN {{ssn}}, employer {{organization}}.",
    "The form rejected SSN {{ssn}} even though it matches my card.",
    "Applicant: {{person}} | SSN: {{ssn}} | City: {{city}}",
    "The server at {{ip_address}} stopped answering pings after the update.",
    "Block {{ip_address}} in the firewall, it sent 4000 requests in 10 minutes.",
    "nginx logs show repeated 401s from {{ip_address}} between 02:00 and 02:15.",
    "Add {{ip_address}} to the allow-list of the {{organization}} VPN.",
    "Contact {{person}} at {{email}} or {{phone_number}} about the invoice.",
    "Send the signed contract to {{email}} before Friday, cc {{email}}.",
    "Card on file: {{credit_card_number}}, billing zip {{zipcode}}.",
    "Text me at {{phone_number}} when the parcel for {{address}} arrives.",
]
_SECRET_ENTITY = {"aws_access_key": "aws_access_key", "aws_secret_key": "aws_secret_key", "jwt": "jwt",
                  "private_key": "private_key"}
SECRET_TEMPLATES = [
    "Why does boto3 fail with these credentials?\naws_access_key_id = {aws_access_key}\n"
    "aws_secret_access_key = {aws_secret_key}",
    "export AWS_ACCESS_KEY_ID={aws_access_key}\nexport AWS_SECRET_ACCESS_KEY={aws_secret_key}\nwhat is wrong?",
    "My .env has OPENAI_API_KEY={openai} but the client says 401. Help?",
    "client = anthropic.Anthropic(api_key=\"{anthropic}\")  # why is this rejected?",
    "git push fails with token {github}, is it expired?",
    "Post to Slack with curl -H 'Authorization: Bearer {slack}' https://slack.com/api/chat.postMessage",
    "stripe.api_key = '{stripe}'\ncharge = stripe.Charge.create(amount=2000)",
    "The maps widget uses key={google} and shows 'RefererNotAllowed'.",
    "Decode this token and tell me when it expires: {jwt}",
    "Authorization: Bearer {jwt}\nIs this header correct?",
    "Convert this key to PKCS#8:\n{private_key}",
    "Which algorithm is this? {private_key}",
]
SECRET_NEGATIVES = [
    "The commit 3f9a2c7e1b4d5a6f7e8c9b0a1d2e3f4a5b6c7d8e introduced the bug.",
    "Example from the AWS docs: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
    "Set OPENAI_API_KEY=sk-your-key-here in the .env file.",
    "The request id is 7c9e6679-7425-40de-944b-e07fc1f97d1e and the trace id 4bf92f3577b34da6a3ce929d0e0e4736.",
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Use the placeholder ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx in the docs.",
    "Order 2024-000123 shipped on 2024-03-05 to warehouse 12, shelf 4.",
    "Version 3.12.1 fixed CVE-2024-12345; see build 20240305.1.",
]


FAKER_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "en_IN")


def faker_generators(factory: Any, seed: int) -> dict[str, Callable[[random.Random], str]]:
    """Structured values from Faker, as presidio-evaluator makes them (phones from five locales)."""
    fakers = [factory(locale) for locale in FAKER_LOCALES]
    for offset, fake in enumerate(fakers):
        fake.seed_instance(seed + offset)
    us = fakers[0]
    return {
        "credit_card": lambda rng: us.credit_card_number(),
        "iban": lambda rng: rng.choice(fakers).iban(),
        "us_ssn": lambda rng: us.ssn(),
        "phone": lambda rng: rng.choice(fakers).phone_number(),
        "ip_address": lambda rng: us.ipv4() if rng.random() < 0.7 else us.ipv6(),
        "email": lambda rng: us.email(),
    }


def _fill_presidio(template: str, rng: random.Random, person: dict[str, str],
                   generators: dict[str, Callable[[random.Random], str]]) -> tuple[str, list[tuple[int, int, str]]]:
    full_name = f"{person['GivenName']} {person['Surname']}"
    street = person["StreetAddress"]
    unstructured = {
        "person": full_name, "name": full_name, "first_name": person["GivenName"], "last_name": person["Surname"],
        "address": f"{street}, {person['City']}, {person['State']} {person['ZipCode']}",
        "street_name": street.split(" ", 1)[-1], "building_number": street.split(" ")[0], "city": person["City"],
        "country": person["CountryFull"], "organization": person["Company"], "company": person["Company"],
        "job": person["Occupation"], "age": person["Age"], "zipcode": person["ZipCode"], "postcode": person["ZipCode"],
        "date_of_birth": person["Birthday"], "url": f"https://{person['Domain'].lower()}",
        "us_driver_license": "D" + _digits(rng, 7), "state_abbr": person["State"], "year": str(rng.randint(1950, 2024)),
    }
    spans: list[tuple[int, int, str]] = []
    out = ""
    last = 0
    for match in re.finditer(r"\{\{(\w+)\}\}", template):
        slot = match.group(1)
        out += template[last:match.start()]
        entity = ENTITY_OF_SLOT.get(slot)
        value = generators[entity](rng) if entity else unstructured.get(slot, person["GivenName"])
        if entity:
            spans.append((len(out), len(out) + len(value), entity))
        out += value
        last = match.end()
    return out + template[last:], spans


def sentences(presidio: list[str], people: list[dict[str, str]], seed: int, per_template: int = 6,
              generators: dict[str, Callable[[random.Random], str]] | None = None,
              ) -> list[tuple[str, str, list[tuple[int, int, str]]]]:
    """(group, text, labelled spans): presidio templates × `per_template`, secret templates, negatives.

    Structured values come from `generators` (Faker's, see `faker_generators`) or this module's own.
    """
    generators = generators or OWN_GENERATORS
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    out = []
    rare = ("{{iban}}", "{{ssn}}", "{{ip_address}}", "{{email}}")
    # presidio's file keeps one template per line, with line breaks written as a literal backslash-n
    for index, template in enumerate(t.replace("\\n", "\n") for t in [*presidio, *EXTRA_TEMPLATES]):
        for _ in range(per_template * (3 if any(r in template for r in rare) else 1)):
            text, spans = _fill_presidio(template, rng, rng.choice(people), generators)
            out.append((f"p{index}", text, spans))
    for index, template in enumerate(SECRET_TEMPLATES):
        for _ in range(per_template * 2):
            spans: list[tuple[int, int, str]] = []
            text = ""
            last = 0
            for match in re.finditer(r"\{(\w+)\}", template):
                value = secret(rng, match.group(1))
                text += template[last:match.start()]
                spans.append((len(text), len(text) + len(value), _SECRET_ENTITY.get(match.group(1), "api_key")))
                text += value
                last = match.end()
            out.append((f"s{index}", text + template[last:], spans))
    out.extend((f"n{i}", text, []) for i, text in enumerate(SECRET_NEGATIVES))
    return out
