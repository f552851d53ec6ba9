"""The notifier handler end to end: SQS records from moto, tenants in moto's DynamoDB, webhooks to a real
HTTP server on 127.0.0.1 (the local cloud's ALLOW_PRIVATE_WEBHOOKS), email in moto's SES, SMS in moto's SNS."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from deepseek_gateway.notifications.runtime import reset_consumer
from deepseek_gateway.notifications.signing import tenant_secret
from deepseek_gateway.tenancy.models import Notifications, TenantCreate
from deepseek_gateway.tenancy.store import TenantStore
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from tests.helpers import ROOT, FakeLambdaContext, load_handler
from tests.unit.test_notifications_signing import reference_verify

MASTER = "local-master-secret"
SENDER = "notify@gateway.example"
REGION = "us-east-1"


class Receiver(ThreadingHTTPServer):
    """Webhook endpoints on loopback: each path answers its configured status (200 by default)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Endpoint)
        self.status: dict[str, int] = {}
        self.received: list[dict] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.received]


class _Endpoint(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        self.server.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        status = self.server.status.get(self.path, 200)
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("location", "/redirected-here")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloud(monkeypatch):
    """moto with the tables, queue and SES identity the notifier's template entry gives it."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName="tenants", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                    {"AttributeName": "sk", "AttributeType": "S"}])
        dynamodb.create_table(TableName="idempotency", BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
        boto3.client("sqs", region_name=REGION).create_queue(QueueName="notifications")
        for key, value in {"TENANTS_TABLE_NAME": "tenants", "IDEMPOTENCY_TABLE_NAME": "idempotency",
                           "TENANT_CACHE_TTL_S": "0", "WEBHOOK_SIGNING_SECRET": MASTER, "WEBHOOK_TIMEOUT_S": "2",
                           "ALLOW_PRIVATE_WEBHOOKS": "true", "SES_SENDER": SENDER}.items():
            monkeypatch.setenv(key, value)
        reset_consumer()
        yield TenantStore("tenants", dynamodb)
        reset_consumer()


@pytest.fixture
def notifier():
    return load_handler("notifier")


def add_tenant(store: TenantStore, tenant_id: str, **notifications) -> None:
    store.create_tenant(TenantCreate(tenant_id=tenant_id, name=tenant_id, notifications=Notifications(**notifications)))


def event(tenant_id: str, event_type: str = "batch.completed", **data) -> dict:
    return {"type": event_type, "tenant_id": tenant_id, "data": {"batch_id": "batch_1", **data}}


def queued(*bodies: dict | str) -> dict:
    """Sends the bodies to moto's queue and receives them as the event source mapping would."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="notifications")["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body))
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    order = {json.dumps(b) if not isinstance(b, str) else b: i for i, b in enumerate(bodies)}
    messages.sort(key=lambda m: order[m["Body"]])
    arn = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:notifications"
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                         "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION} for m in messages]}


def failed_ids(notifier, sqs_event: dict) -> list[str]:
    result = notifier.lambda_handler(sqs_event, FakeLambdaContext(function_name="notifier"))
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def sent_emails() -> list:
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages


def sent_sms() -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def test_the_sample_event_reaches_every_channel_and_the_unsubscribed_event_is_skipped(cloud, receiver, notifier):
    add_tenant(cloud, "demo", webhook_url=receiver.url("/demo"), email="ops@demo.example", sms="+15555550100")
    sample = json.loads((ROOT / "events" / "notifier_sqs.json").read_text())
    assert failed_ids(notifier, sample) == []
    # file.ingested is not among the tenant's (default) events: no webhook, email or SMS for it.
    assert [json.loads(r["body"])["type"] for r in receiver.received] == ["batch.completed", "budget.threshold"]
    for request in receiver.received:
        assert reference_verify(tenant_secret(MASTER, "demo"), request["headers"], request["body"])
        assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 60
    assert receiver.received[0]["headers"]["webhook-id"] == "evt_5f2c0d3e9b8a4c1d8e7f6a5b4c3d2e1f"
    emails = sent_emails()
    assert [m.destinations["ToAddresses"] for m in emails] == [["ops@demo.example"]] * 2
    assert emails[0].source == SENDER and "Batch batch_7f3a9c2e completed: 997 of 1000" in emails[0].body
    assert "80% of the 2026-01 budget used" in emails[1].subject
    assert [phone for phone, _ in sent_sms()] == ["+15555550100"] * 2


def test_a_webhook_that_is_down_fails_only_its_record_which_comes_back_after_a_backoff(cloud, receiver, notifier):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    add_tenant(cloud, "acme", webhook_url=receiver.url("/acme"))
    add_tenant(cloud, "down", webhook_url=down_url)
    batch = queued(event("acme"), event("down"), event("acme", batch_id="batch_2"))
    assert failed_ids(notifier, batch) == [batch["Records"][1]["messageId"]]
    assert receiver.paths() == ["/acme", "/acme"]
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues["notifications"]
    (message,) = [m for m in queue._messages if m.id == batch["Records"][1]["messageId"]]
    assert 55_000 < message.visible_at - time.time() * 1000 <= 60_000  # first retry in 1 min, not the default


def test_a_retry_delivers_the_failed_webhook_without_emailing_twice(cloud, receiver, notifier):
    add_tenant(cloud, "flaky", webhook_url=receiver.url("/flaky"), email="ops@flaky.example")
    receiver.status["/flaky"] = 503
    batch = queued(event("flaky"))
    assert failed_ids(notifier, batch) == [batch["Records"][0]["messageId"]]
    assert len(sent_emails()) == 1
    receiver.status["/flaky"] = 200
    assert failed_ids(notifier, batch) == []  # the redelivery
    assert len(sent_emails()) == 1
    first, second = receiver.received
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]  # receivers can drop duplicates


