"""Rate limits through the whole local cloud: API Gateway, sandboxes, moto's DynamoDB."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.e2e.test_auth_e2e import cli

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]


def test_50_concurrent_requests_against_10_per_minute_admit_exactly_10(cloud, provider):
    cli(cloud, "tenants", "create", "limited", "--name", "Limited", "--rpm", "10")
    key = cli(cloud, "keys", "create", "limited")["key"]
    url = f"{cloud.info()['api_base_url']}/chat/completions"
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "count me"}]}

    def one(_: int) -> httpx.Response:
        return httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    if time.time() % 60 > 45:  # keep the burst inside one rate-limit minute
        time.sleep(61 - time.time() % 60)
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(one, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 40
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_over_the_limit_the_sdk_raises_rate_limit_error(cloud, provider):
    import openai

    from tests.e2e.test_auth_e2e import HELLO, sdk

    cli(cloud, "tenants", "create", "one-per-minute", "--name", "One", "--rpm", "1")
    client = sdk(cloud, cli(cloud, "keys", "create", "one-per-minute")["key"])
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    client.chat.completions.create(model="deepseek-chat", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1
