"""What the two SDK-backed providers share: the key lookup and one pooled client per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deepseek_gateway.catalogue import ProviderName
from deepseek_gateway.providers.base import ProviderFailure
from deepseek_gateway.providers.credentials import KeySource


class SdkProvider:
    """Base of a provider called through a Stainless SDK (openai, anthropic).

    The client is built on first use — which is when the SDK is imported — and rebuilt only when the
    key changes (a rotated secret), so connections are pooled across invocations of a warm function.
    """

    name: ProviderName

    def __init__(self, name: ProviderName, api_key: KeySource, make_client: Callable[[str], Any]) -> None:
        self.name = name
        self._api_key = api_key
        self._make_client = make_client
        self._client: Any = None
        self._client_key: str | None = None

    def configured(self) -> bool:
        return self._api_key() is not None

    def client(self) -> Any:
        key = self._api_key()
        if key is None:
            raise ProviderFailure(self.name, "connection", "no API key is configured for this provider")
        if self._client is None or key != self._client_key:
            self._client = self._make_client(key)
            self._client_key = key
        return self._client
