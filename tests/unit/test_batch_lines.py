"""Batch input lines: what ingestion accepts, what becomes an error line, what fails the file; the file shapes."""

from __future__ import annotations

import json

import pytest
from deepseek_gateway.batches.lines import (
    BatchFileError,
    chunk_body,
    chunk_key,
    error_result,
    output_result,
    render_jsonl,
    split_chunks,
    validate_lines,
)
from deepseek_gateway.batches.models import BatchItem
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.ids import time_ordered_id

ENDPOINT = "/v1/chat/completions"
BODY = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]}


def line(custom_id: object = "r1", **changes: object) -> bytes:
    value = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": BODY, **changes}
    return json.dumps(value).encode()


def validate(data: bytes, **limits: int):
    return validate_lines(data, endpoint=ENDPOINT, catalogue=load_catalogue(),
                          max_lines=limits.get("max_lines", 100), max_line_bytes=limits.get("max_line_bytes", 4096),
                          max_file_bytes=limits.get("max_file_bytes"))


def test_given_valid_lines_and_blank_ones_when_validated_then_items_carry_physical_line_numbers():
    data = b"\n".join([line("a"), b"", b"   ", line("b") + b"\r", line("c")]) + b"\n"

    checked = validate(data)

    assert [(i.line, i.custom_id) for i in checked.items] == [(1, "a"), (4, "b"), (5, "c")]
    assert checked.items[0].body == BODY and checked.errors == [] and checked.total == 3


def test_given_valid_lines_when_validated_then_each_item_carries_the_sync_paths_prompt_token_estimate():
    from deepseek_gateway.chat_service import parse_request
    from deepseek_gateway.tokens import estimate_prompt_tokens

    long_body = {**BODY, "messages": [{"role": "user", "content": "a much longer question " * 40}]}
    checked = validate(line("short") + b"\n" + line("long", body=long_body))

    expected = [estimate_prompt_tokens(parse_request(b, load_catalogue())) for b in (BODY, long_body)]
    assert [i.prompt_tokens for i in checked.items] == expected
    assert expected[1] > expected[0] > 0 and checked.prompt_tokens == sum(expected)


@pytest.mark.parametrize(("raw", "code", "param"), [
    (b"{not json", "invalid_json_line", None),
    (b"[1, 2]", "invalid_json_line", None),
    (line(custom_id=""), "invalid_request", "custom_id"),
    (line(custom_id=7), "invalid_request", "custom_id"),
    (line(custom_id="x" * 513), "invalid_request", "custom_id"),
    (line(method="GET"), "invalid_request", "method"),
    (line(url="/v1/embeddings"), "invalid_request", "url"),
    (line(body="hello"), "invalid_request", "body"),
    (line(extra=1), "unrecognized_argument", "extra"),
    (line(body={**BODY, "model": "no-such-model"}), "model_not_found", "body.model"),
    (line(body={**BODY, "tenant_id": "other"}), "unrecognized_argument", "body.tenant_id"),
    (line(body={**BODY, "stream": True}), "invalid_request", "body.stream"),
    (line(body={"model": "deepseek-chat"}), "invalid_request", "body.messages"),
])
def test_given_a_bad_line_when_validated_then_it_is_an_error_line_with_the_chat_paths_code(raw, code, param):
    checked = validate(line("ok") + b"\n" + raw + b"\n")

    assert [i.custom_id for i in checked.items] == ["ok"]
    (error,) = checked.errors
    assert (error.line, error.code, error.param) == (2, code, param)
    assert error.message


def test_given_a_repeated_custom_id_when_validated_then_the_later_line_fails():
    checked = validate(b"\n".join([line("same"), line("other"), line("same")]))

    assert [i.line for i in checked.items] == [1, 2]
    assert [(e.line, e.custom_id, e.code) for e in checked.errors] == [(3, "same", "duplicate_custom_id")]


