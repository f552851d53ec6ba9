"""The fault matrix of the router, with scripted fake providers and a fake clock."""

from __future__ import annotations

import pytest
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.errors import (
    GatewayTimeoutError,
    InvalidRequestError,
    ProviderClientError,
    ServiceUnavailableError,
    UpstreamError,
)
from deepseek_gateway.models.chat import ChatCompletionRequest
from deepseek_gateway.providers.base import ProviderFailure
from deepseek_gateway.routing.breaker import CircuitBreaker, InMemoryBreakerStore
from deepseek_gateway.routing.router import Router, RoutingPolicy

from tests.fakes import FakeClock, FakeProvider

POLICY = RoutingPolicy(
    attempt_timeout_s=10.0,
    deadline_s=60.0,
    attempts_per_provider=2,
    backoff_base_s=0.5,
    backoff_cap_s=4.0,
    max_retry_after_s=5.0,
)


def request(**extra) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], **extra}
    )


def failure(provider: str, kind: str = "status", status: int | None = 500, retry_after: float | None = None):
    return ProviderFailure(provider, kind, "boom", status=status if kind == "status" else None,
                           retry_after_s=retry_after)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def providers() -> dict[str, FakeProvider]:
    return {name: FakeProvider(name) for name in ("deepseek", "openai", "anthropic")}


def make_router(providers, clock, policy=POLICY, threshold=5, store=None):
    breaker = CircuitBreaker(store or InMemoryBreakerStore(), threshold=threshold, cooldown_s=30,
                             cache_ttl_s=0, clock=clock)
    return Router(load_catalogue(), providers, breaker, policy, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)


def route(router, req=None):
    req = req or request()
    return router.complete(req, load_catalogue().resolve(req.model))


def test_healthy_primary_answers_without_fallback(providers, clock):
    result = route(make_router(providers, clock))
    assert result.provider == "deepseek"
    assert result.fallbacks == 0
    assert result.attempts == 1
    assert clock.sleeps == []


def test_primary_500_twice_falls_back_to_openai(providers, clock):
    providers["deepseek"].script = [failure("deepseek"), failure("deepseek")]
    result = route(make_router(providers, clock))
    assert result.provider == "openai"
    assert result.served_by.id == "gpt-4.1-mini"
    assert result.fallbacks == 1
    assert len(providers["deepseek"].calls) == 2  # retried once before falling back
    assert clock.sleeps == [0.25]  # full jitter: 0.5 (rng) * min(cap, 0.5 * 2**0)


def test_primary_500_once_then_retry_succeeds_on_same_provider(providers, clock):
    providers["deepseek"].script = [failure("deepseek", status=503)]
    result = route(make_router(providers, clock))
    assert result.provider == "deepseek"
    assert result.attempts == 2


def test_429_with_short_retry_after_waits_exactly_that_long(providers, clock):
    providers["deepseek"].script = [failure("deepseek", status=429, retry_after=2.0)]
    result = route(make_router(providers, clock))
    assert result.provider == "deepseek"
    assert clock.sleeps == [2.0]


def test_429_with_long_retry_after_moves_on_without_waiting(providers, clock):
    providers["deepseek"].script = [failure("deepseek", status=429, retry_after=120.0)]
    result = route(make_router(providers, clock))
    assert result.provider == "openai"
    assert clock.sleeps == []
    assert len(providers["deepseek"].calls) == 1


def test_timeout_falls_back_and_attempts_get_the_attempt_timeout(providers, clock):
    providers["deepseek"].script = [failure("deepseek", kind="timeout")] * 2
    result = route(make_router(providers, clock))
    assert result.provider == "openai"
    assert providers["deepseek"].calls == [10.0, 10.0]


def test_attempt_timeout_is_cut_to_the_time_left_before_the_deadline(providers, clock):
    def slow_failure(*_):
        clock.advance(55.0)
        raise failure("deepseek", kind="timeout")

    providers["deepseek"].script = [slow_failure]
    result = route(make_router(providers, clock))
    assert result.provider == "deepseek"  # second attempt, within the deadline
    assert providers["deepseek"].calls[1] == pytest.approx(60.0 - 55.0 - 0.25)


