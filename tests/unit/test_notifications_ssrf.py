"""SSRF protection of webhook targets: every forbidden address class refused after resolution, the checked
address pinned for the connection (no second DNS answer), the hostname kept for Host and TLS."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from deepseek_gateway.notifications.ssrf import AddressPolicy, PinnedTransport, UnsafeWebhookTarget


class FakeResolver:
    """Answers from a script, one answer per call; records what was asked."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


FORBIDDEN = {
    "10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.254": "private", "192.168.1.10": "private",
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "169.254.169.254": "metadata", "169.254.10.1": "link_local",
    "100.64.0.1": "shared", "100.127.255.254": "shared", "224.0.0.251": "multicast", "239.255.255.250": "multicast",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved", "192.0.2.7": "non_global", "198.18.0.1": "non_global",
    "0.0.0.0": "unspecified",  # noqa: S104 - an address refused, not one bound
    "::1": "loopback", "::": "unspecified", "fc00::1": "private", "fd12:3456::1": "private",
    "fd00:ec2::254": "metadata", "fe80::1": "link_local", "ff02::1": "multicast", "2001:db8::1": "non_global",
    "::ffff:10.0.0.1": "private", "::ffff:127.0.0.1": "loopback", "::ffff:169.254.169.254": "metadata",
    "64:ff9b::a00:1": "private", "2002:a00:1::1": "private",
}


@pytest.mark.parametrize(("address", "kind"), FORBIDDEN.items())
def test_a_host_resolving_to_a_forbidden_address_is_refused(address, kind):
    policy = AddressPolicy(resolver=FakeResolver([address]))
    with pytest.raises(UnsafeWebhookTarget, match=f"a {kind} address"):
        policy.pin("hooks.example.com", 443)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_a_public_address_is_allowed(address):
    pinned = AddressPolicy(resolver=FakeResolver([address])).pin("hooks.example.com", 443)
    assert pinned == ipaddress.ip_address(address)


def test_an_ipv4_mapped_public_address_connects_over_ipv4():
    assert AddressPolicy(resolver=FakeResolver(["::ffff:8.8.8.8"])).pin("h.example", 443) == ipaddress.ip_address(
        "8.8.8.8")


def test_one_forbidden_address_among_public_ones_refuses_the_host():
    with pytest.raises(UnsafeWebhookTarget):
        AddressPolicy(resolver=FakeResolver(["93.184.215.14", "10.0.0.5"])).pin("mixed.example.com", 443)


def test_an_ip_literal_is_checked_without_dns():
    resolver = FakeResolver(["93.184.215.14"])
    with pytest.raises(UnsafeWebhookTarget, match="metadata"):
        AddressPolicy(resolver=resolver).pin("169.254.169.254", 80)
    assert resolver.calls == []


def test_the_local_cloud_allows_loopback_and_private_targets_but_never_metadata_or_link_local():
    local = AddressPolicy(allow_private=True, resolver=FakeResolver(["127.0.0.1"]))
    assert str(local.pin("localhost", 8080)) == "127.0.0.1"
    assert str(local.check("10.0.0.8")) == "10.0.0.8" and str(local.check("::1")) == "::1"
    for address in ("169.254.169.254", "169.254.1.1", "fd00:ec2::254", "100.64.0.1", "0.0.0.0", "224.0.0.1"):  # noqa: S104
        with pytest.raises(UnsafeWebhookTarget):
            local.check(address)


def test_dns_is_resolved_once_and_the_connection_goes_to_the_checked_address():
    # A rebinding resolver: public for the check, loopback for any later lookup.
    resolver = FakeResolver(["93.184.215.14"], ["127.0.0.1"])
    seen: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    transport = PinnedTransport(AddressPolicy(resolver=resolver), httpx.MockTransport(endpoint))
    with httpx.Client(transport=transport) as client:
        assert client.post("https://hooks.example.com:8443/in?token=t", content=b"{}").status_code == 204
    assert resolver.calls == [("hooks.example.com", 8443)]
    (request,) = seen
    assert request.url.host == "93.184.215.14" and request.url.port == 8443 and request.url.path == "/in"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"  # TLS verifies the name, not the IP


def test_an_ipv6_target_is_pinned_in_brackets():
    seen: list[httpx.Request] = []
    transport = PinnedTransport(AddressPolicy(resolver=FakeResolver(["2606:4700:4700::1111"])),
                                httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    with httpx.Client(transport=transport) as client:
        client.post("https://v6.example.com/hook")
    assert str(seen[0].url) == "https://[2606:4700:4700::1111]/hook"


def test_a_refused_target_is_never_contacted():
    seen: list[httpx.Request] = []
    transport = PinnedTransport(AddressPolicy(resolver=FakeResolver(["10.0.0.1"])),
                                httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    with httpx.Client(transport=transport) as client, pytest.raises(UnsafeWebhookTarget):
        client.post("https://internal.example.com/hook")
    assert seen == []
