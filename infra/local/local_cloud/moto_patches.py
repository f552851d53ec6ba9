"""Makes moto's DynamoDB writes atomic, as DynamoDB's are, and moto's server cheap enough to benchmark.

moto applies an UpdateItem as read, evaluate the condition, write — without a lock — so two
threads of its server can both pass a condition that only one should (we measured 11 of 50
concurrent requests admitted under a limit of 10). DynamoDB guarantees conditional writes are
atomic, and the gateway's rate limits and budgets rely on it, so the local cloud's moto (and the
tests' in-process moto) serialize item reads and writes behind one lock.

moto also spent ~20 ms of CPU on the two DynamoDB calls of each chat request (the admitting
conditional UpdateItem, the settling 4-item TransactWriteItems), capping the local cloud near 50
requests/s. `fast_dynamodb()` and `keep_alive_and_no_delay()` cut that to ~5.5 ms without changing
what moto answers: each patch says what moto does, what it does instead, and what it saves (thread
CPU of moto's server per call, from `python -m local_cloud.profile_dynamodb --skip PATCH`, the
least of three runs on a busy 2-core machine). tests/integration/test_moto_patches.py runs a
battery of DynamoDB calls and errors through moto with and without them and compares every answer.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
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


# --- CPU per DynamoDB call -------------------------------------------------------------------------------------------
# Measured with `python -m local_cloud.profile_dynamodb` (thread CPU of moto's server per call, the gateway's own
# requests); each patch's docstring gives its share. `fast_dynamodb()` applies them all.

_CACHE_SIZE = 1024


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Insert into a dict used as a bounded cache (oldest entries go first); safe enough across threads."""
    if len(cache) >= _CACHE_SIZE:
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del cache[next(iter(cache))]
    cache[key] = value


