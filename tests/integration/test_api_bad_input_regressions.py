"""The bad inputs the fuzz properties (test_api_bad_input_fuzz.py) and reviews found, one example each: what
each gave before (a 5xx, a misleading status, an echoed id) and the 4xx it gets now."""

from __future__ import annotations

import base64
import json

from tests.helpers import ADMIN_PRINCIPAL
from tests.integration.bad_input import (
    CHAT_PATH,
    VALID_CHAT,
    call,
    chat,
    deep,
    error_of,
    send,
)


def test_given_the_base64_flag_on_a_body_that_is_not_base64_of_utf8_when_posting_json_then_400_invalid_body(
        gateway):
    """Was a 500 on every JSON route: Powertools' decoded_body raised binascii.Error / UnicodeDecodeError."""
    for raw in ("0:", "eyJhIjoxfQ", "e30=!", "e3-9", base64.b64encode(b"{\xff}").decode()):
        for path, principal in ((CHAT_PATH, gateway.principal), ("/v1/batches", gateway.principal),
                                ("/v1/files/uploads", gateway.principal), ("/admin/tenants", ADMIN_PRINCIPAL)):
            response = send(gateway.handler, "POST", path, raw_body=raw, base64_encoded=True, principal=principal)
            assert response["statusCode"] == 400, (raw, path, response["body"])
            assert error_of(response)["code"] == "invalid_body", (raw, path)


def test_given_json_nested_too_deep_when_posting_a_chat_completion_then_400_invalid_json_and_64_levels_pass(gateway):
    """Was a 500 two ways: past ~1000 levels json.loads raises RecursionError (not a ValueError); past ~255 the
    body parsed, then pydantic-core refused to serialize it (the token estimate, the upstream body)."""
    tools = [{"type": "function", "function": {"name": "f", "parameters": deep(300)}}]
    for raw in ("[" * 5000 + "]" * 5000, json.dumps({**VALID_CHAT, "tools": tools})):
        response = chat(gateway, raw)
        assert response["statusCode"] == 400, response["body"]
        error = error_of(response)
        assert error["code"] == "invalid_json" and "64 levels" in error["message"]
    tools = [{"type": "function", "function": {"name": "f", "parameters": deep(59)}}]  # 64 with the body's own
    response = chat(gateway, json.dumps({**VALID_CHAT, "tools": tools}))
    assert response["statusCode"] == 200, response["body"]


def test_given_tool_call_arguments_nested_deep_when_posting_a_chat_completion_then_400_naming_the_message(gateway):
    """Was a 500: the safety layer's walk over the decoded arguments (and, for Anthropic models, the
    translation's json.loads) hit RecursionError."""
    for model in ("deepseek-chat", "claude-haiku-4-5"):
        call_ = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": json.dumps(deep(900))}}
        body = {"model": model, "messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "tool_calls": [call_]},
                                             {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]}
        response = chat(gateway, json.dumps(body))
        assert response["statusCode"] == 400, (model, response["body"])
        assert error_of(response)["param"] == "messages[1].tool_calls"


def test_given_an_unpaired_surrogate_escape_in_a_message_when_posting_then_400_and_no_provider_is_called(
        gateway, local_provider):
    """Was a 502 after six attempts on three providers, each counted against their circuit breakers: the SDKs
    cannot encode the text as UTF-8, and that ValueError read as a malformed answer."""
    before = {name: local_provider.request_count(name) for name in ("deepseek", "openai", "anthropic")}
    for content in ("\ud800", "a\udfffb", "\ude00\ud83d"):
        response = chat(gateway, json.dumps({**VALID_CHAT, "messages": [{"role": "user", "content": content}]}))
        assert response["statusCode"] == 400 and error_of(response)["code"] == "invalid_json", response["body"]
    assert {name: local_provider.request_count(name) for name in before} == before
    paired = chat(gateway, json.dumps({**VALID_CHAT, "messages": [{"role": "user", "content": "\U0001F600"}]}))
    assert paired["statusCode"] == 200, paired["body"]  # json.dumps escapes it as \ud83d\ude00: a valid pair
    assert "\U0001F600" in json.loads(paired["body"])["choices"][0]["message"]["content"]


def test_given_an_unpaired_surrogate_in_the_event_body_text_when_posting_then_400_not_500(gateway):
    """Was a 500: measuring the body's size encoded it as UTF-8, which raised UnicodeEncodeError."""
    for path, principal in ((CHAT_PATH, gateway.principal), ("/v1/batches", gateway.principal),
                            ("/admin/tenants", ADMIN_PRINCIPAL)):
        response = send(gateway.handler, "POST", path, raw_body='{"model": "\ud800"}', principal=principal)
        assert response["statusCode"] == 400 and error_of(response)["code"] == "invalid_json", path


def test_given_nan_or_infinity_in_a_free_form_field_when_posting_a_chat_completion_then_400_invalid_json(gateway):
    """Python's json reads NaN and Infinity; no provider SDK's encoder writes them: a free-form field (a tool's
    parameters, an extension) carrying one failed upstream as a 'malformed' answer, a 502."""
    for value in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = json.dumps({**VALID_CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "maximum": 0}}}]}).replace('"maximum": 0', f'"maximum": {value}')
        response = chat(gateway, raw)
        assert response["statusCode"] == 400 and error_of(response)["code"] == "invalid_json", value


