"""A fake upstream for tests and the local cloud: DeepSeek, OpenAI and Anthropic on one port.

Answers are deterministic (same request, same answer) so tests can assert exact text without a key or
the internet, and each provider has fault switches (status, delay, hang, malformed body, dropped
connection) that tests flip while it runs: in-process through `LocalProvider`, or from another process
through the `/_control` HTTP API.

Built on the stdlib `http.server` on purpose: it is a developer tool, and nothing it needs may become a
dependency, since the Lambda layers are built from the project's runtime pins.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import select
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROVIDERS = ("deepseek", "openai", "anthropic")
# What the SDKs get as base_url. DeepSeek and OpenAI speak OpenAI's API, Anthropic its Messages API.
BASE_PATHS = {"deepseek": "/deepseek/v1", "openai": "/openai/v1", "anthropic": "/anthropic"}
MODELS = {
    "deepseek": ["deepseek-chat", "deepseek-reasoner"],
    "openai": ["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini", "o4-mini"],
    "anthropic": ["claude-sonnet-4-6", "claude-haiku-4-5"],
}
DEFAULT_SWITCHES: dict[str, Any] = {
    "delay_ms": 0, "status": None, "retry_after": None, "hang": False, "hang_s": 60.0,
    "malformed": False, "drop": False, "times": None,
}
_NUMBER = (int, float)
_SWITCH_KINDS = {"delay_ms": int, "status": int, "retry_after": _NUMBER, "hang": bool, "hang_s": _NUMBER,
                 "malformed": bool, "drop": bool, "times": int}
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z: a fixed `created`, so answers stay byte-for-byte equal
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_OPENAI_ERRORS = {401: ("invalid_request_error", "invalid_api_key"), 429: ("requests", "rate_limit_exceeded")}
_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                     529: "overloaded_error"}


def validate_switches(raw: Any) -> dict[str, Any]:
    """A full switch set from a partial one (missing or null = default); ValueError if it makes no sense."""
    if not isinstance(raw, dict):
        raise ValueError("the switches must be a JSON object")
    unknown = sorted(set(raw) - set(DEFAULT_SWITCHES))
    if unknown:
        raise ValueError(f"unknown switches: {', '.join(unknown)}")
    out = dict(DEFAULT_SWITCHES)
    for key, value in raw.items():
        if value is None:
            continue
        kind = _SWITCH_KINDS[key]  # bool is an int in Python, but not a valid delay or status
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise ValueError(f"{key} must be {'a number' if kind is _NUMBER else kind.__name__}")
        out[key] = value
    if out["status"] is not None and not 400 <= out["status"] <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    if out["times"] is not None and out["times"] < 1:
        raise ValueError("times must be at least 1 (or null for until reset)")
    if out["delay_ms"] < 0 or out["hang_s"] <= 0 or (out["retry_after"] or 0) < 0:
        raise ValueError("delay_ms and retry_after must not be negative, hang_s must be positive")
    return out


class _State:
    """Switches and request counts shared by all handler threads; one lock guards both."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # set by stop(): releases delayed and hung requests
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.switches = {p: dict(DEFAULT_SWITCHES) for p in PROVIDERS}
            self.counts = dict.fromkeys(PROVIDERS, 0)

    def set_fault(self, provider: str, switches: Any) -> None:
        new = validate_switches(switches)
        with self.lock:
            self.switches[provider] = new

    def take(self, provider: str) -> dict[str, Any]:
        """Count one request and return the switches that apply to it, consuming one of `times`."""
        with self.lock:
            self.counts[provider] += 1
            current = self.switches[provider]
            applied = dict(current)
            if current["times"] is not None:
                current["times"] -= 1
                if current["times"] <= 0:
                    self.switches[provider] = dict(DEFAULT_SWITCHES)
            return applied

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"faults": {p: dict(s) for p, s in self.switches.items()}, "requests": dict(self.counts)}


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts (OpenAI) / blocks (Anthropic) of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and (text := _text(message.get("content"))):
            return text
    return ""


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _id(prefix: str, digest: bytes, salt: str = "", length: int = 24) -> str:
    """A real-looking id from the request's hash: the same request always gets the same id."""
    return prefix + "".join(_B62[b % 62] for b in hashlib.sha256(digest + salt.encode()).digest()[:length])


