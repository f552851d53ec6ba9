"""Lets the real OpenAI SDK call the api function in-process: httpx request → REST proxy event → handler."""

from __future__ import annotations

import httpx

from tests.helpers import FakeLambdaContext, api_event


def handler_transport(handler) -> httpx.MockTransport:
    def send(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        headers = {k.title(): v for k, v in request.headers.items()}
        event = api_event(request.method, path, headers=headers, raw_body=request.content.decode() or None)
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
