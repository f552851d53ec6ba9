"""API key format: `dsg_<key id>_<secret>`, 256 random bits, stored only as a SHA-256 digest.

The key id (public, 16 base32 characters) finds the record in one read; the secret is compared
with `hmac.compare_digest`. A plain SHA-256 is right here, not a slow password hash: the secret is
256 random bits, so there is nothing to brute-force, and the authorizer pays no CPU per call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, field

PREFIX = "dsg_"
_ALPHABET = string.ascii_letters + string.digits
SECRET_CHARS = 44  # 44 × log2(62) ≈ 262 bits of randomness
_KEY_RE = re.compile(r"^dsg_([a-z2-7]{16})_([A-Za-z0-9]{44})$")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str = field(repr=False)  # the whole `dsg_...` string: shown to the caller once, never stored

    @property
    def digest(self) -> str:
        return digest(_KEY_RE.match(self.secret).group(2))  # type: ignore[union-attr]


def generate() -> NewKey:
    key_id = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_CHARS))
    return NewKey(key_id, f"{PREFIX}{key_id}_{secret}")


def parse(presented: str) -> tuple[str, str] | None:
    """(key id, secret) for a well-formed key, None for anything else."""
    match = _KEY_RE.match(presented.strip())
    return (match.group(1), match.group(2)) if match else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
