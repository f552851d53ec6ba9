"""The OpenAI-compatible provider sends what the SDK's `chat.completions.create` would send, byte for byte.

The provider calls `client.post` itself (`create` copied the client and walked the messages against the
SDK's TypedDicts on every call); this compares both requests on the wire, so an SDK upgrade whose
`create` sends something else fails here.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from deepseek_gateway.catalogue import load_catalogue
from deepseek_gateway.chat_service import parse_request
from deepseek_gateway.providers.openai_compatible import OpenAICompatibleProvider

ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
BODIES = [
    {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello"}]},
    {"model": "deepseek-chat", "thinking": {"type": "enabled"}, "temperature": 0.2, "max_tokens": 50,
     "stop": ["\n\n"], "response_format": {"type": "json_object"}, "seed": 7, "user": "u-1",
     "messages": [{"role": "system", "content": "Answer in JSON, é ✓"},
                  {"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "{\"c\": 21}"}],
     "tools": [{"type": "function", "function": {"name": "weather", "description": "d",
                                                 "parameters": {"type": "object", "properties": {}}}}],
     "tool_choice": "auto"},
    {"model": "gpt-4.1", "n": 2, "logprobs": True, "top_logprobs": 2, "max_completion_tokens": 20,
     "messages": [{"role": "user", "content": [
         {"type": "text", "text": "What is this?"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}]},
]


class _Capture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.append((self.command, self.path, list(self.headers.items()), body))
        data = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def capture():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Capture.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _Capture.seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("raw", BODIES)
def test_the_provider_sends_what_create_sends(capture, raw):
    base_url, seen = capture
    catalogue = load_catalogue()
    request = parse_request(raw, catalogue)
    entry = catalogue.resolve(request.model)
    provider = OpenAICompatibleProvider(entry.provider, base_url, lambda: "sk-test")
    completion = provider.complete(request, entry, timeout_s=7.5)
    assert completion.model == entry.id and completion.choices[0].message.content == "hi"

    body = request.to_upstream(entry.upstream)
    model, messages = body.pop("model"), body.pop("messages")
    provider.client().with_options(timeout=7.5).chat.completions.with_raw_response.create(
        model=model, messages=messages, extra_body=body)

    ours, sdks = seen
    assert ours == sdks
    assert json.loads(ours[3])["messages"] == messages


def test_a_request_the_sdk_cannot_encode_is_a_400_and_never_reaches_the_provider(capture):
    # Given a request that slipped past validation with a lone surrogate in its text
    from deepseek_gateway.errors import InvalidRequestError

    base_url, seen = capture
    catalogue = load_catalogue()
    request = parse_request({"model": "deepseek-chat", "messages": [{"role": "user", "content": "x"}]}, catalogue)
    request.messages[0].content = "lone \ud800"
    entry = catalogue.resolve(request.model)
    provider = OpenAICompatibleProvider(entry.provider, base_url, lambda: "sk-test")

    # When the provider is called, Then it is the request's 400, not a provider failure to retry elsewhere
    with pytest.raises(InvalidRequestError):
        provider.complete(request, entry, timeout_s=2)
    assert seen == []


@pytest.mark.parametrize(("model", "kept"), [("deepseek-reasoner", True), ("o4-mini", False)])
def test_earlier_reasoning_goes_back_to_deepseek_only(capture, model, kept):
    # Given a conversation whose assistant turn carries its reasoning (as DeepSeek's thinking mode wants back)
    base_url, seen = capture
    catalogue = load_catalogue()
    request = parse_request({"model": model, "messages": [
        {"role": "user", "content": "Find x"},
        {"role": "assistant", "content": "Found.", "reasoning_content": "I looked."},
        {"role": "user", "content": "Thanks"}]}, catalogue)
    entry = catalogue.resolve(request.model)

    # When it is sent to the model's provider
    OpenAICompatibleProvider(entry.provider, base_url, lambda: "sk-test").complete(request, entry, timeout_s=5)

    # Then DeepSeek gets the reasoning back and OpenAI, which refuses the field, does not
    assistant = json.loads(seen[-1][3])["messages"][1]
    assert ("reasoning_content" in assistant) is kept