@pytest.mark.parametrize("status", [404, 410, 302])
def test_a_permanent_answer_or_a_redirect_is_not_retried_nor_followed(cloud, receiver, notifier, status):
    add_tenant(cloud, "acme", webhook_url=receiver.url("/gone"))
    receiver.status["/gone"] = status
    batch = queued(event("acme"))
    assert failed_ids(notifier, batch) == []
    assert failed_ids(notifier, batch) == []  # a redelivery (an SQS duplicate) does not try again
    assert receiver.paths() == ["/gone"]  # never /redirected-here


def test_a_malformed_message_is_reported_failed_while_the_rest_succeed(cloud, receiver, notifier):
    add_tenant(cloud, "acme", webhook_url=receiver.url("/acme"))
    batch = queued(event("acme"), "{this is not json", {"type": "batch.completed"})
    records = batch["Records"]
    assert failed_ids(notifier, batch) == [records[1]["messageId"], records[2]["messageId"]]
    assert receiver.paths() == ["/acme"]


def test_when_every_record_fails_the_response_lists_them_all_instead_of_raising(cloud, notifier):
    batch = queued("not json", "[]")
    assert sorted(failed_ids(notifier, batch)) == sorted(r["messageId"] for r in batch["Records"])


def test_deployed_settings_refuse_loopback_and_plain_http_webhooks_for_good(cloud, receiver, notifier, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_WEBHOOKS", "false")
    reset_consumer()
    port = receiver.server_address[1]
    add_tenant(cloud, "sneaky", webhook_url=f"https://localhost:{port}/x")
    add_tenant(cloud, "plain", webhook_url=receiver.url("/plain"))
    assert failed_ids(notifier, queued(event("sneaky"), event("plain"))) == []
    assert receiver.received == []


def test_an_ses_rejection_is_permanent_and_sms_still_goes_out(cloud, notifier, monkeypatch):
    monkeypatch.setenv("SES_SENDER", "unverified@gateway.example")
    reset_consumer()
    add_tenant(cloud, "acme", email="ops@acme.example", sms="+15555550123")
    assert failed_ids(notifier, queued(event("acme"))) == []
    assert sent_emails() == [] and [phone for phone, _ in sent_sms()] == ["+15555550123"]


# --- TLS to a pinned address ----------------------------------------------------------------------------------


def _certificate(tmp_path, hostname: str) -> tuple[str, str]:
    """A self-signed certificate for `hostname` (PEM files: certificate, key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{hostname}.pem", tmp_path / f"{hostname}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.mark.parametrize("url_host", ["hooks.tenant.test", "other.tenant.test"])
def test_a_pinned_https_delivery_verifies_the_certificate_for_the_hostname_not_the_ip(tmp_path, url_host):
    """The certificate names hooks.tenant.test only (no IP): connecting to 127.0.0.1 succeeds only because
    TLS checks the URL's hostname; a URL naming another host on the same address is refused."""
    import ssl

    import httpx
    from deepseek_gateway.notifications.channels import RetryableDeliveryError
    from deepseek_gateway.notifications.events import NotificationEvent
    from deepseek_gateway.notifications.ssrf import AddressPolicy
    from deepseek_gateway.notifications.webhook import WebhookChannel
    from deepseek_gateway.tenancy.models import Tenant

    server_cert, server_key = _certificate(tmp_path, "hooks.tenant.test")
    receiver = Receiver()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(server_cert, server_key)
    receiver.socket = tls.wrap_socket(receiver.socket, server_side=True)
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    lookups: list[str] = []
    try:
        channel = WebhookChannel(
            lambda tenant_id: tenant_secret(MASTER, tenant_id),
            AddressPolicy(allow_private=True, resolver=lambda host, port: lookups.append(host) or ["127.0.0.1"]),
            transport_factory=lambda: httpx.HTTPTransport(verify=ssl.create_default_context(cafile=server_cert)))
        tenant = Tenant(tenant_id="acme", name="Acme", created_at=0, updated_at=0, notifications=Notifications(
            webhook_url=f"https://{url_host}:{receiver.server_address[1]}/tls"))
        event = NotificationEvent.new("batch.failed", "acme", {"batch_id": "b1", "reason": "empty file"})
        if url_host == "hooks.tenant.test":
            assert channel.deliver(event, tenant)["status_code"] == 200
            (request,) = receiver.received
            assert request["headers"]["Host"] == f"hooks.tenant.test:{receiver.server_address[1]}"
        else:  # the certificate does not name this host: refused before anything is sent
            with pytest.raises(RetryableDeliveryError, match="unreachable"):
                channel.deliver(event, tenant)
            assert receiver.received == []
        assert lookups == [url_host]
    finally:
        receiver.shutdown()
        receiver.server_close()