def _reply(provider: str, model: str, last: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """Content, completion tokens, whether max_tokens cut it. The prefix says who answered (uncounted)."""
    reply = f"echo: {last}"
    truncated = max_tokens is not None and len(reply) > max_tokens * 4
    if truncated:
        reply = reply[: max_tokens * 4]
    return f"[{provider}:{model}] {reply}", _tokens(reply), truncated


def _problem(provider: str, body: Any) -> str | None:
    """Why the request gets a 400, or None: only the minimum the real APIs would refuse too."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages is required and must be a non-empty list"
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return "each message must be an object with a role"
    if body.get("stream"):
        return "streaming not supported by the local provider"
    if provider == "anthropic" and body.get("max_tokens") is None:
        return "max_tokens: Field required"
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"{name} must be a positive integer"
    return None


def _tool(body: dict[str, Any]) -> str | None:
    """The tool to call, for either API: only with tools, tool_choice not "none" and a new user turn last.

    An Anthropic user turn carrying tool results answers a tool call: it gets text, not another call.
    """
    tools, choice, last = body.get("tools") or [], body.get("tool_choice") or "auto", body["messages"][-1]
    blocks = last.get("content") if isinstance(last.get("content"), list) else []
    answers_call = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
    named = choice if isinstance(choice, dict) else {"type": choice}  # OpenAI's "auto"/"none"/"required"
    if not tools or named.get("type") == "none" or last.get("role") != "user" or answers_call:
        return None
    first = tools[0].get("name") or (tools[0].get("function") or {}).get("name")
    return named.get("name") or (named.get("function") or {}).get("name") or first or "tool"


def openai_answer(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion for a validated request, a pure function of (provider, request)."""
    digest = hashlib.sha256(json.dumps([provider, body], sort_keys=True).encode()).digest()
    model, messages = body["model"], body["messages"]
    last = _last_user_text(messages)
    prompt = _tokens("".join(_text(m.get("content")) for m in messages))
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if tool := _tool(body):
        arguments = json.dumps({"query": last})
        call = {"id": _id("call_", digest, "tool"), "type": "function"}
        message["tool_calls"] = [{**call, "function": {"name": tool, "arguments": arguments}}]
        finish, completion = "tool_calls", _tokens(tool + arguments)
    else:
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        message["content"], completion, truncated = _reply(provider, model, last, max_tokens)
        finish = "length" if truncated else "stop"
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "prompt_tokens_details": {"cached_tokens": 0}}
    if model == "deepseek-reasoner":
        message["reasoning_content"] = f"The user wrote {len(last)} characters; echo them back."
        reasoning = _tokens(message["reasoning_content"])
        usage["completion_tokens"] += reasoning
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    usage["total_tokens"] = prompt + usage["completion_tokens"]
    if provider == "deepseek":  # DeepSeek's own cache fields, next to OpenAI's
        usage.update(prompt_cache_hit_tokens=0, prompt_cache_miss_tokens=prompt)
    return {
        "id": _id("chatcmpl-", digest), "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage, "system_fingerprint": "fp_local",
    }