def test_deadline_passed_gives_504(providers, clock):
    def eat_deadline(*_):
        clock.advance(61.0)
        raise failure("deepseek")

    providers["deepseek"].script = [eat_deadline]
    with pytest.raises(GatewayTimeoutError):
        route(make_router(providers, clock))


def test_all_providers_failing_gives_502_naming_each(providers, clock):
    for name, fake in providers.items():
        fake.script = [failure(name)] * 2
    with pytest.raises(UpstreamError) as caught:
        route(make_router(providers, clock))
    assert caught.value.status == 502
    assert "deepseek-chat" in caught.value.message and "claude-haiku-4-5" in caught.value.message


def test_all_providers_timing_out_gives_504(providers, clock):
    for name, fake in providers.items():
        fake.script = [failure(name, kind="timeout")] * 2
    with pytest.raises(GatewayTimeoutError):
        route(make_router(providers, clock))


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_error_is_returned_without_retry_or_fallback(providers, clock, status):
    providers["deepseek"].script = [failure("deepseek", status=status)]
    with pytest.raises(ProviderClientError) as caught:
        route(make_router(providers, clock))
    assert caught.value.status == status
    assert len(providers["deepseek"].calls) == 1
    assert providers["openai"].calls == [] and providers["anthropic"].calls == []


@pytest.mark.parametrize("status", [401, 403])
def test_provider_refusing_our_key_is_a_502_not_the_callers_auth_error(providers, clock, status):
    providers["deepseek"].script = [failure("deepseek", status=status)]
    with pytest.raises(UpstreamError) as caught:
        route(make_router(providers, clock))
    assert caught.value.code == "upstream_auth_error"
    assert providers["openai"].calls == []


def test_unconfigured_provider_is_skipped_without_a_call(providers, clock):
    providers["deepseek"].is_configured = False
    result = route(make_router(providers, clock))
    assert result.provider == "openai"
    assert providers["deepseek"].calls == []


def test_breaker_opens_after_threshold_and_skips_the_provider(providers, clock):
    router = make_router(providers, clock, threshold=2)
    providers["deepseek"].script = [failure("deepseek")] * 2
    assert route(router).provider == "openai"  # two failures: the breaker opens
    result = route(router)
    assert result.provider == "openai"
    assert len(providers["deepseek"].calls) == 2  # not called while open


def test_breaker_half_opens_after_cooldown_and_closes_on_success(providers, clock):
    router = make_router(providers, clock, threshold=2)
    providers["deepseek"].script = [failure("deepseek")] * 2
    route(router)
    clock.advance(31.0)
    assert route(router).provider == "deepseek"  # trial call succeeds: closed again
    assert route(router).provider == "deepseek"


def test_breaker_reopens_on_a_single_failure_after_cooldown(providers, clock):
    router = make_router(providers, clock, threshold=3)
    providers["deepseek"].script = [failure("deepseek")] * 4
    route(router)  # 2 failures
    route(router)  # 3rd failure opens; then openai
    clock.advance(31.0)
    assert route(router).provider == "openai"  # one trial failure reopens at once
    assert len(providers["deepseek"].calls) == 4


def test_every_breaker_open_gives_503_with_retry_after(providers, clock):
    store = InMemoryBreakerStore()
    for name in providers:
        store.add_failure(name, clock.now, threshold=1, cooldown_s=30)
    with pytest.raises(ServiceUnavailableError) as caught:
        route(make_router(providers, clock, store=store))
    assert caught.value.status == 503
    assert "retry-after" in caught.value.headers


def test_fallback_without_the_needed_capability_is_skipped(providers, clock):
    providers["deepseek"].script = [failure("deepseek")] * 2
    providers["openai"].script = [failure("openai")] * 2
    with pytest.raises(UpstreamError):
        route(make_router(providers, clock), request(n=2))  # claude cannot answer n > 1
    assert providers["anthropic"].calls == []


def test_model_without_a_capability_the_request_uses_is_a_400(providers, clock):
    vision = request(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    with pytest.raises(InvalidRequestError):
        route(make_router(providers, clock), vision)