def cache_backend_for_host() -> None:
    """Resolve a request's host to its moto service once, not on every request.

    moto's server finds the service of each request with `host in list_of_moto_modules()`, which
    lists moto's package directory and stat()s each of its ~170 entries, then tries the URL patterns
    of every service, whatever the request. The answer depends only on the host, and neither the
    directory nor the patterns change while the server runs, so it is kept per host (answers that
    found no service are not kept, so their warning is still printed each time). Saves ~0.3 ms per
    request (0.35 ms per UpdateItem, 0.24 ms per transaction).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "_cached", False):
        return

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        cache = self.__dict__.setdefault("_backend_for_host", {})
        backend = cache.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None:
                _bounded_put(cache, host, backend)
        return backend

    get_backend_for_host._cached = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def cache_update_expressions() -> None:
    """Parse each UpdateExpression string once.

    moto tokenizes and parses the UpdateExpression of every UpdateItem twice (once in the request
    handler to check the placeholders used, once in the backend), and of every Update in a
    TransactWriteItems twice too. The AST depends only on the string (names and values are bound
    later, by the validator) and is never changed by its users: the handlers only read it
    (`find_clauses`) and the backend's validator works on a deep copy. So the parsed AST is kept,
    keyed by the expression string; an expression that fails to parse raises as before (errors are
    not kept). Without it (and so without fast_update_validation, which works on the cached ASTs):
    +0.6 ms per UpdateItem, +3.6 ms per settlement transaction (three Updates, two of ten actions).
    """
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    original = UpdateExpressionParser.__dict__["make"].__func__
    if getattr(original, "_cached", False):
        return
    cache: dict[str, Any] = {}

    def make(cls: Any, expression_str: str) -> Any:
        ast = cache.get(expression_str)
        if ast is None or cls is not UpdateExpressionParser:
            ast = original(cls, expression_str)
            if cls is UpdateExpressionParser:
                ast._cached_expression = expression_str  # for fast_update_validation()
                _bounded_put(cache, expression_str, ast)
        return ast

    make._cached = True  # type: ignore[attr-defined]
    UpdateExpressionParser.make = classmethod(make)  # type: ignore[assignment,method-assign]


def cache_condition_expressions() -> None:
    """Parse each ConditionExpression (and FilterExpression) string once; bind names and values per call.

    moto lexes and parses a condition with regular expressions on every call, twice per conditional
    UpdateItem (handler and backend). Its syntax tree depends only on the string except at the
    leaves: `#name` and `:value` placeholders, whose names and values moto looks up while lexing and
    copies into the tree. Here the tree is kept per string, and each call looks the placeholders up
    again in its own ExpressionAttributeNames/Values, in the order moto does (so a missing one
    raises the same error), and builds a fresh operator tree from them. The first call with a string
    runs moto's own parser, so any syntax error is raised exactly as before (and not kept).
    Saves ~0.5 ms per admission UpdateItem (a condition of six comparisons, parsed twice).
    """
    from moto.dynamodb.comparisons import AttributePath, AttributeValue, ConditionExpressionParser, OpDefault

    if getattr(ConditionExpressionParser.parse, "_cached", False):
        return
    original_parse = ConditionExpressionParser.parse
    original_make_operand = ConditionExpressionParser._make_operand
    kind = ConditionExpressionParser.Kind
    cache: dict[str, tuple[Any, tuple[tuple[bool, str], ...], list[str], list[str]]] = {}

    def parse(self: Any) -> Any:
        if not self.condition_expression:
            return OpDefault(None, None)  # type: ignore[arg-type]
        entry = cache.get(self.condition_expression)
        if entry is None:
            self._lookups = []  # the placeholders moto looks up while lexing, in its order (see below)
            self._parsed = None
            op = original_parse(self)
            if self._parsed is not None:
                tree, lookups = self._parsed
                _bounded_put(cache, self.condition_expression, (tree, lookups, list(self.expr_attr_names_found),
                                                                list(self.expr_attr_values_found)))
            return op
        tree, lookups, names_found, values_found = entry
        for is_name, placeholder in lookups:
            if is_name:
                self._lookup_expression_attribute_name(placeholder)
            else:
                self._lookup_expression_attribute_value(placeholder)
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return self._make_op_condition(tree)

    def lookup_name(self: Any, name: str) -> str:
        value = self.expression_attribute_names[name]
        recording = self.__dict__.get("_lookups")
        if recording is not None:
            recording.append((True, name))
        return value

    def lookup_value(self: Any, name: str) -> dict[str, str]:
        value = self.expression_attribute_values[name]
        recording = self.__dict__.get("_lookups")
        if recording is not None:
            recording.append((False, name))
        return value

    def assert_no_redundant_parentheses(self: Any, node: Any, parent_kind: str | None = None) -> None:
        # moto calls this once on the finished tree, after lexing and before building the operators:
        # the tree and the lookups so far are what the cache keeps; later lookups are not recorded.
        if self.__dict__.get("_lookups") is not None:
            self._parsed = (node, tuple(self._lookups))
            self._lookups = None
        original_assert(self, node, parent_kind)

    def make_operand(self: Any, node: Any) -> Any:
        # The same operands as moto's, with placeholders looked up in this call's names and values
        # rather than taken from the tree (which holds the first call's).
        if node.kind == kind.PATH:
            return AttributePath([self._lookup_expression_attribute_name(child.text)
                                  if child.text.startswith("#") else child.value for child in node.children])
        if node.kind == kind.EXPRESSION_ATTRIBUTE_VALUE:
            return AttributeValue(self._lookup_expression_attribute_value(node.text))
        return original_make_operand(self, node)

    original_assert = ConditionExpressionParser._assert_no_redundant_parentheses
    parse._cached = True  # type: ignore[attr-defined]
    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]
    ConditionExpressionParser._lookup_expression_attribute_name = lookup_name  # type: ignore[method-assign]
    ConditionExpressionParser._lookup_expression_attribute_value = lookup_value  # type: ignore[method-assign]
    ConditionExpressionParser._assert_no_redundant_parentheses = assert_no_redundant_parentheses  # type: ignore
    ConditionExpressionParser._make_operand = make_operand  # type: ignore[method-assign]


def fast_update_expression_ast() -> None:
    """Walk moto's UpdateExpression ASTs without its slow generic type checks.

    For every UpdateItem (and every Update of a transaction) moto walks a copy of the parsed AST
    with ten processors (validation, placeholder binding, path resolution, functions, arithmetic...).
    Its nodes have an ABC metaclass, so each `isinstance` goes through `ABCMeta.__instancecheck__`,
    and the walker rebuilds the processor's class table at every node. Here the walk visits the same
    nodes in the same order, with the same hooks and the same processing, with type checks memoised
    per class (nothing registers virtual subclasses of these nodes) and the class table taken once
    per walk; `find_clauses` (used by the validators) does the same. Saves ~0.1 ms per UpdateItem,
    ~0.75 ms per settlement transaction (on top of fast_update_validation).
    """
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Expression, Node, UpdateExpressionFunction

    if getattr(DepthFirstTraverser.traverse, "_fast", False):
        return
    subclass_of: dict[tuple[type, Any], bool] = {}

    def is_a(cls: type, classes: Any) -> bool:
        try:
            return subclass_of[cls, classes]
        except KeyError:
            answer = subclass_of[cls, classes] = issubclass(cls, classes)
            return answer
        except TypeError:  # unhashable classes tuple: no memo
            return issubclass(cls, classes)

    def traverse(self: Any, node: Any) -> Any:
        targets = self.nodes_to_be_processed()
        pre_processing_of_child = self.pre_processing_of_child
        process = self.process

        def visit(node: Any, child_id: int) -> Any:
            cls = type(node)
            if is_a(cls, Node):
                parent_node = node.parent
                if node.children is not None:
                    for i, child_node in enumerate(node.children):
                        pre_processing_of_child(node, i)
                        visit(child_node, i)
                if is_a(cls, targets):
                    node = process(node)
                    node.parent = parent_node
                    if parent_node:
                        parent_node.children[child_id] = node
            return node

        return visit(node, -1)

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses = []
        for child in self.children or []:
            cls = type(child)
            if cls in clause_types:
                clauses.append(child)
            elif is_a(cls, Expression) or is_a(cls, UpdateExpressionFunction):
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    traverse._fast = True  # type: ignore[attr-defined]
    DepthFirstTraverser.traverse = traverse  # type: ignore[method-assign]
    Node.find_clauses = find_clauses  # type: ignore[method-assign]


def fast_update_validation() -> None:
    """Validate an UpdateExpression without the work that cannot change the outcome.

    moto's UpdateExpressionValidator deep-copies the parsed AST, then runs ten processors over the
    copy, each a full walk. Three costs in it do not depend on the call (measured on the settlement's
    three Updates, ~85 nodes and ten actions for each day-total update):
    - the deep copy (`copy.deepcopy`, ~25% of a transaction's CPU once the walks were fast): the AST
      from the expression cache is pickled once, and each validator gets `pickle.loads` of it, the
      same objects as a deep copy (same classes, same state, same sharing);
    - ActionCountValidator and OverlappingPathsValidator, the two purely syntactic checks (one clause
      of each kind; no overlapping paths), which depend only on the expression and, for the second,
      the names of the paths that are a bare `#name`. moto runs them at every clause node, each time
      collecting all the actions below it: quadratic in the actions. A check that passed for the same
      expression (and names) passes again, so it is skipped; one that fails raises as before, and is
      run again next time;
    - walks that cannot do anything: the function evaluator, the arithmetic, the two SET-value checks
      and the value binder only act on node classes (functions, values, SET actions, `:value`s)
      that no processor creates, so when the expression has none of them their walk only returns
      the tree as it was, and is skipped.
    Every processor that is skipped returns each node unchanged, and none of them has per-child hooks
    (only the path resolver does, and it always runs), so the validated AST and the errors are
    moto's. Saves ~0.5 ms per UpdateItem and ~2.4 ms per settlement transaction.
    """
    import pickle

    from moto.dynamodb.parsing.ast_nodes import (
        ExpressionAttributeName,
        Node,
        UpdateExpressionAddAction,
        UpdateExpressionDeleteAction,
        UpdateExpressionRemoveAction,
        UpdateExpressionSetAction,
    )
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        EmptyStringKeyValueValidator,
        ExecuteOperations,
        ExpressionAttributeValueProcessor,
        OverlappingPathsValidator,
        TypeMismatchValidator,
        UpdateExpressionFunctionEvaluator,
        UpdateExpressionValidator,
        Validator,
    )

    if getattr(UpdateExpressionValidator.validate, "_fast", False):
        return
    original_init = Validator.__init__
    original_validate = Validator.validate
    actions = [UpdateExpressionSetAction, UpdateExpressionAddAction, UpdateExpressionRemoveAction,
               UpdateExpressionDeleteAction]
    # Processors whose walk only calls `process` on node classes that no processor creates.
    only_on_parsed_nodes = (UpdateExpressionFunctionEvaluator, ExecuteOperations, TypeMismatchValidator,
                            EmptyStringKeyValueValidator, ExpressionAttributeValueProcessor)

    class Facts:
        """What the validation needs to know of one cached expression's AST."""

        def __init__(self, ast: Any) -> None:
            self.ast = ast
            self.snapshot = pickle.dumps(ast, pickle.HIGHEST_PROTOCOL)
            self.classes: set[type] = set()
            pending = [ast]
            while pending:
                node = pending.pop()
                if isinstance(node, Node):
                    self.classes.add(type(node))
                    pending.extend(node.children or [])
            self.root_placeholders = tuple(  # what OverlappingPathsValidator looks up in the names
                action.children[0].children[0].get_attribute_name_placeholder()
                for action in ast.find_clauses(actions)
                if isinstance(action.children[0].children[0], ExpressionAttributeName)
                and len(action.children[0].children) == 1
            )
            self.idle: dict[type, bool] = {}

        def idle_walk(self, processor: Any) -> bool:
            """Whether this processor's walk can only leave the AST as it is."""
            kind = type(processor)
            if kind not in self.idle:
                targets = processor.nodes_to_be_processed()
                self.idle[kind] = kind in only_on_parsed_nodes and not any(
                    issubclass(cls, targets) for cls in self.classes)
            return self.idle[kind]

    facts: dict[str, Facts] = {}
    passed: dict[tuple[Any, ...], bool] = {}

    def facts_of(ast: Any) -> Facts | None:
        expression = getattr(ast, "_cached_expression", None)
        if expression is None:
            return None
        found = facts.get(expression)
        if found is None or found.ast is not ast:
            try:
                found = Facts(ast)
            except Exception:  # noqa: BLE001 - e.g. not picklable: moto's own way below
                return None
            _bounded_put(facts, expression, found)
        return found

    def init(self: Any, expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
             item: Any, table: Any) -> None:
        found = facts_of(expression) if type(self) is UpdateExpressionValidator else None
        if found is None:
            original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
            return
        # moto's __init__, with the deep copy made from the snapshot.
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = pickle.loads(found.snapshot)  # noqa: S301 - our own snapshot
        self._facts = found

    def validate(self: Any) -> Any:
        found = self.__dict__.get("_facts")
        if found is None:
            return original_validate(self)
        expression = found.ast._cached_expression
        node = self.node_to_validate
        for processor in self.processors:
            if found.idle_walk(processor):
                continue
            key: tuple[Any, ...] | None = None
            if type(processor) is ActionCountValidator:
                key = ("actions", expression)
            elif type(processor) is OverlappingPathsValidator:
                names = self.expression_attribute_names
                if not found.root_placeholders:
                    key = ("overlaps", expression)
                elif isinstance(names, dict) and all(p in names for p in found.root_placeholders):
                    key = ("overlaps", expression, tuple(names[p] for p in found.root_placeholders))
            if key is not None and key in passed:
                continue
            node = processor.traverse(node)
            if key is not None:
                _bounded_put(passed, key, True)
        return node

    validate._fast = True  # type: ignore[attr-defined]
    Validator.__init__ = init  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]


