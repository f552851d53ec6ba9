"""Makes moto's DynamoDB writes atomic and its number arithmetic exact, as DynamoDB's are, and moto's server keep
its connections.

moto applies an UpdateItem as read, evaluate the condition, write — without a lock — so two
threads of its server can both pass a condition that only one should (we measured 11 of 50
concurrent requests admitted under a limit of 10). DynamoDB guarantees conditional writes are
atomic, and the gateway's rate limits and budgets rely on it, so the local cloud's moto (and the
tests' in-process moto) serialize item reads and writes behind one lock.

moto's server CPU per DynamoDB call is cut in `local_cloud.moto_dynamodb_cpu`; its Step Functions
interpreter is mended in `local_cloud.moto_stepfunctions`.
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
    exact_numbers()
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


def exact_numbers() -> None:
    """Add and subtract numbers as DynamoDB does: exact decimals (38 digits), written without exponent.

    moto reads an operand as int when its text has no '.', else as Decimal, and writes `f"{total}"`: a
    decimal sum that comes back to zero is stored as "0E-8", and the next `ADD` on it calls int("0E-8")
    and answers 500. The gateway's cost counters do exactly that when a failed call hands back its
    reservation. DynamoDB answers such sums as "0", "1.5", "100", and refuses one that needs more than 38
    digits or leaves its range (moto rounded it silently).
    """
    from decimal import Clamped, Context, Decimal, DecimalException, Inexact, Overflow, Rounded, Underflow

    from moto.dynamodb.exceptions import IncorrectDataType, MockValidationException
    from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

    if getattr(DynamoType.__add__, "_exact", False):
        return
    # DynamoDB's numbers, as boto3's DYNAMODB_CONTEXT has them: 38 digits, magnitudes 1E-130 to ~1E+126.
    context = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])

    def number(value: Decimal) -> DynamoType:
        text = "0" if value.is_zero() else format(value.normalize(context), "f")
        return DynamoType({DDBType.NUMBER: text})

    def exactly(operation: Any, left: str, right: str) -> DynamoType:
        try:
            return number(operation(Decimal(left), Decimal(right)))
        except (Overflow, Underflow):
            raise MockValidationException("Number overflow. Attempting to store a number with magnitude larger "
                                          "than supported range") from None
        except DecimalException:  # Inexact / Rounded: more than 38 significant digits
            raise MockValidationException("Attempting to store more than 38 significant digits in a Number") from None

    def add(self: Any, other: Any) -> Any:
        if self.type != other.type:
            raise TypeError("Different types of operandi is not allowed.")
        if not self.is_number():
            raise IncorrectDataType()
        return exactly(context.add, self.value, other.value)

    def subtract(self: Any, other: Any) -> Any:
        if self.type != other.type:
            raise TypeError("Different types of operandi is not allowed.")
        if self.type != DDBType.NUMBER:
            raise TypeError("Sum only supported for Numbers.")
        return exactly(context.subtract, self.value, other.value)

    add._exact = True  # type: ignore[attr-defined]
    DynamoType.__add__ = add  # type: ignore[method-assign]
    DynamoType.__sub__ = subtract  # type: ignore[method-assign]


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
                saved.append((op["TableName"], key, copy.deepcopy(current)))  # moto's Item copies itself fast
            models.copy = _TablesNotCopied  # type: ignore[attr-defined]
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, item in reversed(saved):
                    if item is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, item.to_json()["Attributes"])
                raise
            finally:
                models.copy = copy  # type: ignore[attr-defined]

    transact_write_items._item_rollback = True  # type: ignore[attr-defined]
    transact_write_items._serialized = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def keep_alive_and_no_delay() -> None:
    """moto's server speaks HTTP/1.0 (a new TCP connection per AWS call) and leaves Nagle on;
    botocore keeps connections alive, so the server does too, and answers without the 40 ms stall.

    Speaking HTTP/1.1 is not enough: werkzeug's server (3.x) still adds `Connection: close` to
    every response, then drains whatever the client sends next, because http.server cannot find
    the next request line after a body the application did not read. So every AWS call cost a TCP
    connection and a server thread: 0.5-0.8 ms of the server's CPU per call (0.16-0.25 ms in the
    accept loop, ~0.1 ms setting the connection up, the rest in the handler) and ~0.4 ms of the
    client's, reconnecting. Here, for an HTTP/1.1 request that did not ask to close and
    whose body length is known (Content-Length, or no body), the application reads the body through
    a stream limited to that length, the rest of it is read after the response (so the connection
    stands at the next request), and `Connection: close` is not sent. Anything else (chunked
    request bodies, HTTP/1.0, `Connection: close` from the client) is handled by werkzeug as before.
    """
    import selectors

    from werkzeug import serving
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.wsgi import LimitedStream

    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    WSGIRequestHandler.disable_nagle_algorithm = True
    if getattr(WSGIRequestHandler.run_wsgi, "_keep_alive", False):
        return
    original_run_wsgi = WSGIRequestHandler.run_wsgi
    original_make_environ = WSGIRequestHandler.make_environ
    original_send_header = WSGIRequestHandler.send_header
    state = threading.local()  # one request at a time per connection thread

    class _NoDrain:
        """werkzeug's drain after the response, for a kept-alive request: nothing (the body is read exactly)."""

        def register(self, *args: Any, **kwargs: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    class _Selectors:
        EVENT_READ = selectors.EVENT_READ

        @staticmethod
        def DefaultSelector() -> Any:  # noqa: N802 - the name werkzeug calls
            return _NoDrain() if getattr(state, "body", None) is not None else selectors.DefaultSelector()

    def keeps_alive(handler: Any) -> int | None:
        """The request body's length if this request's connection can be kept open, else None."""
        if handler.close_connection or handler.request_version != "HTTP/1.1":
            return None
        if handler.headers.get("Transfer-Encoding"):
            return None
        length = handler.headers.get("Content-Length")
        if length is None:
            return 0
        try:
            return int(length) if int(length) >= 0 else None
        except ValueError:
            return None

    def make_environ(self: Any) -> Any:
        environ = original_make_environ(self)
        length = getattr(state, "length", None)
        if length is not None:
            state.body = environ["wsgi.input"] = LimitedStream(self.rfile, length)
            environ["wsgi.input_terminated"] = True  # already limited: used as it is
        return environ

    def send_header(self: Any, keyword: str, value: str) -> None:
        if (getattr(state, "body", None) is not None and keyword.lower() == "connection"
                and value.lower() == "close"):
            return
        original_send_header(self, keyword, value)

    def run_wsgi(self: Any) -> None:
        state.length, state.body = keeps_alive(self), None
        try:
            original_run_wsgi(self)
            if state.body is not None and not self.close_connection:
                try:
                    state.body.exhaust()  # what the application left of the body: the next request follows
                except Exception:  # the client went away mid-body: nothing more to read on this connection
                    self.close_connection = True
        except BaseException:
            self.close_connection = True
            raise
        finally:
            state.length = state.body = None

    run_wsgi._keep_alive = True  # type: ignore[attr-defined]
    serving.selectors = _Selectors  # type: ignore[assignment]
    WSGIRequestHandler.run_wsgi = run_wsgi  # type: ignore[method-assign]
    WSGIRequestHandler.make_environ = make_environ  # type: ignore[method-assign]
    WSGIRequestHandler.send_header = send_header  # type: ignore[method-assign]


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
