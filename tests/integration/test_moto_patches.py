"""The local cloud's moto patches (local_cloud.moto_patches, moto_dynamodb_cpu) keep DynamoDB's semantics.

Two kinds of proof. A battery of DynamoDB calls (every expression twice, so the second call goes
through the caches; failing ones too) runs in two fresh processes, one with moto as it is plus the
item locks, one with every patch, and must give identical answers and errors. Then the behaviours
the gateway relies on are checked directly, through the patched moto server over HTTP with kept-alive
connections, as the local cloud runs it.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
KEY = {"pk": {"S": "T#1"}, "sk": {"S": "STATE"}}


# --- the same answers as moto's own -----------------------------------------------------------------------------------


def _battery(client: Any) -> list[Any]:
    """Run many DynamoDB calls; each answer (or error) as plain data."""
    results: list[Any] = []

    def call(name: str, **kwargs: Any) -> None:
        try:
            response = getattr(client, name)(**kwargs)
            response.pop("ResponseMetadata", None)
            results.append([name, "ok", response])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            extra = {k: v for k, v in exc.response.items() if k not in ("Error", "ResponseMetadata")}
            results.append([name, "error", error.get("Code"), error.get("Message"), extra])
        except Exception as exc:  # noqa: BLE001 - in-process moto lets its own bugs through (a server answers 500)
            results.append([name, "raised", type(exc).__name__, str(exc)])

    def update(**kwargs: Any) -> None:
        for _ in range(2):  # the second call goes through the caches
            call("update_item", TableName="t", **kwargs)

    key = KEY
    client.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )
    # The gateway's admission: conditional, names and values varying per call under one expression.
    admit = ("SET leases.#rid = :deadline ADD req :one, tok :tok, committed :cost")
    condition = ("win = :win AND #month = :month AND req < :rpm AND tok <= :tok_room AND committed <= :budget_room "
                 "AND size(leases) < :conc")
    update(Key=key, UpdateExpression="SET win = :win, req = :zero, tok = :zero, #month = :month, committed = :zero, "
                                     "leases = :empty",
           ConditionExpression="attribute_not_exists(win) OR win < :win OR #month <> :month",
           ExpressionAttributeNames={"#month": "month"},
           ExpressionAttributeValues={":win": {"N": "100"}, ":zero": {"N": "0"}, ":month": {"S": "2026-11"},
                                      ":empty": {"M": {}}})
    for i in range(5):
        for conc in ("3", "10"):
            call("update_item", TableName="t", Key=key, UpdateExpression=admit, ConditionExpression=condition,
                 ExpressionAttributeNames={"#rid": f"r{i}-{conc}", "#month": "month"},
                 ExpressionAttributeValues={":win": {"N": "100"}, ":month": {"S": "2026-11"}, ":one": {"N": "1"},
                                            ":tok": {"N": str(10 + i)}, ":cost": {"N": "0.25"},
                                            ":deadline": {"N": str(1000 + i)}, ":rpm": {"N": "4"},
                                            ":tok_room": {"N": "1000"}, ":budget_room": {"N": "100"},
                                            ":conc": {"N": conc}},
                 ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    # Errors of the condition: missing name, missing value, syntax, reserved word, redundant parentheses.
    for bad in (
        {"ConditionExpression": "#nope = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
        {"ConditionExpression": "req = :nope", "ExpressionAttributeValues": {":v": {"N": "1"}}},
        {"ConditionExpression": "req = = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
        {"ConditionExpression": "size = :v", "ExpressionAttributeValues": {":v": {"N": "1"}}},
        {"ConditionExpression": "((req = :v))", "ExpressionAttributeValues": {":v": {"N": "1"}}},
        {"ConditionExpression": "req = :v", "ExpressionAttributeValues": {":v": {}}},
        {"ConditionExpression": "(req = :v) AND NOT (tok > :v OR committed IN (:v, :w))",
         "ExpressionAttributeValues": {":v": {"N": "1"}, ":w": {"N": "2"}}},
        {"ConditionExpression": "req BETWEEN :v AND :w AND begins_with(#m, :s) AND contains(#m, :s)",
         "ExpressionAttributeNames": {"#m": "month"},
         "ExpressionAttributeValues": {":v": {"N": "1"}, ":w": {"N": "9"}, ":s": {"S": "2026"}}},
        {"ConditionExpression": "attribute_type(leases, :t) AND leases.r0-10 > :v",
         "ExpressionAttributeValues": {":t": {"S": "M"}, ":v": {"N": "1"}}},
    ):
        update(Key=key, UpdateExpression="ADD checks :one", ReturnValues="UPDATED_NEW",
               **{**bad, "ExpressionAttributeValues": {**bad["ExpressionAttributeValues"], ":one": {"N": "1"}}})
    # Update expressions: SET/ADD/REMOVE/DELETE, functions, arithmetic, paths, and their errors.
    doc = {"pk": {"S": "D#1"}, "sk": {"S": "DOC"}}
    for expression, names, values in (
        ("SET a = :one, l = :list, m = :map, s = :set, b = :bin, f = :false, n = :null", None,
         {":one": {"N": "1"}, ":list": {"L": [{"S": "x"}, {"N": "2"}, {"L": []}]},
          ":map": {"M": {"k": {"M": {"deep": {"N": "1.50"}}}, "e": {"M": {}}}}, ":set": {"SS": ["a", "b"]},
          ":bin": {"B": b"\x00\xffbytes"}, ":false": {"BOOL": False}, ":null": {"NULL": True}}),
        ("SET a = a + :two, c = if_not_exists(c, :two), l = list_append(l, :more)", None,
         {":two": {"N": "2"}, ":more": {"L": [{"BS": [b"\x01", b"\x02"]}]}}),
        ("SET #m.k.deep = #m.k.deep - :two, l[1] = :two REMOVE l[0], e", {"#m": "m"}, {":two": {"N": "2"}}),
        ("ADD s :more_set, counter :two DELETE s :one_set", None,
         {":more_set": {"SS": ["c"]}, ":two": {"N": "2"}, ":one_set": {"SS": ["a"]}}),
        ("SET a = :two SET b = :two", None, {":two": {"N": "2"}}),
        ("SET a = :two, a = :two", None, {":two": {"N": "2"}}),
        ("SET #x = :two, #y = :two", {"#x": "same", "#y": "same"}, {":two": {"N": "2"}}),
        ("SET m.k = :two, m.k.deep = :two", None, {":two": {"N": "2"}}),
        ("SET pk = :s", None, {":s": {"S": "other"}}),
        ("ADD a :s", None, {":s": {"S": "text"}}),
        ("SET z = list_append(missing, :l)", None, {":l": {"L": []}}),
        ("SET a = :nope", None, {":two": {"N": "2"}}),
        ("SET a = #nope", None, None),
        ("SET a = b.c.d", None, None),
        ("REMOVE a, c, missing_attr", None, None),
        ("SET = :two", None, {":two": {"N": "2"}}),
    ):
        kwargs: dict[str, Any] = {"Key": doc, "UpdateExpression": expression, "ReturnValues": "ALL_NEW"}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        update(**kwargs)
    for return_values in ("ALL_OLD", "UPDATED_OLD", "UPDATED_NEW", "NONE"):
        update(Key=doc, UpdateExpression="ADD counter :one", ExpressionAttributeValues={":one": {"N": "1"}},
               ReturnValues=return_values)
    # Transactions, as the settlement issues them, and failing ones.
    day = ("ADD requests :requests, errors :errors, prompt_tokens :prompt, cost_usd :cost "
           "SET tenant_id = :tenant, expires_at = :expires")
    for i in range(3):
        values = {":requests": {"N": "1"}, ":errors": {"N": "0"}, ":prompt": {"N": str(i)},
                  ":cost": {"N": "0.001"}, ":tenant": {"S": "t"}, ":expires": {"N": "99"}}
        call("transact_write_items", TransactItems=[
            {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "ADD tok :tok, committed :cost "
                                                                          "REMOVE leases.#rid",
                        "ExpressionAttributeNames": {"#rid": f"r{i}-10"},
                        "ExpressionAttributeValues": {":tok": {"N": "-3"}, ":cost": {"N": "-0.1"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "U#t"}, "sk": {"S": f"REQ#{i}"}, "n": {"N": str(i)},
                                                "b": {"B": b"raw"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "U#t"}, "sk": {"S": "DAY#1"}},
                        "UpdateExpression": day, "ExpressionAttributeValues": values}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "K#k"}, "sk": {"S": "DAY#1"}},
                        "UpdateExpression": day, "ExpressionAttributeValues": values}},
        ])
    for condition_value in ("0", "1"):
        call("transact_write_items", TransactItems=[
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "U#t"}, "sk": {"S": "DAY#1"}},
                        "UpdateExpression": "ADD requests :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "U#t"}, "sk": {"S": "NEW"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": key, "ConditionExpression": "size(leases) = :n",
                                "ExpressionAttributeValues": {":n": {"N": condition_value}},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "U#t"}, "sk": {"S": "REQ#0"}}}},
        ])
    call("transact_write_items", TransactItems=[
        {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "ADD x :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "ADD y :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    call("transact_write_items", TransactItems=[
        {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "SET a = :one SET b = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    # Other users of conditions and filters.
    for _ in range(2):
        call("put_item", TableName="t", Item={"pk": {"S": "P#1"}, "sk": {"S": "A"}, "v": {"N": "1"}},
             ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        call("delete_item", TableName="t", Key={"pk": {"S": "P#9"}, "sk": {"S": "A"}},
             ConditionExpression="attribute_exists(pk)")
        call("query", TableName="t", KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
             FilterExpression="tenant_id = :t OR n >= :n",
             ExpressionAttributeValues={":pk": {"S": "U#t"}, ":p": {"S": "REQ"}, ":t": {"S": "t"}, ":n": {"N": "1"}})
        call("scan", TableName="t", FilterExpression="attribute_exists(requests) AND requests > :z",
             ExpressionAttributeValues={":z": {"N": "0"}})
    for item_key in (key, doc, {"pk": {"S": "U#t"}, "sk": {"S": "DAY#1"}}, {"pk": {"S": "U#t"}, "sk": {"S": "NEW"}}):
        call("get_item", TableName="t", Key=item_key)
    # Item sizes (the 400 KB limit): computed, and enforced at the edge.
    from moto.dynamodb.models.dynamo_type import DynamoType

    for value in ({"S": "héllo ✓"}, {"N": "-12.50"}, {"B": b"\x00\x01"}, {"BOOL": True}, {"NULL": True},
                  {"SS": ["a", "βb"]}, {"NS": ["1", "2.5"]}, {"BS": [b"x", b"yz"]}, {"L": [{"S": "a"}, {"L": []}]},
                  {"M": {"k": {"M": {"deep": {"L": [{"N": "1"}, {"M": {"é": {"S": "v"}}}]}}}, "e": {"M": {}}}}):
        results.append(["size", value["B"].hex() if "B" in value else value, DynamoType(value).size()])
    big = {"pk": {"S": "BIG"}, "sk": {"S": "1"}}
    filler = {"M": {f"k{i:04d}": {"S": "x" * 390} for i in range(1000)}}
    call("put_item", TableName="t", Item={**big, "m": filler})
    for size in (1000, 2000, 4000, 8000, 16000):
        call("update_item", TableName="t", Key=big, UpdateExpression="SET extra = :v",
             ExpressionAttributeValues={":v": {"S": "y" * size}})
    return results


def _scenario_main(patches: str, transport: str = "in-process") -> None:
    """Run the battery in this (fresh) process against moto, in-process or through its HTTP server as the local
    cloud runs it, and print the answers as JSON."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",  # noqa: S105
                      AWS_DEFAULT_REGION="us-east-1")
    from local_cloud.moto_dynamodb_cpu import fast_dynamodb
    from local_cloud.moto_patches import keep_alive_and_no_delay, serialize_dynamodb
    from moto import mock_aws
    from moto.server import ThreadedMotoServer

    serialize_dynamodb()
    if patches == "all":
        fast_dynamodb()
    if transport == "in-process":
        with mock_aws():
            results = _battery(boto3.client("dynamodb", region_name="us-east-1"))
    else:
        keep_alive_and_no_delay()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        port = server._server.server_port  # type: ignore[union-attr]
        try:
            results = _battery(boto3.client("dynamodb", region_name="us-east-1",
                                            endpoint_url=f"http://127.0.0.1:{port}"))
        finally:
            server.stop()
    print(json.dumps(results, default=repr, sort_keys=True))


