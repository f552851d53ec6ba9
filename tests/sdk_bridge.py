"""Lets the real OpenAI SDK call the api function in-process: httpx request → REST proxy event → handler."""

from __future__ import annotations

import httpx
from deepseek_gateway.auth.principal import Principal

from tests.helpers import TEST_PRINCIPAL, FakeLambdaContext, api_event


def handler_transport(handler, principal: Principal | None = TEST_PRINCIPAL) -> httpx.MockTransport:
    """`principal`: whom the authorizer's context names (None: no context, as no deployed route sees)."""

    def send(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        headers = {k.title(): v for k, v in request.headers.items()}
        event = api_event(request.method, path, headers=headers, raw_body=request.content.decode() or None,
                          principal=principal)
        if request.url.query:
            event["queryStringParameters"] = dict(httpx.QueryParams(request.url.query))
        result = handler.lambda_handler(event, FakeLambdaContext())
        out_headers = dict(result.get("headers") or {})
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = values[-1]
        return httpx.Response(result["statusCode"], headers=out_headers, content=result.get("body") or "")

    return httpx.MockTransport(send)


def openai_client(handler, api_key: str = "sk-test"):
    from openai import OpenAI

    return OpenAI(
        api_key=api_key,
        base_url="https://gateway.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=handler_transport(handler)),
    )


def anthropic_client(handler, api_key: str = "sk-test", principal: Principal | None = TEST_PRINCIPAL):
    """The real Anthropic SDK against the api function; it appends /v1/messages to the base URL itself.

    anthropic 2.x refuses `httpx` objects (it is built on `httpx2`), so its client gets an `httpx2`
    transport that hands each request to `handler_transport` and passes the answer back unchanged.
    """
    import httpx2
    from anthropic import Anthropic

    bridge = handler_transport(handler, principal)

    def send(request: httpx2.Request) -> httpx2.Response:
        answer = bridge.handle_request(
            httpx.Request(request.method, str(request.url), headers=list(request.headers.items()),
                          content=request.read())
        )
        return httpx2.Response(answer.status_code, headers=list(answer.headers.items()), content=answer.read())

    return Anthropic(
        api_key=api_key,
        base_url="https://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(send)),
    )
