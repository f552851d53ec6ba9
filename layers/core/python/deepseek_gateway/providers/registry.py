"""Builds the provider adapters from settings; nothing is imported or connected until first use."""

from __future__ import annotations

from deepseek_gateway.catalogue import ProviderName
from deepseek_gateway.providers.anthropic_provider import AnthropicProvider
from deepseek_gateway.providers.base import Provider
from deepseek_gateway.providers.credentials import key_source
from deepseek_gateway.providers.openai_compatible import OpenAICompatibleProvider
from deepseek_gateway.settings import ProviderSettings


def build_providers(settings: ProviderSettings) -> dict[ProviderName, Provider]:
    return {
        "deepseek": OpenAICompatibleProvider("deepseek", settings.deepseek_base_url, key_source(settings, "deepseek")),
        "openai": OpenAICompatibleProvider("openai", settings.openai_base_url, key_source(settings, "openai")),
        "anthropic": AnthropicProvider(settings.anthropic_base_url, key_source(settings, "anthropic")),
    }
