"""Provider API keys: from Secrets Manager when deployed, from the environment locally.

Powertools Parameters caches each secret in memory (5 minutes), so a warm function reads a key from
Secrets Manager once per cache period, not per request; a rotated key is picked up within that time.
"""

from __future__ import annotations

from collections.abc import Callable

from deepseek_gateway.catalogue import ProviderName
from deepseek_gateway.settings import ProviderSettings

SECRET_MAX_AGE_S = 300

KeySource = Callable[[], "str | None"]


def key_source(settings: ProviderSettings, provider: ProviderName) -> KeySource:
    """A callable returning the provider's key, or None when the provider is not configured."""
    direct = getattr(settings, f"{provider}_api_key")
    secret_arn = getattr(settings, f"{provider}_secret_arn")

    def read() -> str | None:
        if direct:
            return direct
        if not secret_arn:
            return None
        from aws_lambda_powertools.utilities import parameters  # lazy: only deployed functions need it

        value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_S)
        text = value.decode() if isinstance(value, bytes) else str(value)
        return text.strip() or None

    return read
