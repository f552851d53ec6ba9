"""DeepSeek and OpenAI: both speak OpenAI's chat completions API, called through the `openai` SDK."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from deepseek_gateway.catalogue import ModelEntry, ProviderName
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.providers.base import ProviderFailure, unencodable_request
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
        if self.name != "deepseek":  # earlier turns' reasoning goes back to DeepSeek only; OpenAI refuses the field
            for message in body["messages"]:
                message.pop("reasoning_content", None)
        try:
            # What `client.with_options(timeout=...).chat.completions.with_raw_response.create(model=...,
            # messages=..., extra_body=body)` sends, byte for byte (tests/unit/test_openai_wire.py),
            # without its per-call work: copying the client and walking the messages against the SDK's
            # TypedDicts (`maybe_transform`, which changes nothing in JSON from `to_upstream`). That was
            # ~400 µs of CPU per call (`python -m local_cloud.profile_api --moto-server`).
            raw = client.post(
                "/chat/completions",
                body={"model": body.pop("model"), "messages": body.pop("messages"), **body},
                cast_to=openai.types.chat.ChatCompletion,
                options=_request_options(timeout_s),
            )
        except openai.APIError as exc:
            raise classify(exc, openai, self.name) from exc
        except UnicodeEncodeError as exc:
            raise unencodable_request() from exc
        try:
            data = raw.http_response.json()
        except ValueError as exc:  # the body was not JSON
            raise ProviderFailure(self.name, "malformed", "the provider's answer was not JSON") from exc
        try:
            completion = ChatCompletion.model_validate(data)
        except ValidationError as exc:
            raise ProviderFailure(self.name, "malformed", "the provider's answer is not a chat completion") from exc
        completion.model = entry.id
        return completion


def _request_options(timeout_s: float) -> Any:
    """The options `chat.completions.with_raw_response.create` gives the request: the raw-response header
    (the SDK answers a LegacyAPIResponse, as before), this attempt's timeout, the API key as bearer."""
    from openai._constants import RAW_RESPONSE_HEADER

    return {"headers": {RAW_RESPONSE_HEADER: "true"}, "timeout": timeout_s, "security": {"bearer_auth": True}}
