"""Anthropic through the `anthropic` SDK, translating OpenAI's shape both ways."""

from __future__ import annotations

import time
from typing import Any

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.providers.anthropic_translation import from_anthropic, to_anthropic
from deepseek_gateway.providers.base import ProviderFailure, unencodable_request
from deepseek_gateway.providers.credentials import KeySource
from deepseek_gateway.providers.sdk_client import SdkProvider

# Anthropic requires max_tokens; OpenAI does not. Without one from the client we ask for this many.
DEFAULT_MAX_TOKENS = 4096


class AnthropicProvider(SdkProvider):
    def __init__(self, base_url: str, api_key: KeySource) -> None:
        def make_client(key: str) -> Any:
            from anthropic import Anthropic  # lazy: ~0.9 s of import paid only when Anthropic is called

            return Anthropic(api_key=key, base_url=base_url, max_retries=0)

        super().__init__("anthropic", api_key, make_client)

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry, timeout_s: float) -> ChatCompletion:
        import anthropic

        from deepseek_gateway.providers.sdk_errors import classify

        client = self.client()
        kwargs = to_anthropic(request, entry.upstream, min(DEFAULT_MAX_TOKENS, entry.max_output_tokens))
        try:
            raw = client.with_options(timeout=timeout_s).messages.with_raw_response.create(**kwargs)
        except anthropic.APIError as exc:
            raise classify(exc, anthropic, "anthropic") from exc
        except UnicodeEncodeError as exc:
            raise unencodable_request() from exc
        try:
            data = raw.http_response.json()
        except ValueError as exc:
            raise ProviderFailure("anthropic", "malformed", "the provider's answer was not JSON") from exc
        if not isinstance(data, dict) or data.get("type") != "message":
            raise ProviderFailure("anthropic", "malformed", "the provider's answer is not a message")
        try:
            return from_anthropic(data, entry.id, int(time.time()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderFailure("anthropic", "malformed", "the provider's answer could not be translated") from exc
