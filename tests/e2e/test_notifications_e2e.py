"""A budget threshold crossed on the chat path reaches the tenant's webhook, signed, through the queue."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from deepseek_gateway.notifications.signing import tenant_secret

from tests.e2e.test_auth_e2e import HELLO, cli, sdk

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]


@pytest.fixture
def webhook():
    received: queue.Queue = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            received.put((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_budget_threshold_event_is_delivered_as_a_signed_webhook(cloud, provider, webhook):
    from standardwebhooks import Webhook

    url, received = webhook
    cli(cloud, "tenants", "create", "hooked", "--name", "Hooked", "--budget", "0.00004", "--webhook", url)
    client = sdk(cloud, cli(cloud, "keys", "create", "hooked")["key"])
    client.chat.completions.create(model="deepseek-chat", messages=HELLO, max_tokens=5)  # reserves > 50 %
    headers, body = received.get(timeout=30)
    event = json.loads(body)
    assert event["type"] == "budget.threshold"
    assert event["data"]["threshold_percent"] == 50
    assert event["data"]["month"] == time.strftime("%Y-%m", time.gmtime())
    secret_arn = next(s.environment["WEBHOOK_SIGNING_SECRET_ARN"] for s in cloud.deployment.function_specs()
                      if "WEBHOOK_SIGNING_SECRET_ARN" in s.environment)
    master = cloud.session.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    lower = {k.lower(): v for k, v in headers.items()}
    Webhook(tenant_secret(master, "hooked")).verify(body, lower)  # raises if the signature is wrong
    assert time.time() - int(lower["webhook-timestamp"]) < 120
