"""API key format: recognisable, random enough, parsed strictly, stored only as a digest."""

from __future__ import annotations

import math

from deepseek_gateway.auth import api_keys


def test_new_key_has_the_prefix_and_at_least_256_bits_of_secret():
    key = api_keys.generate()
    assert key.secret.startswith("dsg_")
    key_id, secret = api_keys.parse(key.secret)
    assert key_id == key.key_id
    assert len(secret) * math.log2(62) >= 256


def test_keys_are_unique():
    assert len({api_keys.generate().secret for _ in range(1000)}) == 1000


def test_digest_matches_only_the_right_secret():
    key = api_keys.generate()
    _, secret = api_keys.parse(key.secret)
    assert api_keys.matches(secret, key.digest)
    assert not api_keys.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), key.digest)
    assert secret not in key.digest


def test_malformed_keys_do_not_parse():
    good = api_keys.generate().secret
    for bad in ["", "sk-abc", good.replace("dsg_", "dsk_"), good + "x", good[:-1], good.upper(), "dsg__x"]:
        assert api_keys.parse(bad) is None


def test_the_secret_does_not_appear_in_the_repr():
    key = api_keys.generate()
    assert key.secret not in repr(key)