def test_given_max_tokens_beyond_int64_when_posting_a_chat_completion_then_400_naming_max_tokens(gateway):
    """Was a 403 blaming the tenant's policy ("no policy permits it"): Cedar cannot hold the number."""
    for field in ("max_tokens", "max_completion_tokens"):
        response = chat(gateway, json.dumps({**VALID_CHAT, field: 2**63}))
        assert response["statusCode"] == 400 and error_of(response)["param"] == field, response["body"]
    # Within int64 but beyond what the model writes: a 400 naming the field, before any provider is called
    response = chat(gateway, json.dumps({**VALID_CHAT, "max_tokens": 2**63 - 1}))
    assert response["statusCode"] == 400 and "writes at most 8192" in error_of(response)["message"]
    response = chat(gateway, json.dumps({**VALID_CHAT, "max_completion_tokens": 8193}))
    assert response["statusCode"] == 400 and error_of(response)["param"] == "max_completion_tokens"
    response = chat(gateway, json.dumps({**VALID_CHAT, "max_tokens": 8192}))  # deepseek-chat's limit
    assert response["statusCode"] == 200, response["body"]


def test_given_nan_or_an_unpaired_surrogate_in_tool_call_arguments_for_an_anthropic_model_then_400_naming_them(
        gateway):
    """Was a 502: the translation decoded the arguments into NaN or a lone surrogate, which the anthropic SDK
    then failed to encode, and that read as a malformed answer from the provider."""
    for arguments in ('{"p": NaN}', '{"p": -Infinity}', '{"p": "\\ud800"}'):
        call_ = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
        body = {"model": "claude-haiku-4-5", "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call_]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
        response = chat(gateway, json.dumps(body))
        assert response["statusCode"] == 400, (arguments, response["body"])
        assert error_of(response)["param"] == "messages[1].tool_calls"
    # NaN in arguments is only a string to an OpenAI-compatible provider: passed on as it is. (A lone surrogate
    # is refused for every model: the safety layer's redaction re-encodes arguments, see the next test.)
    nan_call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"p": NaN}'}}
    body["messages"][1]["tool_calls"] = [nan_call]
    response = chat(gateway, json.dumps({**body, "model": "deepseek-chat"}))
    assert response["statusCode"] == 200, response["body"]


def test_given_usage_dates_that_are_no_calendar_dates_or_out_of_order_when_reading_usage_then_400_naming_them(
        gateway):
    """Was a 200 with no data: `2026-13-45` looked like a date."""
    for query, param in (({"start": "2026-13-45"}, "start"), ({"end": "2026-02-30"}, "end"),
                         ({"start": "2026-11-30", "end": "2026-11-01"}, "start"),
                         ({"granularity": "month", "start": "2026-00"}, "start"), ({"start": "٢٠٢٦-01-01"}, "start")):
        response = call(gateway, "GET", "/v1/usage", query=query)
        assert response["statusCode"] == 400 and error_of(response)["param"] == param, (query, response["body"])
    response = call(gateway, "GET", "/v1/usage", query={"start": "2026-02-28", "end": "2026-03-01"})
    assert response["statusCode"] == 200, response["body"]


def test_given_a_limit_in_other_digits_when_listing_batches_or_files_then_400_naming_limit(gateway):
    """Was read as 3: Python's int() accepts any script's digits."""
    for path in ("/v1/batches", "/v1/files"):
        response = call(gateway, "GET", path, query={"limit": "٣"})
        assert response["statusCode"] == 400 and error_of(response)["param"] == "limit", (path, response["body"])
        assert call(gateway, "GET", path, query={"limit": "3"})["statusCode"] == 200


def test_given_a_very_long_unknown_id_when_reading_it_then_the_404_does_not_echo_it_whole(gateway):
    """Was a 404 whose message held the whole 5,000-character id."""
    long_id = "x" * 5000
    for path in (f"/v1/batches/batch_{long_id}", f"/v1/files/file-{long_id}", f"/v1/models/{long_id}"):
        response = call(gateway, "GET", path)
        assert response["statusCode"] == 404, (path[:40], response["body"][:200])
        assert len(error_of(response)["message"]) < 300


def test_given_an_escaped_unpaired_surrogate_in_tool_call_arguments_beside_a_card_number_when_posting_then_400(
        gateway):
    # Given tool-call arguments (JSON in a string) holding a lone `\ud800` escape and a card number the safety
    # layer redacts by default, which means decoding and encoding the arguments again
    arguments = '{"card": "4111 1111 1111 1111", "note": "\\ud800"}'
    call_ = {"id": "c1", "type": "function", "function": {"name": "pay", "arguments": arguments}}
    body = {"model": "deepseek-chat", "messages": [
        {"role": "user", "content": "pay with my card"}, {"role": "assistant", "tool_calls": [call_]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent"}]}

    # When it is posted
    response = chat(gateway, json.dumps(body))

    # Then it is a 400 naming the tool call, not six failed provider attempts and a 502
    assert response["statusCode"] == 400, response["body"]
    assert error_of(response)["param"] == "messages[1].tool_calls"
    # And a surrogate PAIR (an escaped emoji) is fine
    call_["function"]["arguments"] = '{"card": "4111 1111 1111 1111", "note": "\\ud83d\\ude00"}'
    assert chat(gateway, json.dumps(body))["statusCode"] == 200
