"""Webhook targets a tenant may not reach us into: address checks after DNS, and a pinned connection.

A tenant chooses its webhook URL, so a URL is an invitation to make the gateway call something
inside AWS (the instance metadata service, a VPC endpoint, a private load balancer). The host is
resolved once, every address it resolves to is checked, and the connection goes to the checked
address: the URL's host is replaced by that IP, while the `Host` header and TLS (SNI and
certificate verification, through httpcore's `sni_hostname` extension) still use the name. A
second, different DNS answer (rebinding) is never consulted.

Refused always: unspecified, link-local (169.254/16 with 169.254.169.254, fe80::/10), cloud
metadata addresses, shared/CGNAT 100.64/10, multicast, reserved and other non-global ranges
(documentation, benchmarking, 0/8, 240/4). Loopback and private ranges (10/8, 172.16/12,
192.168/16, fc00::/7) are refused unless `allow_private` is set, which only the local cloud does.
IPv6 addresses embedding IPv4 (::ffff:0:0/96, 64:ff9b::/96, 2002::/16) are judged by that IPv4.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "fc00::/7", "fec0::/10"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOWED_WITH_PRIVATE = frozenset({"loopback", "private"})


class UnsafeWebhookTarget(ValueError):  # noqa: N818 - reads as what it is, not as "an error"
    """The webhook's host is, or resolves to, an address the gateway must not call."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_class(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        return address_class(embedded)
    checks = (
        ("metadata", address in _METADATA),
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared", address in _SHARED),
        ("private", any(address in net for net in _PRIVATE if net.version == address.version)),
        ("reserved", address.is_reserved),
        ("non_global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    resolver: Resolver = system_resolver

    def check(self, address: str) -> IPAddress:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        refused = address_class(ip)
        if refused and not (self.allow_private and refused in _ALLOWED_WITH_PRIVATE):
            raise UnsafeWebhookTarget(f"the webhook host resolves to a {refused} address")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            return ip.ipv4_mapped
        return ip

    def pin(self, host: str, port: int) -> IPAddress:
        """The one address to connect to; refuses the host if any address it resolves to is unsafe."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise OSError(f"no address for the webhook host (port {port})")
        checked = [self.check(a) for a in addresses]
        return checked[0]


class PinnedTransport(httpx.BaseTransport):
    """Sends each request to the address `policy` checked, keeping the hostname for Host and TLS."""

    def __init__(self, policy: AddressPolicy, inner: httpx.BaseTransport) -> None:
        self._policy = policy
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        address = self._policy.pin(url.host, port)
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        request.url = url.copy_with(host=str(address))  # Host header was set from the original URL
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
