"""The webhook channel: what each answer means (delivered, retried, permanent), redirects never followed,
signed requests, and no request at all to a refused target or over plain HTTP when deployed."""

from __future__ import annotations

import httpx
import pytest
from deepseek_gateway.notifications.channels import PermanentDeliveryError, RetryableDeliveryError
from deepseek_gateway.notifications.events import NotificationEvent
from deepseek_gateway.notifications.signing import sign, tenant_secret
from deepseek_gateway.notifications.ssrf import AddressPolicy
from deepseek_gateway.notifications.webhook import WebhookChannel
from deepseek_gateway.tenancy.models import Notifications, Tenant

EVENT = NotificationEvent(id="evt_1", type="batch.completed", tenant_id="acme", created_at=1767225600,
                          data={"batch_id": "batch_1"})
NOW = 1767225601


def tenant(url: str = "https://hooks.example.com/in?token=abc") -> Tenant:
    return Tenant(tenant_id="acme", name="Acme", created_at=0, updated_at=0,
                  notifications=Notifications(webhook_url=url))


class Endpoint:
    """A scripted webhook receiver behind httpx.MockTransport."""

    def __init__(self, answer: httpx.Response | Exception | None = None) -> None:
        self.answer = answer if answer is not None else httpx.Response(200)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def channel(endpoint: Endpoint, address: str = "93.184.215.14", **kwargs) -> WebhookChannel:
    return WebhookChannel(lambda tenant_id: tenant_secret("master", tenant_id),
                          AddressPolicy(resolver=lambda host, port: [address]),
                          transport_factory=lambda: httpx.MockTransport(endpoint), clock=lambda: NOW, **kwargs)


def test_a_2xx_is_delivered_with_a_standard_webhooks_signature():
    endpoint = Endpoint(httpx.Response(204))
    details = channel(endpoint).deliver(EVENT, tenant())
    assert details == {"host": "hooks.example.com", "status_code": 204}  # no path or query: they may hold tokens
    (request,) = endpoint.requests
    body = request.content.decode()
    assert body == EVENT.webhook_body() and request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "evt_1" and request.headers["webhook-timestamp"] == str(NOW)
    assert request.headers["webhook-signature"] == sign(tenant_secret("master", "acme"), "evt_1", NOW, body)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_timeouts_and_rate_limits_are_retried(status):
    with pytest.raises(RetryableDeliveryError, match=str(status)):
        channel(Endpoint(httpx.Response(status))).deliver(EVENT, tenant())


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_client_errors_are_permanent(status):
    with pytest.raises(PermanentDeliveryError, match=str(status)):
        channel(Endpoint(httpx.Response(status))).deliver(EVENT, tenant())


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_is_permanent(status):
    endpoint = Endpoint(httpx.Response(status, headers={"location": "http://169.254.169.254/latest/meta-data/"}))
    with pytest.raises(PermanentDeliveryError, match="redirect"):
        channel(endpoint).deliver(EVENT, tenant())
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"),
                                     httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped")])
def test_timeouts_and_connection_errors_are_retried(failure):
    with pytest.raises(RetryableDeliveryError):
        channel(Endpoint(failure)).deliver(EVENT, tenant())


def test_a_dns_failure_is_retried():
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    endpoint = Endpoint()
    webhook = WebhookChannel(lambda t: tenant_secret("m", t), AddressPolicy(resolver=resolver),
                             transport_factory=lambda: httpx.MockTransport(endpoint))
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        webhook.deliver(EVENT, tenant())
    assert endpoint.requests == []


def test_a_private_target_is_permanent_and_never_contacted():
    endpoint = Endpoint()
    with pytest.raises(PermanentDeliveryError, match="private address"):
        channel(endpoint, address="10.0.0.7").deliver(EVENT, tenant())
    assert endpoint.requests == []


def test_plain_http_is_refused_when_deployed_and_allowed_in_the_local_cloud():
    endpoint = Endpoint()
    with pytest.raises(PermanentDeliveryError, match="'http' is not allowed"):
        channel(endpoint).deliver(EVENT, tenant("http://hooks.example.com/in"))
    assert endpoint.requests == []
    assert channel(endpoint, require_https=False).deliver(EVENT, tenant("http://hooks.example.com/in"))
    assert len(endpoint.requests) == 1


def test_a_tenant_without_a_webhook_url_has_no_webhook_channel():
    assert not channel(Endpoint()).configured(Tenant(tenant_id="acme", name="A", created_at=0, updated_at=0))
    assert channel(Endpoint()).configured(tenant())
