"""The circuit breaker's state is shared by every instance through DynamoDB (moto here)."""

from __future__ import annotations

import boto3
import pytest
from deepseek_gateway.routing.breaker import CircuitBreaker, DynamoBreakerStore
from moto import mock_aws

from tests.fakes import FakeClock

TABLE = "breaker"


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "provider", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "provider", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


class CountingClient:
    """Wraps the DynamoDB client to count calls, the way a botocore hook would."""

    def __init__(self, client):
        self._client = client
        self.calls = 0

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return method(*args, **kwargs)

        return counted


def instance(client, clock, cache_ttl_s=2.0):
    return CircuitBreaker(DynamoBreakerStore(TABLE, client), threshold=3, cooldown_s=30,
                          cache_ttl_s=cache_ttl_s, clock=clock)


def test_failures_seen_by_one_instance_open_the_breaker_for_another(dynamodb):
    clock = FakeClock(now=1_700_000_000.0)
    first, second = instance(dynamodb, clock, cache_ttl_s=0), instance(dynamodb, clock, cache_ttl_s=0)
    first.record_failure("deepseek")
    second.record_failure("deepseek")
    first.record_failure("deepseek")  # third failure across two instances: open
    assert not second.allow("deepseek")
    assert second.allow("openai")


def test_breaker_closes_for_everyone_after_a_success(dynamodb):
    clock = FakeClock(now=1_700_000_000.0)
    first, second = instance(dynamodb, clock, cache_ttl_s=0), instance(dynamodb, clock, cache_ttl_s=0)
    for _ in range(3):
        first.record_failure("deepseek")
    clock.advance(31)
    assert second.allow("deepseek")  # half-open after the cool-down
    second.record_success("deepseek")
    item = dynamodb.get_item(TableName=TABLE, Key={"provider": {"S": "deepseek"}})["Item"]
    assert item["failures"]["N"] == "0"


def test_healthy_hot_path_reads_the_table_at_most_once_per_cache_period(dynamodb):
    clock = FakeClock(now=1_700_000_000.0)
    counting = CountingClient(dynamodb)
    breaker = instance(counting, clock, cache_ttl_s=2.0)
    for _ in range(100):
        assert breaker.allow("deepseek")
        breaker.record_success("deepseek")
    assert counting.calls == 1
    clock.advance(2.5)
    breaker.allow("deepseek")
    assert counting.calls == 2


def test_concurrent_failures_are_all_counted(dynamodb):
    clock = FakeClock(now=1_700_000_000.0)
    store = DynamoBreakerStore(TABLE, dynamodb)
    states = [store.add_failure("openai", clock.now, threshold=10, cooldown_s=30) for _ in range(4)]
    assert [s.failures for s in states] == [1, 2, 3, 4]
