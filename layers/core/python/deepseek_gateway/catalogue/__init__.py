"""The model catalogue: shipped data naming every public model, its provider, limits and prices.

Loaded once per process from `models.json` beside this file (no price list is fetched at run time).
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from deepseek_gateway.errors import ModelNotFoundError

ProviderName = Literal["deepseek", "openai", "anthropic"]
PROVIDERS: tuple[ProviderName, ...] = ("deepseek", "openai", "anthropic")


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: bool
    json_mode: bool
    vision: bool
    multiple_choices: bool
    reasoning: bool


class Prices(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Decimal
    cached_input: Decimal
    output: Decimal


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    provider: ProviderName
    upstream: str
    aliases: tuple[str, ...] = ()
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    capabilities: Capabilities
    prices: Prices
    fallbacks: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prices_as_of: str
    currency: Literal["USD"]
    price_unit: str
    models: tuple[ModelEntry, ...]

    _by_name: dict[str, ModelEntry] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        for entry in self.models:
            self._by_name[entry.id] = entry
            for alias in entry.aliases:
                self._by_name[alias] = entry

    @model_validator(mode="after")
    def _names_unique_and_fallbacks_known(self) -> Catalogue:
        seen: set[str] = set()
        for entry in self.models:
            for name in (entry.id, *entry.aliases):
                if name in seen:
                    raise ValueError(f"model name {name!r} appears twice in the catalogue")
                seen.add(name)
        ids = {m.id for m in self.models}
        for entry in self.models:
            unknown = [f for f in entry.fallbacks if f not in ids]
            if unknown:
                raise ValueError(f"{entry.id} falls back to unknown models {unknown}")
        return self

    def resolve(self, name: str) -> ModelEntry:
        """The entry for a public model name or alias; 404 `model_not_found` otherwise."""
        entry = self._by_name.get(name)
        if entry is None:
            raise ModelNotFoundError(name)
        return entry

    def find(self, name: str) -> ModelEntry | None:
        return self._by_name.get(name)

    def chain(self, entry: ModelEntry) -> list[ModelEntry]:
        """The model itself, then its configured fallbacks, in order."""
        return [entry, *(self.resolve(name) for name in entry.fallbacks)]


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    raw = resources.files(__name__).joinpath("models.json").read_text(encoding="utf-8")
    return Catalogue.model_validate(json.loads(raw))
