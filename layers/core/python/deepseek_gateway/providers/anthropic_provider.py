"""Anthropic through the `anthropic` SDK, translating OpenAI's shape both ways."""

from __future__ import annotations

import time
from typing import Any

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.providers.anthropic_translation import from_anthropic, to_anthropic
from deepseek_gateway.providers.base import ProviderFailure
from deepseek_gateway.providers.credentials import KeySource

# Anthropic requires max_tokens; OpenAI does not. Without one from the client we ask for this many.
DEFAULT_MAX_TOKENS = 4096


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, base_url: str, api_key: KeySource) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._client: Any = None
        self._client_key: str | None = None

    def configured(self) -> bool:
        return self._api_key() is not None

    def _client_for(self, key: str) -> Any:
        if self._client is None or key != self._client_key:
            from anthropic import Anthropic  # lazy: ~0.9 s of import paid only when Anthropic is called

            self._client = Anthropic(api_key=key, base_url=self._base_url, max_retries=0)
            self._client_key = key
        return self._client

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry, timeout_s: float) -> ChatCompletion:
        import anthropic

        from deepseek_gateway.providers.sdk_errors import classify

        key = self._api_key()
        if key is None:
            raise ProviderFailure("anthropic", "connection", "no API key is configured for this provider")
        kwargs = to_anthropic(request, entry.upstream, min(DEFAULT_MAX_TOKENS, entry.max_output_tokens))
        client = self._client_for(key)
        try:
            raw = client.with_options(timeout=timeout_s).messages.with_raw_response.create(**kwargs)
            data = raw.http_response.json()
        except anthropic.APIError as exc:
            raise classify(exc, anthropic, "anthropic") from exc
        except ValueError as exc:
            raise ProviderFailure("anthropic", "malformed", "the provider's answer was not JSON") from exc
        if not isinstance(data, dict) or data.get("type") != "message":
            raise ProviderFailure("anthropic", "malformed", "the provider's answer is not a message")
        try:
            return from_anthropic(data, entry.id, int(time.time()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderFailure("anthropic", "malformed", "the provider's answer could not be translated") from exc