def _run_battery(patches: str, transport: str = "in-process") -> list[Any]:
    code = (f"from tests.integration.test_moto_patches import _scenario_main; "
            f"_scenario_main({patches!r}, {transport!r})")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,  # noqa: S603
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["in-process", "server"])
def test_every_answer_and_error_is_moto_s_own(transport):
    plain, patched = _run_battery("locks", transport), _run_battery("all", transport)
    assert len(plain) == len(patched) > 80
    for expected, got in zip(plain, patched, strict=True):
        assert got == expected
    outcomes = {(r[0], r[1]) for r in plain if r[0] != "size"}
    assert ("update_item", "error") in outcomes and ("transact_write_items", "error") in outcomes
    assert ("update_item", "ok") in outcomes and ("transact_write_items", "ok") in outcomes


# --- the behaviours the gateway relies on, through the patched server -------------------------------------------------


@pytest.fixture(scope="module")
def server():
    from local_cloud.moto_dynamodb_cpu import fast_dynamodb
    from local_cloud.moto_patches import keep_alive_and_no_delay, serialize_dynamodb
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    serialize_dynamodb()
    fast_dynamodb()
    keep_alive_and_no_delay()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto_server.start()
    yield port
    moto_server.stop()


@pytest.fixture
def db(server, request):
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{server}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
                          config=Config(max_pool_connections=64, retries={"max_attempts": 1}))
    table = f"t{abs(hash(request.node.name))}"
    client.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )
    yield client, table
    client.delete_table(TableName=table)