def fast_item_sizes() -> None:
    """Compute DynamoDB item sizes without rebuilding every nested value.

    moto checks the 400 KB item limit on every attribute it sets, by summing the sizes of all the
    item's attributes (so building an item or applying an update is quadratic in its attributes),
    and a map's size is computed by wrapping each of its values in a new DynamoType, recursively.
    ~10% of a settlement's CPU (the usage record has ~17 attributes, the counter item a map of
    leases). This computes the same sizes by the same rules without the copies: ~0.3 ms saved per
    UpdateItem and ~0.35 ms per settlement transaction.
    """
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType.size, "_fast", False):
        return
    bytesize = dynamo_type.bytesize
    sets = ("SS", "NS", "BS")

    def scalar(kind: str, value: Any) -> int:  # DynamoType({kind: value}).size() for S, N, B
        if kind == "N":
            return len(str(value))
        return 1 if isinstance(value, bool) else bytesize(value)

    def normalized(value: Any) -> int:  # DynamoType(value).size(): values re-wrapped, recursively
        if type(value) is not DynamoType:
            return DynamoType(value).size()
        kind, inner = value.type, value.value
        if kind == "L":
            return sum(normalized(v) for v in inner)
        if kind == "M":
            return sum(bytesize(k) + normalized(v) for k, v in inner.items())
        return size(value)

    def size(self: Any) -> int:
        kind, inner = self.type, self.value
        if kind == "N":
            return len(str(inner))
        if kind in sets:
            return sum(scalar(kind[0], v) for v in inner)
        if kind == "L":
            return sum(v.size() for v in inner)
        if kind == "M":
            return sum(bytesize(k) + normalized(v) for k, v in inner.items())
        if isinstance(inner, bool):
            return 1
        return bytesize(inner)

    size._fast = True  # type: ignore[attr-defined]
    DynamoType.size = size  # type: ignore[method-assign]