def anthropic_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages API `message` for a validated request, a pure function of the request."""
    digest = hashlib.sha256(json.dumps(["anthropic", body], sort_keys=True).encode()).digest()
    model, messages = body["model"], body["messages"]
    last = _last_user_text(messages)
    prompt = _tokens(_text(body.get("system")) + "".join(_text(m.get("content")) for m in messages))
    if tool := _tool(body):
        arguments = {"query": last}
        content = [{"type": "tool_use", "id": _id("toolu_01", digest, "tool", length=22), "name": tool,
                    "input": arguments}]
        stop, completion = "tool_use", _tokens(tool + json.dumps(arguments))
    else:
        text, completion, truncated = _reply("anthropic", model, last, body["max_tokens"])
        content = [{"type": "text", "text": text}]
        stop = "max_tokens" if truncated else "end_turn"
    usage = {"input_tokens": prompt, "output_tokens": completion,
             "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    return {
        "id": _id("msg_01", digest, length=22), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage,
    }


def error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    """An error in the provider's own shape, so SDKs and the gateway parse it as they would the real one."""
    if provider == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    default = ("server_error" if status >= 500 else "invalid_request_error", None)
    kind, code = _OPENAI_ERRORS.get(status, default)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _models(provider: str) -> dict[str, Any]:
    if provider == "anthropic":
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                for m in MODELS[provider]]
        return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    data = [{"id": m, "object": "model", "created": CREATED, "owned_by": provider} for m in MODELS[provider]]
    return {"object": "list", "data": data}


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms Nagle stall
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs; every answer carries Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(fmt, *args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""  # read first: keeps keep-alive in step
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/_control" or path.startswith("/_control/"):
            return self._control(path, body)
        for provider, base in BASE_PATHS.items():
            if path.startswith(base + "/"):
                if self._apply_fault(provider, self.server.state.take(provider)):
                    self._serve(provider, path[len(base) :], body)
                return None
        return self._json(404, {"error": {"message": f"no route {self.command} {path}", "type": "not_found"}})

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _apply_fault(self, provider: str, fault: dict[str, Any]) -> bool:
        """Act out the switches; True when the request should then be answered normally."""
        if fault["delay_ms"] and self.server.state.stopping.wait(fault["delay_ms"] / 1000):
            fault["drop"] = True  # stopping: give up on the answer
        if fault["hang"]:
            self._hang(fault["hang_s"])
            fault["drop"] = True
        if fault["drop"]:
            self.close_connection = True  # no status line at all: the client sees a dropped connection
            return False
        if fault["status"]:
            status, headers = fault["status"], {}
            if fault["retry_after"] is not None and status in (429, 503):
                headers["Retry-After"] = f"{fault['retry_after']:g}"
            message = f"forced HTTP {status} by the local provider"
            self._json(status, error_body(provider, status, message), headers)
            return False
        if fault["malformed"]:
            self._send(200, b'{"id": "malformed", "choices": [{"message": ', headers={})
            return False
        return True

    def _hang(self, limit_s: float) -> None:
        """Hold the request unanswered until the client leaves, `limit_s` passes or the server stops."""
        stopping, deadline = self.server.state.stopping, time.monotonic() + limit_s
        while not stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                readable, _, _ = select.select([self.connection], [], [], min(0.1, left))
                if readable:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end: free this thread now
                    stopping.wait(min(0.1, left))  # pipelined bytes: don't spin on them
            except OSError:
                return

    def _serve(self, provider: str, route: str, raw: bytes) -> None:
        scheme, _, bearer = self.headers.get("Authorization", "").partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        if provider == "anthropic":
            # Anthropic's API takes x-api-key; the anthropic SDK (2.x) sends its api_key as a Bearer token.
            if not (self.headers.get("x-api-key", "").strip() or bearer):
                return self._error(provider, 401, "missing API key: send an x-api-key header")
            models_route, answer_route = "/v1/models", "/v1/messages"
        else:
            if not bearer:
                return self._error(provider, 401, "missing API key: send an Authorization: Bearer header")
            models_route, answer_route = "/models", "/chat/completions"
        if self.command == "GET" and route == models_route:
            return self._json(200, _models(provider))
        if self.command != "POST" or route != answer_route:
            return self._error(provider, 404, f"no route {self.command} {route}")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return self._error(provider, 400, "the body is not valid JSON")
        if problem := _problem(provider, body):
            return self._error(provider, 400, problem)
        answer = anthropic_answer(body) if provider == "anthropic" else openai_answer(provider, body)
        return self._json(200, answer)

    def _control(self, path: str, raw: bytes) -> None:
        state, target = self.server.state, path.removeprefix("/_control").lstrip("/")
        if self.command == "GET" and not target:
            return self._json(200, state.snapshot())
        if self.command == "DELETE" and not target:
            state.reset()
            return self._json(200, state.snapshot())
        if self.command == "PUT" and target in PROVIDERS:
            try:
                state.set_fault(target, json.loads(raw or b"{}"))
            except ValueError as exc:
                return self._json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return self._json(200, state.snapshot())
        message = f"use GET or DELETE /_control, or PUT /_control/<{'|'.join(PROVIDERS)}>"
        return self._json(404, {"error": {"message": message, "type": "not_found"}})

    def _error(self, provider: str, status: int, message: str) -> None:
        self._json(status, error_body(provider, status, message))

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers or {})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # listen backlog for bursts of concurrent connections
    daemon_threads = True  # a hung or idle keep-alive handler must never keep the process alive

    def __init__(self, port: int, quiet: bool) -> None:
        self.state, self.quiet = _State(), quiet
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Shut every open connection, so idle keep-alive handlers wake and end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):  # a client that left: normal
            super().handle_error(request, client_address)


class LocalProvider:
    """The fake upstream on a free port in a background thread: `with LocalProvider() as p: ...`."""

    def __init__(self, port: int = 0, *, quiet: bool = True) -> None:
        self._port, self._quiet = port, quiet
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalProvider:
        if self._server is None:
            self._server = server = _Server(self._port, self._quiet)
            poll = {"poll_interval": 0.05}  # how soon shutdown() is noticed
            self._thread = threading.Thread(target=server.serve_forever, kwargs=poll, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly: hung and delayed requests are released, open connections shut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.state.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _live(self) -> _Server:
        if self._server is None:
            raise RuntimeError("the local provider is not running: start() it or use it in a with block")
        return self._server

    @property
    def port(self) -> int:
        return self._live.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, provider: str) -> str:
        """What to give the SDK as base_url for this provider."""
        return self.url + BASE_PATHS[_known(provider)]

    def set_fault(self, provider: str, **switches: Any) -> None:
        """Replace the provider's switches (see DEFAULT_SWITCHES); unnamed switches go back to default."""
        self._live.state.set_fault(_known(provider), switches)

    def reset(self) -> None:
        """Clear every switch and counter, as `DELETE /_control` does."""
        self._live.state.reset()

    def request_count(self, provider: str) -> int:
        return self._live.state.snapshot()["requests"][_known(provider)]

    def control(self) -> dict[str, Any]:
        """As `GET /_control`: {"faults": {provider: switches}, "requests": {provider: count}}.

        A fault's `times` counts down as requests use it; at zero its switches go back to default.
        """
        return self._live.state.snapshot()


def _known(provider: str) -> str:
    if provider not in BASE_PATHS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    return provider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake DeepSeek, OpenAI and Anthropic APIs on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on (0 picks a free one)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or the local cloud stopping it
        signal.signal(signum, lambda *_: done.set())
    with LocalProvider(args.port, quiet=args.quiet) as provider:
        for name in PROVIDERS:
            print(f"{name:<10}{provider.base_url(name)}", flush=True)
        print(f"{'control':<10}{provider.url}/_control   (Ctrl-C to stop)", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
