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

_ITEM_METHODS = ("put_item", "get_item", "query", "scan", "update_item", "delete_item")
_lock = threading.RLock()


def _locked(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    locked._serialized = True  # type: ignore[attr-defined]
    return locked


def serialize_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    fast_transactions()
    # moto's request handlers read the old item (for ALL_OLD and ReturnValuesOnConditionCheckFailure)
    # before the backend applies the write: the whole handler runs under the lock, so what a failed
    # condition returns is the item it was checked against, as in DynamoDB.
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        handler = getattr(DynamoHandler, name)
        if not getattr(handler, "_serialized", False):
            setattr(DynamoHandler, name, _locked(handler))
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


def fast_transactions() -> None:
    """Roll back a failed TransactWriteItems item by item instead of copying whole tables.

    moto deep-copies every table a transaction touches before applying it (so it can restore
    them on failure): 1.4 ms per call on an empty table, 85 ms with 3,000 items — and the usage
    table grows by a record per request. Here only the touched items are saved and restored, which
    is what the transaction can change. Runs under the same lock as every other item operation.
    """
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_item_rollback", False):
        return

    class _TablesNotCopied:
        """Stands in for the `copy` module inside moto's transaction: tables are not copied."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, models.Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _lock:
            saved = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                key = op.get("Key")
                if op_type == "Put":
                    attrs = op.get("Item", {})
                    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                    key = {n: attrs[n] for n in names if n in attrs}
                if not key:
                    continue
                try:
                    current = self.get_item(op["TableName"], key)
                except Exception:  # noqa: S112 - an invalid key: moto's own validation below reports it
                    continue
                attributes = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                saved.append((op["TableName"], key, attributes))
            models.copy = _TablesNotCopied  # type: ignore[attr-defined]
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, attributes in reversed(saved):
                    if attributes is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
                raise
            finally:
                models.copy = copy  # type: ignore[attr-defined]

    transact_write_items._item_rollback = True  # type: ignore[attr-defined]
    transact_write_items._serialized = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def keep_alive_and_no_delay() -> None:
    """moto's server speaks HTTP/1.0 (a new TCP connection per AWS call) and leaves Nagle on;
    botocore keeps connections alive, so the server does too, and answers without the 40 ms stall."""
    from werkzeug.serving import WSGIRequestHandler

    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    WSGIRequestHandler.disable_nagle_algorithm = True


def no_sqs_push_to_lambda() -> None:
    """Turn off moto's own SQS → Lambda delivery; the local cloud's pollers do it as Lambda does.

    moto hands every new message straight to the function's event source mapping and deletes the
    whole batch when the invocation returns, ignoring partial batch responses, batch sizes and the
    DLQ. The local cloud's SqsPoller implements those, so moto's queues keep no mappings.
    """
    from moto.sqs.models import Queue

    Queue.lambda_event_source_mappings = property(  # type: ignore[assignment]
        lambda self: {}, lambda self, value: None
    )
