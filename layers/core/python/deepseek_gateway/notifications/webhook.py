"""Signed webhook deliveries (Standard Webhooks) to the tenant's URL, through the SSRF-safe transport.

Outcomes: 2xx delivered; 3xx refused (redirects are never followed, a redirect could lead anywhere)
and 4xx other than 408/429 are permanent; 408, 429, 5xx, timeouts, connection and DNS errors are
retried through the queue. Every attempt is signed afresh with the current timestamp (receivers
refuse old timestamps) under the same `webhook-id`, which receivers use to drop duplicates.

One client per delivery: a pooled connection opened for one tenant's hostname is never reused for
another hostname that happens to share the IP. The TLS context (certificate store) is built once.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx

from deepseek_gateway.notifications.channels import PermanentDeliveryError, RetryableDeliveryError
from deepseek_gateway.notifications.signing import signature_headers
from deepseek_gateway.notifications.ssrf import AddressPolicy, PinnedTransport, UnsafeWebhookTarget

if TYPE_CHECKING:
    from deepseek_gateway.notifications.events import NotificationEvent
    from deepseek_gateway.tenancy.models import Tenant

USER_AGENT = "DeepSeekGateway-Webhooks/1"
RETRYABLE_4XX = frozenset({408, 429})


@cache
def _tls_context() -> ssl.SSLContext:
    import certifi  # httpx's own certificate store; lazy: only the first delivery pays for it

    return ssl.create_default_context(cafile=certifi.where())


def _default_transport() -> httpx.BaseTransport:
    return httpx.HTTPTransport(verify=_tls_context(), retries=0)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        secret_for: Callable[[str], str],
        policy: AddressPolicy,
        *,
        timeout_s: float = 5.0,
        require_https: bool = True,
        transport_factory: Callable[[], httpx.BaseTransport] = _default_transport,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret_for = secret_for
        self._policy = policy
        self._timeout = httpx.Timeout(timeout_s)
        self._require_https = require_https
        self._transport_factory = transport_factory
        self._clock = clock

    def configured(self, tenant: Tenant) -> bool:
        return tenant.notifications.webhook_url is not None

    def deliver(self, event: NotificationEvent, tenant: Tenant) -> dict[str, Any]:
        url = httpx.URL(str(tenant.notifications.webhook_url))
        details: dict[str, Any] = {"host": url.host}  # never the path or query: they may hold a token
        allowed = {"https"} if self._require_https else {"https", "http"}
        if url.scheme not in allowed:
            raise PermanentDeliveryError(f"webhook URL scheme {url.scheme!r} is not allowed", **details)
        body = event.webhook_body()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signature_headers(self._secret_for(tenant.tenant_id), event.id, int(self._clock()), body),
        }
        transport = PinnedTransport(self._policy, self._transport_factory())
        client = httpx.Client(transport=transport, timeout=self._timeout, follow_redirects=False, trust_env=False)
        with client:
            try:
                with client.stream("POST", url, content=body.encode(), headers=headers) as response:
                    status = response.status_code  # the body is never read
            except UnsafeWebhookTarget as refused:
                raise PermanentDeliveryError(str(refused), **details) from None
            except httpx.TimeoutException as exc:
                raise RetryableDeliveryError(f"webhook timed out ({type(exc).__name__})", **details) from None
            except (httpx.TransportError, OSError) as exc:
                raise RetryableDeliveryError(f"webhook unreachable ({type(exc).__name__})", **details) from None
        details["status_code"] = status
        if 200 <= status < 300:
            return details
        if status >= 500 or status in RETRYABLE_4XX:
            raise RetryableDeliveryError(f"webhook answered {status}", **details)
        if 300 <= status < 400:
            raise PermanentDeliveryError(f"webhook answered a redirect ({status}); redirects are not followed",
                                         **details)
        raise PermanentDeliveryError(f"webhook answered {status}", **details)