def _admit(client: Any, table: str, request_id: str, limit: int, *, tokens: int = 1) -> dict[str, Any]:
    """The gateway's admission shape: one conditional UpdateItem, a per-request name under one expression."""
    return client.update_item(
        TableName=table, Key=KEY, UpdateExpression="SET leases.#rid = :deadline ADD req :one, tok :tok",
        ConditionExpression="attribute_exists(leases) AND req < :limit",
        ExpressionAttributeNames={"#rid": request_id},
        ExpressionAttributeValues={":deadline": {"N": "100"}, ":one": {"N": "1"}, ":tok": {"N": str(tokens)},
                                   ":limit": {"N": str(limit)}},
        ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )["Attributes"]


def _open(client: Any, table: str) -> None:
    client.put_item(TableName=table, Item={**KEY, "req": {"N": "0"}, "tok": {"N": "0"}, "leases": {"M": {}}})


def _item(client: Any, table: str, key: dict[str, Any] = KEY) -> dict[str, Any]:
    return client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})


def test_a_failing_condition_refuses_with_the_item_it_was_checked_against_every_time(db):
    client, table = db
    _open(client, table)
    assert _admit(client, table, "a", 1)["req"] == {"N": "1"}
    before = _item(client, table)
    for _ in range(3):  # the same expression, names and values: refused each time, nothing written
        with pytest.raises(ClientError) as refused:
            _admit(client, table, "b", 1)
        assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert refused.value.response["Item"] == before
    assert _item(client, table) == before


