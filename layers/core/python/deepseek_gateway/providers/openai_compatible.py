"""DeepSeek and OpenAI: both speak OpenAI's chat completions API, called through the `openai` SDK."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from deepseek_gateway.catalogue import ModelEntry, ProviderName
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.providers.base import ProviderFailure
from deepseek_gateway.providers.credentials import KeySource
from deepseek_gateway.providers.sdk_client import SdkProvider


class OpenAICompatibleProvider(SdkProvider):
    def __init__(self, name: ProviderName, base_url: str, api_key: KeySource) -> None:
        def make_client(key: str) -> Any:
            from openai import OpenAI  # lazy: ~0.3 s of import paid only when this provider is called

            return OpenAI(api_key=key, base_url=base_url, max_retries=0)

        super().__init__(name, api_key, make_client)

    def complete(self, request: ChatCompletionRequest, entry: ModelEntry, timeout_s: float) -> ChatCompletion:
        import openai

        from deepseek_gateway.providers.sdk_errors import classify

        client = self.client()
        body = request.to_upstream(entry.upstream)
        model, messages = body.pop("model"), body.pop("messages")
        try:
            raw = client.with_options(timeout=timeout_s).chat.completions.with_raw_response.create(
                model=model, messages=messages, extra_body=body
            )
            data = raw.http_response.json()
        except openai.APIError as exc:
            raise classify(exc, openai, self.name) from exc
        except ValueError as exc:  # the body was not JSON
            raise ProviderFailure(self.name, "malformed", "the provider's answer was not JSON") from exc
        try:
            completion = ChatCompletion.model_validate(data)
        except ValidationError as exc:
            raise ProviderFailure(self.name, "malformed", "the provider's answer is not a chat completion") from exc
        completion.model = entry.id
        return completion
