"""Time-ordered ids: a prefix, 7 base62 characters of creation time in milliseconds, 17 random ones.

The time comes first and base62 is written in ASCII order, so ids sort as their creation times do:
a table keyed by such ids lists newest first with one Query (files, batches), and 17 random
characters (101 bits) keep ids unguessable.
"""

from __future__ import annotations

import secrets
import threading
import time

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: sorts as numbers do
TIME_CHARS, RANDOM_CHARS = 7, 17  # 62**7 ms reaches the year 2081
ID_CHARS = TIME_CHARS + RANDOM_CHARS

_last_millis = 0
_lock = threading.Lock()


def time_ordered_id(prefix: str, now_s: float | None = None) -> str:
    """`prefix` + 24 base62 characters; strictly increasing within a process (a burst takes the next ms)."""
    global _last_millis
    with _lock:
        millis = _last_millis = max(int((time.time() if now_s is None else now_s) * 1000), _last_millis + 1)
    stamp = ""
    for _ in range(TIME_CHARS):
        millis, digit = divmod(millis, 62)
        stamp = BASE62[digit] + stamp
    return prefix + stamp + "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
