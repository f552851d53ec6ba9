"""Classify exceptions of the Stainless-generated SDKs (openai, anthropic) into ProviderFailure.

Both SDKs share one exception hierarchy shape, so one function serves both; the SDK module is
passed in so neither is imported before its provider is called.
"""

from __future__ import annotations

from types import ModuleType

from deepseek_gateway.catalogue import ProviderName
from deepseek_gateway.providers.base import ProviderFailure, parse_retry_after


def classify(exc: Exception, sdk: ModuleType, provider: ProviderName) -> ProviderFailure:
    if isinstance(exc, sdk.APITimeoutError):  # subclass of APIConnectionError: test it first
        return ProviderFailure(provider, "timeout", "the provider did not answer in time")
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderFailure(provider, "connection", "could not connect to the provider")
    if isinstance(exc, sdk.APIStatusError):
        headers = exc.response.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None and headers.get("retry-after-ms"):
            ms = parse_retry_after(headers.get("retry-after-ms"))
            retry_after = ms / 1000 if ms is not None else None
        return ProviderFailure(
            provider,
            "status",
            _upstream_message(exc),
            status=exc.status_code,
            retry_after_s=retry_after,
            param=_upstream_param(exc),
        )
    return ProviderFailure(provider, "malformed", "the provider's answer could not be read")


def _upstream_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:500]
    return str(getattr(exc, "message", "") or "the provider returned an error")[:500]


def _upstream_param(exc: Exception) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("param"), str):
            return error["param"]
    return None
