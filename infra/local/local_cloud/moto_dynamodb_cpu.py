"""moto's server cheap enough to benchmark: ~20 ms of CPU per chat request's two DynamoDB calls cut to ~5.5 ms.

moto spent ~20 ms of CPU on the two DynamoDB calls of each chat request (the admitting conditional
UpdateItem, the settling 4-item TransactWriteItems), capping the local cloud near 50 requests/s.
`fast_dynamodb()` (with `moto_patches.keep_alive_and_no_delay()`) cuts that without changing what
moto answers: each patch says what moto does, what it does instead, and what it saves (thread CPU of
moto's server per call, from `python -m local_cloud.profile_dynamodb --skip PATCH`, the least of three
runs on a busy 2-core machine). tests/integration/test_moto_patches.py runs a battery of DynamoDB calls
and errors through moto with and without them and compares every answer.
"""

from __future__ import annotations

import contextlib
from typing import Any

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


def direct_dynamodb_dispatch() -> None:
    """Hand a DynamoDB request to moto's DynamoDB handler without going through Flask.

    moto's server finds the service of every request (host, then headers), builds a Flask app context and
    request context, matches the URL map, runs flask-cors' hooks and then calls the service's handler
    with the request, its URL and headers. A DynamoDB request is always a POST whose `X-Amz-Target` names
    DynamoDB: it is given to the same handler, with the same normalized request object, URL and headers,
    and the handler's (status, headers, body) goes back as the Flask view would have sent it.
    """
    from moto.core.utils import normalize_request
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import BackendRequest, DomainDispatcherApplication
    from werkzeug.wrappers import Response

    original = DomainDispatcherApplication.__call__
    if getattr(original, "_direct_dynamodb", False):
        return
    from botocore.exceptions import ClientError

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") != "POST" or \
                not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_20120810."):
            return original(self, environ, start_response)
        request = normalize_request(BackendRequest(environ))
        recorder._record_request(request)
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:  # as moto's Flask view answers it
            result = 400, {}, exc.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        return Response(response=content, status=status, headers=headers)(environ, start_response)

    call._direct_dynamodb = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]


CPU_PATCHES = (
    direct_dynamodb_dispatch,
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