def test_the_same_expression_with_other_values_gives_other_answers(db):
    client, table = db
    _open(client, table)
    _admit(client, table, "a", 5, tokens=7)
    with pytest.raises(ClientError):
        _admit(client, table, "b", 1, tokens=3)  # limit 1: refused
    item = _admit(client, table, "c", 2, tokens=11)  # same strings, limit 2: admitted
    assert item["req"] == {"N": "2"} and item["tok"] == {"N": "18"}
    assert set(item["leases"]["M"]) == {"a", "c"}  # each call's own #rid


def test_set_add_remove_if_not_exists_and_list_append_still_compute_the_same(db):
    client, table = db
    key = {"pk": {"S": "D"}, "sk": {"S": "1"}}

    def update(expression: str, values: dict[str, Any] | None = None, names: dict[str, str] | None = None):
        kwargs: dict[str, Any] = {"TableName": table, "Key": key, "UpdateExpression": expression,
                                  "ReturnValues": "ALL_NEW"}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        return client.update_item(**kwargs)["Attributes"]

    for round_ in range(2):  # the second round runs from the caches
        client.delete_item(TableName=table, Key=key)
        item = update("SET n = :one, l = :l, m = :m ADD s :s, c :two",
                      {":one": {"N": "1"}, ":l": {"L": [{"S": "a"}]}, ":m": {"M": {"x": {"N": "1"}}},
                       ":s": {"SS": ["p"]}, ":two": {"N": "2"}})
        assert item["n"] == {"N": "1"} and item["c"] == {"N": "2"} and item["s"] == {"SS": ["p"]}
        item = update("SET n = n + :five, k = if_not_exists(k, :five), l = list_append(l, :more) ADD c :two",
                      {":five": {"N": "5"}, ":more": {"L": [{"N": "9"}]}, ":two": {"N": "2"}})
        assert item["n"] == {"N": "6"} and item["k"] == {"N": "5"} and item["c"] == {"N": "4"}
        assert item["l"] == {"L": [{"S": "a"}, {"N": "9"}]}
        item = update("SET k = if_not_exists(k, :other), #m.x = #m.x - :one REMOVE l[0], n",
                      {":other": {"N": "100"}, ":one": {"N": "1"}}, {"#m": "m"})
        assert item["k"] == {"N": "5"} and item["m"] == {"M": {"x": {"N": "0"}}}
        assert item["l"] == {"L": [{"N": "9"}]} and "n" not in item, round_


