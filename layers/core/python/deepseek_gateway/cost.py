"""The cost of an answer from the provider's reported usage and the catalogue's prices."""

from __future__ import annotations

from decimal import Decimal

from deepseek_gateway.catalogue import ModelEntry
from deepseek_gateway.models.chat import Usage

_MILLION = Decimal(1_000_000)
_PRECISION = Decimal("0.00000001")  # 1e-8 USD: below the cost of one token of any catalogued model


def answer_cost(entry: ModelEntry, usage: Usage | None) -> Decimal:
    """USD, from the model that actually answered; cached prompt tokens at the cached price."""
    if usage is None:
        return Decimal(0)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    uncached = usage.prompt_tokens - cached
    prices = entry.prices
    total = uncached * prices.input + cached * prices.cached_input + usage.completion_tokens * prices.output
    return (total / _MILLION).quantize(_PRECISION)
