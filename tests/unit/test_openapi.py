"""The OpenAPI document: valid 3.1, complete against the resolver's routes, served without a credential."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from deepseek_gateway.web.app import app
from deepseek_gateway.web.openapi import openapi_document
from openapi_spec_validator import validate

from tests.helpers import ROOT, FakeLambdaContext, api_event, load_handler

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def operation(document, method, path):
    return document["paths"][path][method.lower()]


def resolve(document, node):
    while "$ref" in node:
        _, section, name = node["$ref"].removeprefix("#/").split("/")
        node = document["components"][section][name]
    return node


def body_schema_ref(document, method, path):
    return operation(document, method, path)["requestBody"]["content"]["application/json"]["schema"]["$ref"]


def test_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_route_the_resolver_serves_is_documented_and_nothing_more(document):
    served = {
        (route.method.upper(), re.sub(r"<(\w+)>", r"{\1}", route.path))
        for route in app._static_routes + app._dynamic_routes
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert served == documented


def test_request_bodies_reference_the_pydantic_models(document):
    assert body_schema_ref(document, "POST", "/v1/chat/completions") == "#/components/schemas/ChatCompletionRequest"
    assert body_schema_ref(document, "POST", "/admin/tenants") == "#/components/schemas/TenantCreate"
    assert body_schema_ref(document, "PATCH", "/admin/tenants/{tenant_id}") == "#/components/schemas/TenantUpdate"
    assert body_schema_ref(document, "POST", "/admin/tenants/{tenant_id}/keys") == "#/components/schemas/KeyCreate"
    schemas = document["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "TenantCreate", "Tenant", "CreatedKey"} <= set(schemas)


def test_every_error_response_carries_the_openai_error_schema_and_the_messages_api_anthropic_s(document):
    error = resolve(document, {"$ref": "#/components/schemas/Error"})
    assert set(resolve(document, error["properties"]["error"])["properties"]) == {"message", "type", "param", "code"}
    anthropic = resolve(document, {"$ref": "#/components/schemas/AnthropicError"})
    assert set(resolve(document, anthropic["properties"]["error"])["properties"]) == {"type", "message"}
    for method, path, op in operations(document):
        statuses = {int(status) for status in op["responses"]}
        assert 500 in statuses, (method, path)
        shape = "AnthropicError" if path == "/v1/messages" else "Error"
        for status in statuses - {200, 201}:
            response = resolve(document, op["responses"][str(status)])
            assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{shape}"}
            assert status >= 400


def test_secured_operations_name_their_scope_and_the_document_itself_is_public(document):
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, op in operations(document):
        if path.endswith("openapi.json"):
            assert op["security"] == []
            continue
        assert "401" in op["responses"], (method, path)
        scope = {"chat": ["chat"], "admin": ["admin"], "models": [], "usage": [], "files": ["files"],
                 "batches": ["batch"]}[op["tags"][0]]
        assert op["security"] == [{"bearer": scope}], (method, path)
        for name in scope:
            assert f"`{name}` scope" in op["description"]
            assert "403" in op["responses"]


def test_chat_completion_documents_streaming_extensions_and_gateway_headers(document):
    op = operation(document, "POST", "/v1/chat/completions")
    ok = op["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    assert "text/event-stream" in ok["content"]
    assert {"x-request-id", "x-gateway-provider", "x-gateway-model", "x-gateway-fallbacks", "x-gateway-attempts",
            "x-gateway-cost-usd"} <= set(ok["headers"])
    assert "Unknown top-level fields are refused" in op["description"]
    request = document["components"]["schemas"]["ChatCompletionRequest"]
    assert request["additionalProperties"] is False
    assert "thinking" in request["properties"]  # a catalogue extension, sent at top level
    assert "extensions" not in request["properties"]  # the gateway's internal holder, never accepted


def test_list_answers_are_openai_list_objects(document):
    schema = operation(document, "GET", "/admin/tenants")["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["object"] == {"const": "list"}
    assert schema["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Tenant"}


@pytest.mark.parametrize("path", ["/openapi.json", "/v1/openapi.json"])
def test_document_is_served_through_the_handler_without_a_credential(path, document):
    api = load_handler("api")
    response = api.lambda_handler(api_event("GET", path, principal=None), FakeLambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = values[-1]
    assert response["statusCode"] == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert json.loads(response["body"]) == document


@pytest.fixture(scope="module")
def fresh_process():
    """A new interpreter: what importing the app costs, and what building the document imports."""
    script = (
        "import json, sys; import deepseek_gateway.web.app; import deepseek_gateway.web.openapi as o; "
        "built_at_import = o.openapi_document.cache_info().currsize; "
        "first = o.openapi_document(); "
        "print(json.dumps({'built_at_import': built_at_import, 'same': o.openapi_document() is first, "
        "'openai': 'openai' in sys.modules, 'anthropic': 'anthropic' in sys.modules}))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_document_is_built_lazily_and_once_per_process(fresh_process):
    assert fresh_process["built_at_import"] == 0
    assert fresh_process["same"] is True


def test_building_the_document_imports_no_provider_sdk(fresh_process):
    assert fresh_process["openai"] is False
    assert fresh_process["anthropic"] is False