def test_a_decimal_sum_back_to_zero_is_zero_and_adds_again(db):
    # Given a cost counter that a reservation raised and its hand-back lowered to exactly zero
    client, table = db
    key = {"pk": {"S": "COST"}, "sk": {"S": "1"}}

    def add(expression: str, amount: str) -> dict[str, Any]:
        return client.update_item(TableName=table, Key=key, UpdateExpression=expression,
                                  ExpressionAttributeValues={":v": {"N": amount}}, ReturnValues="ALL_NEW")["Attributes"]

    add("ADD cost :v", "0.00000042")
    # When it goes back to zero, by ADD and by SET arithmetic
    assert add("ADD cost :v", "-0.00000042")["cost"] == {"N": "0"}
    assert add("SET cost = cost + :v", "0.5")["cost"] == {"N": "0.5"}
    assert add("SET cost = cost - :v", "0.50")["cost"] == {"N": "0"}
    # Then it is DynamoDB's "0" and further additions work, written without exponent or trailing zeros
    assert add("ADD cost :v", "1")["cost"] == {"N": "1"}
    assert add("ADD cost :v", "1E+2")["cost"] == {"N": "101"}
    assert add("SET cost = cost + :v", "0.250")["cost"] == {"N": "101.25"}
    # And a sum DynamoDB cannot hold is refused, not rounded: 39 significant digits
    with pytest.raises(ClientError) as refused:
        add("ADD cost :v", "1E+37")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert add("ADD cost :v", "0")["cost"] == {"N": "101.25"}  # unchanged


def test_a_transaction_with_a_failing_condition_changes_nothing(db):
    client, table = db
    _open(client, table)
    _admit(client, table, "a", 5)
    day = {"pk": {"S": "U"}, "sk": {"S": "DAY"}}
    client.put_item(TableName=table, Item={**day, "requests": {"N": "7"}})
    gate = {"pk": {"S": "G"}, "sk": {"S": "GATE"}}
    client.put_item(TableName=table, Item={**gate, "is_open": {"BOOL": False}})
    before = (_item(client, table), _item(client, table, day))
    with pytest.raises(ClientError) as cancelled:
        client.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": KEY, "UpdateExpression": "ADD tok :t REMOVE leases.#rid",
                        "ExpressionAttributeNames": {"#rid": "a"}, "ExpressionAttributeValues": {":t": {"N": "5"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "U"}, "sk": {"S": "REQ#1"}}}},
            {"Update": {"TableName": table, "Key": day, "UpdateExpression": "ADD requests :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": table, "Key": gate, "ConditionExpression": "is_open = :yes",
                                "ExpressionAttributeValues": {":yes": {"BOOL": True}}}},
        ])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert (_item(client, table), _item(client, table, day)) == before
    assert _item(client, table, {"pk": {"S": "U"}, "sk": {"S": "REQ#1"}}) == {}


def test_concurrent_conditional_admits_stay_exact(db):
    client, table = db
    _open(client, table)
    admitted, refused, failures = [], [], []
    start = threading.Barrier(50)

    def instance(n: int) -> None:
        start.wait()
        try:
            _admit(client, table, f"r{n}", 10)
            admitted.append(n)
        except ClientError as exc:
            (refused if exc.response["Error"]["Code"] == "ConditionalCheckFailedException" else failures).append(exc)

    threads = [threading.Thread(target=instance, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(admitted) == 10 and len(refused) == 40
    item = _item(client, table)
    assert item["req"] == {"N": "10"} and len(item["leases"]["M"]) == 10


# --- connections are kept alive, and only when that is safe -----------------------------------------------------------


def _raw(port: int, requests: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send the requests on one connection, one after the other; the answers in order."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for raw in requests:
            sock.sendall(raw)
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append((response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()))
    return answers


def _list_tables(extra_headers: str = "", body: bytes = b"{}", chunked: bool = False) -> bytes:
    head = ("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n"
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=x\r\n" + extra_headers)
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_requests_share_one_connection_and_bodies_are_read_exactly(server):
    answers = _raw(server, [_list_tables(), _list_tables(body=b'{"Limit": 5}'), _list_tables()])
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert all(headers.get("connection") != "close" for _, headers, _ in answers)
    assert all("TableNames" in json.loads(body) for _, _, body in answers)


def test_the_connection_closes_when_the_client_asks_or_the_body_is_chunked(server):
    for request in (_list_tables("Connection: close\r\n"), _list_tables(chunked=True)):
        with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
            sock.sendall(request)
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 200 and response.getheader("connection") == "close"
            assert "TableNames" in json.loads(response.read())
            assert sock.recv(1) == b""  # closed by the server


def test_a_body_the_handler_did_not_read_does_not_leak_into_the_next_request(server):
    get = b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\nnot-a-verb "
    first, second = _raw(server, [get, _list_tables()])
    assert first[0] == 200 and second[0] == 200 and "TableNames" in json.loads(second[2])
