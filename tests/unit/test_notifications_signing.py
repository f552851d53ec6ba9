"""Webhook signatures: the Standard Webhooks scheme, checked against its published vector, an independent
implementation of the spec and the official `standardwebhooks` package; derived per-tenant secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from deepseek_gateway.notifications.signing import sign, signature_headers, tenant_secret

# The specification's own test vector (standardwebhooks.com, the reference libraries' tests).
VECTOR = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
          "timestamp": 1614265330, "body": '{"test": 2432232314}'}
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def reference_verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """The spec, written out independently: any `v1,` entry matching HMAC-SHA256 over id.timestamp.body."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    entries = [entry.split(",", 1) for entry in headers["webhook-signature"].split(" ")]
    return any(version == "v1" and hmac.compare_digest(value, expected) for version, value in entries)


def test_the_signature_reproduces_the_specification_test_vector():
    assert sign(**VECTOR) == VECTOR_SIGNATURE


def test_signed_headers_verify_with_an_independent_implementation_and_fail_when_tampered():
    secret = tenant_secret("master", "acme")
    body = '{"type":"batch.completed","timestamp":"2026-01-01T00:00:00Z","data":{"batch_id":"b1"}}'
    headers = signature_headers(secret, "evt_1", 1767225600, body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert reference_verify(secret, headers, body)
    assert not reference_verify(secret, headers, body.replace("b1", "b2"))
    assert not reference_verify(tenant_secret("master", "other"), headers, body)


def test_signed_headers_verify_with_the_official_standardwebhooks_package():
    standardwebhooks = pytest.importorskip("standardwebhooks")
    secret = tenant_secret("master", "acme")
    body = '{"type":"budget.threshold","timestamp":"2026-01-01T00:00:00Z","data":{"threshold_percent":80}}'
    headers = signature_headers(secret, "evt_2", int(time.time()), body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {
        "type": "budget.threshold", "timestamp": "2026-01-01T00:00:00Z", "data": {"threshold_percent": 80}}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body + " ", headers)


def test_a_tenant_secret_is_derived_stably_per_tenant_and_master():
    secret = tenant_secret("master", "acme")
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert tenant_secret(b"master", "acme") == secret  # the same on every instance, nothing stored
    assert tenant_secret("master", "acme2") != secret
    assert tenant_secret("rotated", "acme") != secret


def test_an_empty_master_secret_is_refused():
    with pytest.raises(ValueError, match="empty"):
        tenant_secret("", "acme")
