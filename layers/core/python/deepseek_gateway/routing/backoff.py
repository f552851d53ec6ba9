"""Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

from __future__ import annotations

from collections.abc import Callable


def full_jitter_delay(attempt: int, base_s: float, cap_s: float, rng: Callable[[], float]) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)); attempt counts from 0."""
    return rng() * min(cap_s, base_s * (2**attempt))