def fast_action_lookup() -> None:
    """Find a request's handler method without listing the handler class's members each time.

    moto's dispatcher checks that the action is a method of the handler with
    `action in method_names_from_class(cls)`, which calls `inspect.getmembers` on the whole class
    (65 µs for DynamoDB's handler, timed alone, on every request of every service). The names it lists are those whose
    attribute on the class is a plain function; this answers the same `in` by looking at the one
    attribute.
    """
    import inspect

    from moto.core import responses

    if getattr(responses.method_names_from_class, "_fast", False):
        return

    class FunctionNames:
        def __init__(self, clazz: Any) -> None:
            self.clazz = clazz

        def __contains__(self, name: object) -> bool:
            return isinstance(name, str) and inspect.isfunction(getattr(self.clazz, name, None))

    def method_names_from_class(clazz: Any) -> Any:
        return FunctionNames(clazz)

    method_names_from_class._fast = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]


def fast_attribute_values_in_responses() -> None:
    """Serialize DynamoDB AttributeValues in responses directly.

    moto 5 serializes every response through botocore's shape model, generically: for each
    AttributeValue it tries each of the ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL), each
    through a chain of alias providers. For an UpdateItem returning ALL_NEW (the admission's counter
    item, ~15 attributes) that was ~0.5 ms, a fifth of its CPU once the rest was fast. moto already
    holds AttributeValues in their JSON form ({"N": "3"}, {"M": {...}}), which is what that produces
    for S, N, BOOL, NULL, SS, NS, M and L: those are copied as they are. Anything else (binary
    values, anything unexpected) and any response with key transformers goes through moto's
    serializer as before.
    """
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure
    if getattr(original, "_fast", False):
        return
    scalar = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
    missing = object()

    def plain(value: Any) -> Any:
        """`value` as moto's serializer writes it, or `missing` if it is not a plain AttributeValue."""
        if type(value) is not dict or len(value) != 1:
            return missing
        [(kind, inner)] = value.items()
        if kind in scalar:
            return {kind: inner} if type(inner) is scalar[kind] else missing
        if kind == "M" and type(inner) is dict:
            members = {}
            for name, member in inner.items():
                members[name] = plain(member)
                if members[name] is missing:
                    return missing
            return {"M": members}
        if kind == "L" and type(inner) is list:
            items = [plain(item) for item in inner]
            return missing if any(item is missing for item in items) else {"L": items}
        if kind in ("SS", "NS") and type(inner) is list and all(type(item) is str for item in inner):
            return {kind: list(inner)}
        return missing

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (key and shape.name == "AttributeValue" and self.service_model.service_name == "dynamodb"
                and not getattr(self._value_picker, "response_transformers", True)):
            result = plain(value)
            if result is not missing:
                self._default_serialize(serialized, result, shape, key)
                return
        original(self, serialized, value, shape, key)

    serialize_structure._fast = True  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