def test_given_a_line_over_the_byte_limit_when_validated_then_it_fails_with_its_custom_id():
    big = line("big", body={**BODY, "messages": [{"role": "user", "content": "é" * 300}]})
    checked = validate(line("small") + b"\n" + big, max_line_bytes=len(line("small")) + 10)

    assert [(e.line, e.custom_id, e.code) for e in checked.errors] == [(2, "big", "request_too_large")]


@pytest.mark.parametrize(("data", "code", "limits"), [
    (b"", "empty_file", {}),
    (b"\n  \n\n", "empty_file", {}),
    (b"\xff\xfe" + line(), "invalid_file_encoding", {}),
    (b"\n".join(line(f"r{i}") for i in range(4)), "too_many_requests", {"max_lines": 3}),
    (line() * 1, "file_too_large", {"max_file_bytes": 10}),
])
def test_given_a_file_level_problem_when_validated_then_it_raises_an_invalid_request(data, code, limits):
    with pytest.raises(InvalidRequestError) as raised:
        validate(data, **limits)

    assert raised.value.code == code and raised.value.status == 400
    assert isinstance(raised.value, BatchFileError) and raised.value.errors[0].code == code


def test_given_exactly_the_maximum_lines_when_validated_then_the_file_is_accepted():
    assert validate(b"\n".join(line(f"r{i}") for i in range(3)), max_lines=3).total == 3


def test_given_no_valid_line_when_validated_then_the_file_fails_listing_the_line_errors():
    with pytest.raises(BatchFileError) as raised:
        validate(b"\n".join([b"{bad", line(method="GET")]))

    assert raised.value.code == "no_valid_requests"
    assert [(e.line, e.code) for e in raised.value.errors] == [(1, "invalid_json_line"), (2, "invalid_request")]


def test_given_a_byte_order_mark_when_validated_then_the_first_line_still_counts():
    assert [i.custom_id for i in validate(b"\xef\xbb\xbf" + line("first")).items] == ["first"]


def test_given_results_when_rendered_then_they_have_openais_output_and_error_line_shapes():
    completion = {"id": "chatcmpl-1", "object": "chat.completion", "choices": []}
    ok = output_result("a", "batch_x:1", completion)
    bad = error_result("b", "model_not_found", "No such model.")

    lines = [json.loads(text) for text in render_jsonl([ok, bad]).decode().splitlines()]

    assert lines[0] == {"id": ok["id"], "custom_id": "a", "error": None,
                        "response": {"status_code": 200, "request_id": "batch_x:1", "body": completion}}
    assert lines[1] == {"id": bad["id"], "custom_id": "b", "response": None,
                        "error": {"code": "model_not_found", "message": "No such model."}}
    for value in (ok["id"], bad["id"]):
        assert value.startswith("batch_req_") and len(value) == len("batch_req_") + 24


def test_given_items_when_split_then_chunks_respect_both_the_item_and_the_byte_budget():
    items = [BatchItem(line=i, custom_id=f"r{i}", body={"model": "m", "x": "y" * 50}) for i in range(1, 8)]
    one = len(items[0].model_dump_json()) + 1

    by_count = split_chunks(items, max_items=3, max_bytes=10_000)
    by_bytes = split_chunks(items, max_items=100, max_bytes=2 + 2 * one)

    assert [len(c) for c in by_count] == [3, 3, 1]
    assert [len(c) for c in by_bytes] == [2, 2, 2, 1]
    assert all(len(chunk_body(c)) <= 2 + 2 * one for c in by_bytes)
    assert [BatchItem.model_validate(v) for v in json.loads(chunk_body(by_count[0]))] == items[:3]
    assert chunk_key("acme", "batch_1", 7) == "acme/batches/batch_1/chunks/00007.json"


def test_given_ids_made_in_a_burst_when_sorted_then_they_keep_their_creation_order():
    ids = [time_ordered_id("batch_", 1_700_000_000.0) for _ in range(50)]

    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(len(i) == len("batch_") + 24 for i in ids)
