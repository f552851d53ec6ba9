"""Standard Webhooks signatures (https://www.standardwebhooks.com) and each tenant's signing secret.

The signature is `v1,` + base64(HMAC-SHA256(secret, f"{webhook-id}.{webhook-timestamp}.{body}")), with
the secret given to the receiver as `whsec_` + base64(secret bytes). It is implemented here, in a
few lines of the standard library, rather than with the official `standardwebhooks` package
(1.1.0, MIT, no dependencies): signing needs nothing more, the Lambda layer gains no dependency,
and the tests verify these signatures with the official package's `Webhook.verify`, an independent
check that signing and verifying with the same code would not give.

Per-tenant secrets are derived, not stored: HMAC-SHA256(master, "deepseek-gateway/webhook-secret/v1:"
+ tenant_id), the master being one Secrets Manager secret. No per-tenant storage or provisioning, a
tenant's secret is the same on every instance, and an operator can show it to the tenant at any
time with `tenant_secret`. Rotating the master rotates every tenant's secret at once; the `v1`
label leaves room for a per-tenant version later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
_DERIVATION_LABEL = b"deepseek-gateway/webhook-secret/v1:"


def tenant_secret(master: str | bytes, tenant_id: str) -> str:
    """The tenant's webhook secret in the Standard Webhooks form `whsec_<base64>` (32 bytes)."""
    key = master.encode() if isinstance(master, str) else master
    if not key:
        raise ValueError("the webhook signing master secret is empty")
    derived = hmac.new(key, _DERIVATION_LABEL + tenant_id.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(derived).decode()


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value for one message."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