CPU_PATCHES = (
    cache_backend_for_host,
    cache_update_expressions,
    cache_condition_expressions,
    fast_update_expression_ast,
    fast_update_validation,
    fast_attribute_values_in_responses,
    fast_item_sizes,
    fast_action_lookup,
)


def fast_dynamodb(*, skip: tuple[str, ...] = ()) -> None:
    """All the CPU patches above (the semantics are moto's: tests/integration/test_moto_patches.py checks).

    `skip` names patches to leave out, for the profiler's measurements of each one's share.
    """
    for patch in CPU_PATCHES:
        if patch.__name__ not in skip:
            patch()


def enforce_tolerated_failures(setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """AWS fails a Distributed Map whose failed child executions exceed the tolerated failures
    (States.ExceedToleratedFailureThreshold, 0 by default); moto drops the failed children and goes on, so a
    batch whose chunk failed would be finalized as if nothing happened. `setattr_` lets a test undo it."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    map_run = DistributedIterationComponent._map_run

    def map_run_with_tolerated_failures(self: Any, env: Any, eval_input: Any) -> None:
        map_run(self, env, eval_input)
        items = eval_input.map_run_record.item_counter
        failed, total = items.failed.get() + items.timed_out.get(), items.total.get()
        count, percentage = eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        share = 100.0 * failed / total if total else 0.0
        # Either limit applies when it alone is set, the first one exceeded when both are; none tolerates nothing.
        if count and percentage:
            exceeded = failed > count or share > percentage
        elif count or percentage:
            exceeded = failed > count if count else share > percentage
        else:
            exceeded = failed > 0
        if exceeded:
            env.stack.pop()  # the outputs
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
            cause = f"{failed} of {total} child executions failed"
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(
                        mapRunFailedEventDetails=MapRunFailedEventDetails(error=error, cause=cause)
                    ),
                )
            )

    if getattr(DistributedIterationComponent._map_run, "_tolerated", False):
        return
    map_run_with_tolerated_failures._tolerated = True  # type: ignore[attr-defined]
    setattr_(DistributedIterationComponent, "_map_run", map_run_with_tolerated_failures)


def child_events_in_parent_history() -> None:
    """A Distributed Map's child executions leave their events in the parent execution's history.

    In AWS each child execution has its own history (listed under the map run). moto runs the children
    with a fresh event manager and throws it away, so a local run shows no trace of the items' states:
    nothing to debug with, nothing to count state transitions with (`make bench-batch`). Here each child
    event is also appended to the parent's history, renumbered there, without its details (inputs and
    outputs of every item's states would hold the whole batch in memory twice): type, ids and time.
    """
    import threading

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    component = distributed.DistributedIterationComponent
    if getattr(component._eval_body, "_child_events", False):
        return
    parents = threading.local()

    class _ChildEventManager(EventManager):
        def __init__(self, parent: EventManager) -> None:
            super().__init__()
            self._parent = parent

        def _publish_history_event(self, event_id: int, source_event_id: int, event_type: Any, timestamp: Any,
                                   event_details: Any) -> None:
            super()._publish_history_event(event_id=event_id, source_event_id=source_event_id,
                                           event_type=event_type, timestamp=timestamp, event_details=event_details)
            parent = self._parent
            with parent._mutex:
                parent._history_event_list.append(parent._create_history_event(
                    event_id=parent._event_id_gen.get(), source_event_id=0, event_type=event_type,
                    timestamp=timestamp, event_details=None))

    original_eval_body = component._eval_body
    original_map_run = component._map_run

    def eval_body(self: Any, env: Any) -> Any:
        parents.manager = env.event_manager
        return original_eval_body(self, env)

    def map_run(self: Any, env: Any, eval_input: Any) -> Any:
        parent = getattr(parents, "manager", None)
        if parent is not None and type(env.event_manager) is EventManager:
            env.event_manager = _ChildEventManager(parent)
        return original_map_run(self, env, eval_input)

    eval_body._child_events = True  # type: ignore[attr-defined]
    component._eval_body = eval_body  # type: ignore[method-assign]
    component._map_run = map_run  # type: ignore[method-assign]
