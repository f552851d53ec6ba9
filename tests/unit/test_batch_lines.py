"""Batch input lines: what ingestion accepts, what becomes an error line, what fails the file; the file shapes;
the same when the file streams in, in pieces."""

from __future__ import annotations

import json

import pytest
from deepseek_gateway.batches.lines import (
    BatchFileError,
    LineChecker,
    chunk_bodies,
    chunk_key,
    error_result,
    output_result,
    render_jsonl,
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


@pytest.mark.parametrize("bad", [b'"temperature": NaN', b'"temperature": Infinity', b'"user": "\\ud800"',
                                 b'"metadata": ' + b'[' * 70 + b']' * 70])
def test_given_a_line_a_request_body_could_not_carry_when_validated_then_it_fails_as_invalid_json(bad):
    # Given a line whose body has what the synchronous path refuses as `invalid_json`
    body = json.dumps({"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]})
    raw = b'{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": ' + \
        body[:-1].encode() + b", " + bad + b"}}"

    # When the file is validated
    checked = validate(line("ok") + b"\n" + raw)

    # Then that line is an `invalid_json_line` error (never sent to a provider), the other one valid
    assert [i.custom_id for i in checked.items] == ["ok"]
    assert [(e.line, e.code) for e in checked.errors] == [(2, "invalid_json_line")]


def test_given_a_line_of_megabytes_when_validated_then_it_fails_without_being_parsed_for_its_custom_id():
    # Given a file whose second line is 2 MiB (a file of one huge line would otherwise be parsed whole)
    huge = line("huge", body={**BODY, "messages": [{"role": "user", "content": "😀" * (512 * 1024)}]})

    # When it is validated
    checked = validate(line("small") + b"\n" + huge)

    # Then the line fails as too large, named by its line number only
    assert len(huge) > 2 * 1024 * 1024
    assert [(e.line, e.custom_id, e.code) for e in checked.errors] == [(2, None, "request_too_large")]


def test_given_a_megabyte_line_with_a_bad_byte_past_its_first_mebibyte_when_validated_then_its_file_offset_is_named():
    # Given a 3 MiB line of emoji whose UTF-8 breaks 2.5 MiB in, after a normal line
    first = line("small") + b"\n"
    good = "😀".encode() * (640 * 1024)  # 2.5 MiB, every 4-byte sequence whole
    huge = good + b"\xff" + "😀".encode() * 1000

    # When it is validated (in pieces that cut sequences, as S3 streams it)
    data = first + huge
    pieces = [data[i:i + 65_537] for i in range(0, len(data), 65_537)]
    checker = LineChecker(endpoint="/v1/chat/completions", catalogue=load_catalogue(), max_lines=100,
                          max_line_bytes=65_536)

    # Then the file fails with the bad byte's offset in the file, as a whole-file decode names it
    with pytest.raises(BatchFileError) as failed:
        list(checker.items(pieces))
    assert failed.value.code == "invalid_file_encoding"
    assert f"offset {len(first) + len(good)}, line 2" in failed.value.message


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

    by_count = list(chunk_bodies(items, max_items=3, max_bytes=10_000))
    by_bytes = list(chunk_bodies(items, max_items=100, max_bytes=2 + 2 * one))

    assert [len(json.loads(c)) for c in by_count] == [3, 3, 1]
    assert [len(json.loads(c)) for c in by_bytes] == [2, 2, 2, 1]
    assert all(len(c) <= 2 + 2 * one for c in by_bytes)
    assert [BatchItem.model_validate(v) for v in json.loads(by_count[0])] == items[:3]
    assert chunk_key("acme", "batch_1", 7) == "acme/batches/batch_1/chunks/00007.json"


def test_given_ids_made_in_a_burst_when_sorted_then_they_keep_their_creation_order():
    ids = [time_ordered_id("batch_", 1_700_000_000.0) for _ in range(50)]

    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(len(i) == len("batch_") + 24 for i in ids)


# --- streamed: the file's bytes in pieces, as the ingestion reads them from S3 ---------------------


def check_in_pieces(data: bytes, size: int, **limits: int):
    checker = LineChecker(endpoint=ENDPOINT, catalogue=load_catalogue(), max_lines=limits.get("max_lines", 100),
                          max_line_bytes=limits.get("max_line_bytes", 4096))
    items = list(checker.items(data[i:i + size] for i in range(0, len(data), size)))
    return items, checker


MIXED = b"".join([
    b"\xef\xbb\xbf" + line("bom") + b"\r\n",                                          # 1
    b"\n",                                                                           # 2: blank
    line("accents", body={**BODY, "messages": [{"role": "user", "content": "caf\u00e9 \U0001f642"}]}) + b"\n",
    b"{not json\n",                                                                  # 4
    b"  \t \r\n",                                                                    # 5: blank
    line("bom") + b"\n",                                                             # 6: duplicate
    line("big", body={**BODY, "messages": [{"role": "user", "content": "\u00e9" * 400}]}) + b"\n",  # 7: too large
    line("last"),                                                                    # 8: no final newline
])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, len(MIXED)])
def test_given_a_file_in_pieces_that_split_lines_and_characters_when_checked_then_it_is_as_the_whole_file(size):
    items, checker = check_in_pieces(MIXED, size, max_line_bytes=600)

    assert [(i.line, i.custom_id) for i in items] == [(1, "bom"), (3, "accents"), (8, "last")]
    assert items[1].body["messages"][0]["content"] == "caf\u00e9 \U0001f642"
    assert [(e.line, e.custom_id, e.code) for e in checker.errors] == [
        (4, None, "invalid_json_line"), (6, "bom", "duplicate_custom_id"), (7, "big", "request_too_large")]
    assert (checker.total, checker.valid, checker.prompt_tokens) == (6, 3, sum(i.prompt_tokens for i in items))
    whole = validate(MIXED, max_line_bytes=600)
    assert (items, checker.errors) == (whole.items, whole.errors)


@pytest.mark.parametrize("size", [1, 4, 1024])
def test_given_a_byte_that_is_not_utf8_when_checked_in_pieces_then_its_offset_and_line_are_the_files(size):
    data = b"\xef\xbb\xbf" + line("a") + b"\n\n" + line("b")[:20] + b"\xe9t\xc3" + line("b")[20:] + b"\n"

    with pytest.raises(BatchFileError) as raised:
        check_in_pieces(data, size)

    offset = len(line("a")) + 2 + 20  # after the byte order mark
    assert raised.value.code == "invalid_file_encoding"
    assert raised.value.message == f"The file is not UTF-8 text (invalid byte at offset {offset}, line 3)."


@pytest.mark.parametrize("streamed", [False, True])
def test_given_too_many_requests_and_a_byte_that_is_not_utf8_further_on_then_the_encoding_is_what_fails(streamed):
    data = b"\n".join([line(f"r{i}") for i in range(4)] + [b"\xff"])

    with pytest.raises(BatchFileError) as raised:
        check_in_pieces(data, 7, max_lines=3) if streamed else validate(data, max_lines=3)

    assert raised.value.code == "invalid_file_encoding"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_file"),
    (b" \r\n\n", "empty_file"),
    (b"\n".join(line(f"r{i}") for i in range(4)), "too_many_requests"),
    (b"{bad\n" + line(method="GET"), "no_valid_requests"),
])
def test_given_a_file_level_problem_when_checked_in_pieces_then_it_raises_once_the_file_is_read(data, code):
    with pytest.raises(BatchFileError) as raised:
        check_in_pieces(data, 3, max_lines=3)

    assert raised.value.code == code


def test_given_non_ascii_items_when_made_into_chunk_bodies_then_every_item_comes_back_in_order_within_budget():
    items = [BatchItem(line=i, custom_id=f"r{i}", body={"model": "m", "x": "\u00e9" * (10 * i)}) for i in range(1, 12)]

    for budget in ({"max_items": 3, "max_bytes": 10_000}, {"max_items": 100, "max_bytes": 300}):
        bodies = list(chunk_bodies(iter(items), **budget))

        assert all(len(json.loads(body)) <= budget["max_items"] for body in bodies)
        assert all(len(body) <= budget["max_bytes"] or len(json.loads(body)) == 1 for body in bodies)
        assert [BatchItem.model_validate(v) for body in bodies for v in json.loads(body)] == items
