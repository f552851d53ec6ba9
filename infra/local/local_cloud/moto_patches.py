"""Makes moto's DynamoDB writes atomic, as DynamoDB's are.

moto applies an UpdateItem as read, evaluate the condition, write — without a lock — so two
threads of its server can both pass a condition that only one should (we measured 11 of 50
concurrent requests admitted under a limit of 10). DynamoDB guarantees conditional writes are
atomic, and the gateway's rate limits and budgets rely on it, so the local cloud's moto (and the
tests' in-process moto) serialize item reads and writes behind one lock.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_ITEM_METHODS = ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def serialize_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in _ITEM_METHODS:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_serialized", False):
            continue

        @functools.wraps(method)
        def locked(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _lock:
                return __method(self, *args, **kwargs)

        locked._serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)
