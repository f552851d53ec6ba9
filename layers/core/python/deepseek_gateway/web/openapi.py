"""The api function's OpenAPI 3.1 document: schemas from the pydantic models, operations from a table.

Built once per process on the first request for it (never at import), and served without
authentication at GET /openapi.json and GET /v1/openapi.json. A route added to the resolver without
a row in OPERATIONS fails tests/unit/test_openapi.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from deepseek_gateway.batches.models import Batch, BatchCreate, BatchPage
from deepseek_gateway.catalogue import Capabilities, load_catalogue
from deepseek_gateway.files.models import (
    FileDeleted,
    FileObject,
    FilePage,
    FileUploadForm,
    PresignedUpload,
    UploadCreate,
)
from deepseek_gateway.limits.usage import UsageTotals
from deepseek_gateway.models.chat import ChatCompletion, ChatCompletionRequest
from deepseek_gateway.policy.models import TenantPolicy
from deepseek_gateway.tenancy.models import ApiKey, CreatedKey, KeyCreate, Tenant, TenantCreate, TenantUpdate

REF_TEMPLATE = "#/components/schemas/{model}"
BEARER = "bearer"


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="e.g. invalid_request_error, authentication_error, rate_limit_error, api_error")
    param: str | None = Field(description="The request field at fault, when there is one")
    code: str | None = Field(description="Machine-readable reason, e.g. `model_not_found`, `unrecognized_argument`")


class Error(BaseModel):
    """Every error the gateway answers, whatever its status; never a stack trace."""

    error: ErrorDetail


class Pricing(BaseModel):
    currency: Literal["USD"]
    unit: Literal["per_million_tokens"]
    input: float
    cached_input: float
    output: float


class Model(BaseModel):
    """A catalogue entry in OpenAI's model shape, with the gateway's extras."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str = Field(description="The provider serving the model: deepseek, openai or anthropic")
    aliases: list[str]
    context_window: int
    max_output_tokens: int
    capabilities: Capabilities
    pricing: Pricing
    fallbacks: list[str] = Field(description="The models tried, in order, when this one's provider fails")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    scopes: tuple[str, ...] | None  # None: public; (): any valid credential; else the scope needed
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None  # None: any JSON object (this document)
    is_list: bool = False
    errors: tuple[int, ...] = ()
    completion: bool = False  # text/event-stream alternative and the x-gateway-* headers
    request_media: str = "application/json"  # multipart/form-data for uploads
    binary_response: bool = False  # raw bytes (application/octet-stream) instead of JSON
    anthropic: bool = False  # Anthropic's Messages API: its event stream and its error shape


_CHAT_DESCRIPTION = """OpenAI chat completions, routed to DeepSeek with OpenAI and Anthropic as fallbacks.

**Unknown top-level fields are refused** with 400 `unrecognized_argument`, `param` naming the field (as
OpenAI does), except the provider-specific extensions the catalogue declares for the requested model
(e.g. `thinking` for DeepSeek and Claude), which are passed to the provider as sent. A `tenant_id` or
similar in a body is never trusted: the caller comes only from the credential.

**Streaming**: `stream: true` answers `text/event-stream` with `chat.completion.chunk` events ending in
`data: [DONE]` (plus a usage chunk when `stream_options.include_usage`); it is built from the completed
answer, so the first byte arrives when the answer is complete.

**Response headers**: `x-request-id`; `x-gateway-provider`, `x-gateway-model` (the model that answered),
`x-gateway-fallbacks`, `x-gateway-attempts` and `x-gateway-cost-usd` (from the provider's reported usage
and the catalogue's prices)."""

_USAGE_QUERY = ("Totals per day (`?granularity=day`, the default; `start`/`end` as YYYY-MM-DD) or per month "
                "(`?granularity=month`, YYYY-MM): requests, errors, prompt / cached / completion tokens, cost in "
                "USD, fallbacks, cache hits. `?key_id=` narrows to one key.")
_POLICY_DESCRIPTION = ("Cedar policies (validated against the gateway's schema when written: a bad policy is a 400 "
                       "`invalid_policy`) deciding before any provider call whether a request may use a model: "
                       "principal `Key`/`User` in `Tenant`, action `complete`, resource `Model` (attribute "
                       "`provider`), context `model`, `provider`, `max_tokens`, `input_tokens`, `tools`, "
                       "`json_mode`, `vision`, `stream`, `fallback`. Any `forbid` wins; the global default "
                       "permits. Give each policy an `@id(\"...\")`: a denial names it. Settings: "
                       "`store_prompts`, `retention_days`, `safety`.")
_ADMIN_ERRORS = (400, 401, 403, 404, 413, 429, 500)
_FILES = ("files",)
_FILE_ERRORS = (400, 401, 403, 404, 429, 500)
_FILE_UPLOAD = ("Upload a file for the Batch API: multipart/form-data with `file` (UTF-8 JSON Lines, one JSON object "
                "per line; each line's fields are checked when a batch is created) and `purpose` (only `batch`). "
                "Up to `max_file_bytes` (4 MiB by default: requests pass through API Gateway, 10 MB at most, and "
                "Lambda, 6 MB at most, base64-encoded); larger files: `POST /v1/files/uploads`. A file that is not "
                "UTF-8, empty or not JSON Lines is a 400 `invalid_file_format`; too large, 413 `file_too_large`.")
_PRESIGNED = ("A presigned S3 PUT URL (15 minutes) for a file up to `max_presigned_bytes` (512 MiB by default). PUT "
              "exactly `bytes` bytes to `upload_url` with every header in `upload_headers` as given (they are signed: "
              "`x-amz-server-side-encryption`, `Content-Length`, `If-None-Match`). The file is `pending_upload` "
              "until the object arrives; `GET /v1/files/{file_id}` then reports `processed`.")
_BATCH = ("batch",)
_BATCH_ERRORS = (400, 401, 403, 404, 429, 500)
_BATCH_CREATE = ("Create a batch of chat completions from an uploaded file (purpose `batch`, status `processed`; "
                 "another tenant's file is a 404 like an unknown one, a pending presigned upload a 409 "
                 "`file_not_ready`). Each line of the file is `{\"custom_id\", \"method\": \"POST\", \"url\": "
                 "\"/v1/chat/completions\", \"body\": {chat completion request}}`. The batch starts `validating`: "
                 "its lines are checked asynchronously, exactly as `POST /v1/chat/completions` checks a body, and a "
                 "line that fails goes to the error file; a file with no valid line (empty, not UTF-8, over the "
                 "size or line limits) makes the batch `failed` with `errors`. Then `in_progress` until every line "
                 "is answered, `finalizing`, `completed` with `output_file_id` and `error_file_id`.")
_ADMIN = ("admin",)
OPERATIONS: tuple[Op, ...] = (
    Op("POST", "/v1/chat/completions", "create_chat_completion", "chat", "Create a chat completion",
       _CHAT_DESCRIPTION, ("chat",), request=ChatCompletionRequest, response=ChatCompletion,
       errors=(400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504), completion=True),
    Op("GET", "/v1/models", "list_models", "models", "List models",
       "Every public model with aliases, context window, capabilities, prices and fallbacks.", (),
       response=Model, is_list=True, errors=(401, 429, 500)),
    Op("GET", "/v1/models/{model}", "get_model", "models", "Retrieve a model",
       "One model; an alias resolves to its model.", (), response=Model, errors=(401, 404, 429, 500)),
    Op("POST", "/admin/tenants", "create_tenant", "admin", "Create a tenant", "409 when the tenant exists.",
       _ADMIN, 201, TenantCreate, Tenant, errors=(*_ADMIN_ERRORS, 409)),
    Op("GET", "/admin/tenants", "list_tenants", "admin", "List tenants", "Every tenant.", _ADMIN,
       response=Tenant, is_list=True, errors=_ADMIN_ERRORS),
    Op("GET", "/admin/tenants/{tenant_id}", "get_tenant", "admin", "Retrieve a tenant", "One tenant.", _ADMIN,
       response=Tenant, errors=_ADMIN_ERRORS),
    Op("PATCH", "/admin/tenants/{tenant_id}", "update_tenant", "admin", "Update a tenant",
       "Changes the fields given; `status: disabled` refuses the tenant's requests.", _ADMIN,
       request=TenantUpdate, response=Tenant, errors=_ADMIN_ERRORS),
    Op("DELETE", "/admin/tenants/{tenant_id}", "disable_tenant", "admin", "Disable a tenant",
       "Disables the tenant (its records, usage and keys are kept) and refuses its requests from then on.",
       _ADMIN, response=Tenant, errors=_ADMIN_ERRORS),
    Op("POST", "/admin/tenants/{tenant_id}/keys", "create_key", "admin", "Create an API key",
       "The answer carries the key's secret (`dsg_<16 chars>_<44 chars>`); it is never shown again.", _ADMIN,
       201, KeyCreate, CreatedKey, errors=_ADMIN_ERRORS),
    Op("GET", "/admin/tenants/{tenant_id}/keys", "list_keys", "admin", "List a tenant's API keys",
       "The tenant's keys, without their secrets.", _ADMIN, response=ApiKey, is_list=True, errors=_ADMIN_ERRORS),
    Op("DELETE", "/admin/tenants/{tenant_id}/keys/{key_id}", "revoke_key", "admin", "Revoke an API key",
       "Revokes the key: it is refused from then on; its record is kept.", _ADMIN, response=ApiKey,
       errors=_ADMIN_ERRORS),
    Op("GET", "/v1/usage", "own_usage", "usage", "Your usage and cost",
       _USAGE_QUERY + " Only the caller's own tenant; a `key_id` of another tenant is 404.", (),
       response=UsageTotals, is_list=True, errors=(400, 401, 404, 429, 500)),
    Op("GET", "/admin/tenants/{tenant_id}/usage", "tenant_usage", "admin", "A tenant's usage and cost",
       _USAGE_QUERY, _ADMIN, response=UsageTotals, is_list=True, errors=_ADMIN_ERRORS),
    Op("GET", "/admin/usage", "usage_for_operators", "admin", "Any tenant's usage and cost",
       "`?tenant_id=` names the tenant. " + _USAGE_QUERY, _ADMIN, response=UsageTotals, is_list=True,
       errors=_ADMIN_ERRORS),
    Op("GET", "/admin/tenants/{tenant_id}/policy", "get_policy", "admin", "A tenant's policy",
       "The tenant's Cedar policies and settings (`custom: false` when it has the global defaults).", _ADMIN,
       response=TenantPolicy, errors=_ADMIN_ERRORS),
    Op("PUT", "/admin/tenants/{tenant_id}/policy", "put_policy", "admin", "Write a tenant's policy",
       _POLICY_DESCRIPTION, _ADMIN, request=TenantPolicy, response=TenantPolicy, errors=_ADMIN_ERRORS),
    Op("DELETE", "/admin/tenants/{tenant_id}/policy", "delete_policy", "admin", "Reset a tenant's policy",
       "Back to the global defaults.", _ADMIN, response=TenantPolicy, errors=_ADMIN_ERRORS),
    Op("POST", "/v1/files", "create_file", "files", "Upload a file", _FILE_UPLOAD, _FILES,
       request=FileUploadForm, response=FileObject, errors=(*_FILE_ERRORS, 413), request_media="multipart/form-data"),
    Op("POST", "/v1/files/uploads", "create_upload", "files", "Start a presigned upload", _PRESIGNED, _FILES,
       request=UploadCreate, response=PresignedUpload, errors=(*_FILE_ERRORS, 413)),
    Op("GET", "/v1/files", "list_files", "files", "List files",
       "The tenant's files, newest first: `purpose` filters, `limit` (1-10000, default 10000), `order` (`asc` or "
       "`desc`) and `after` (the last id of the previous page) page through them.", _FILES, response=FilePage,
       errors=_FILE_ERRORS),
    Op("GET", "/v1/files/{file_id}", "retrieve_file", "files", "Retrieve a file",
       "The file object; a presigned upload turns from `pending_upload` to `processed` once its object exists. "
       "Another tenant's file is a 404, like an unknown one.", _FILES, response=FileObject, errors=_FILE_ERRORS),
    Op("GET", "/v1/files/{file_id}/content", "download_file", "files", "Retrieve a file's content",
       "The file's bytes. Above `max_inline_content_bytes` (4 MiB by default) the answer is a 302 to a presigned S3 "
       "GET URL (5 minutes), which the OpenAI SDK follows. 409 `file_not_ready` while a presigned upload has not "
       "arrived.", _FILES, errors=(*_FILE_ERRORS, 409), binary_response=True),
    Op("DELETE", "/v1/files/{file_id}", "delete_file", "files", "Delete a file",
       "Deletes the object (every version) and its record.", _FILES, response=FileDeleted, errors=_FILE_ERRORS),
    Op("POST", "/v1/batches", "create_batch", "batches", "Create a batch", _BATCH_CREATE, _BATCH,
       request=BatchCreate, response=Batch, errors=(*_BATCH_ERRORS, 409, 413)),
    Op("GET", "/v1/batches", "list_batches", "batches", "List batches",
       "The tenant's batches, newest first: `limit` (1-100, default 20) and `after` (the last id of the previous "
       "page) page through them.", _BATCH, response=BatchPage, errors=_BATCH_ERRORS),
    Op("GET", "/v1/batches/{batch_id}", "retrieve_batch", "batches", "Retrieve a batch",
       "The batch object with its status and request counts. Another tenant's batch is a 404, like an unknown one.",
       _BATCH, response=Batch, errors=_BATCH_ERRORS),
    Op("POST", "/v1/batches/{batch_id}/cancel", "cancel_batch", "batches", "Cancel a batch",
       "Moves a `validating` or `in_progress` batch to `cancelling`: no new line is sent to a provider, lines "
       "in flight finish, and the batch becomes `cancelled` with what was answered in its output file and "
       "`batch_cancelled` errors for the rest. A batch already finishing or finished is a 400 "
       "`batch_not_cancellable`; cancelling twice answers the batch unchanged.", _BATCH, response=Batch,
       errors=_BATCH_ERRORS),
    Op("GET", "/openapi.json", "get_openapi", "meta", "This OpenAPI document", "The API's OpenAPI 3.1 description.",
       None, errors=(500,)),
    Op("GET", "/v1/openapi.json", "get_openapi_v1", "meta", "This OpenAPI document",
       "The same document, on the path API Gateway forwards. The gateway checks no credential here; deployed, "
       "API Gateway's authorizer on `/v1/*` still asks for a valid one.", None, errors=(500,)),
)

_MESSAGES_DESCRIPTION = (
    "Anthropic's Messages API, for the anthropic SDK (`Anthropic(base_url=<gateway>, auth_token=<key>)`): the "
    "request is translated into a chat completion and runs through the same policy, limits, safety, routing, "
    "fallbacks and usage as `POST /v1/chat/completions`, whatever the model's provider; the answer comes back as "
    "a Message (text, tool_use and thinking blocks, `stop_reason`, `usage`) and errors in Anthropic's shape "
    "`{\"type\": \"error\", \"error\": {\"type\", \"message\"}}`. `top_k` is accepted and not sent; `document` "
    "blocks are refused.")


def _operations() -> tuple[Op, ...]:
    """OPERATIONS and the Messages API's, whose models are imported when the document is built, not at start."""
    from deepseek_gateway.messages_api.models import MessagesRequest

    return (*OPERATIONS, Op("POST", "/v1/messages", "create_message", "chat", "Create a message (Anthropic)",
                            _MESSAGES_DESCRIPTION, ("chat",), request=MessagesRequest,
                            errors=(400, 401, 403, 404, 413, 429, 500, 502, 503, 504), anthropic=True))


class _AnthropicErrorDetail(BaseModel):
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, not_found_error, "
                                  "request_too_large, rate_limit_error, api_error or overloaded_error")
    message: str


class AnthropicError(BaseModel):
    """An error on the Messages API, in the shape the anthropic SDK reads."""

    type: Literal["error"]
    error: _AnthropicErrorDetail


_ERRORS = {
    400: "Invalid request: unreadable JSON, a field failing validation or an unknown top-level field",
    401: "No credential, or one that is unknown, expired or revoked",
    403: "The credential lacks the scope this route needs",
    404: "Unknown model (`model_not_found`), tenant, key, file (`file_not_found`), batch (`batch_not_found`) or URL",
    409: "The resource already exists, or is not ready (a file whose upload has not arrived)",
    413: "The body is larger than the limit",
    422: "A provider refused the request itself (`upstream_invalid_request`); never retried",
    429: "Rate limited",
    500: "Unexpected error",
    502: "Every provider in the chain failed (`upstream_error`, `upstream_auth_error`)",
    503: "No provider could be tried: every breaker open, or none configured",
    504: "The request deadline passed",
}
_HEADERS = {
    "x-request-id": "The request id (also in the gateway's logs)",
    "x-gateway-provider": "The provider that answered: deepseek, openai or anthropic",
    "x-gateway-model": "The model that answered (a fallback's id when the chain moved on)",
    "x-gateway-fallbacks": "How many models down the fallback chain the answer came from",
    "x-gateway-attempts": "Provider calls made, retries included",
    "x-gateway-cost-usd": "The answer's cost in USD, from the provider's usage and the catalogue's prices",
}
_PARAMETERS = {
    "model": "A model id or alias, e.g. `deepseek-chat`",
    "tenant_id": "The tenant's id (1-64 letters, digits, '-' or '_')",
    "key_id": "The API key's id (its 16 characters after `dsg_`)",
    "file_id": "The file's id (`file-` and 24 base62 characters)",
    "batch_id": "The batch's id (`batch_` and 24 base62 characters)",
}


def _header_refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _schemas() -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    wanted = {(op.request, "validation") for op in _operations() if op.request}
    wanted |= {(op.response, "serialization") for op in _operations() if op.response} | {(Error, "serialization")}
    wanted |= {(AnthropicError, "serialization")}
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, top = models_json_schema(ordered, ref_template=REF_TEMPLATE)
    schemas = top["$defs"]
    # `extensions` is filled by the gateway, never sent; the catalogue's extensions are sent at top level.
    request = schemas[refs[(ChatCompletionRequest, "validation")]["$ref"].rsplit("/", 1)[1]]
    request["properties"].pop("extensions", None)
    declared: dict[str, list[str]] = {}
    for entry in load_catalogue().models:
        for name in entry.extensions:
            declared.setdefault(name, []).append(entry.id)
    for name, models in sorted(declared.items()):
        request["properties"][name] = {
            "description": f"Provider extension, accepted only for {', '.join(models)} (and their aliases); "
                           "passed to the provider as sent."
        }
    return refs, schemas


def _operation(op: Op, refs: dict[tuple[type[BaseModel], str], dict[str, Any]]) -> dict[str, Any]:
    if op.scopes is None:
        auth = "No authentication."
    elif op.scopes:
        auth = f"Requires a credential with the `{'`, `'.join(op.scopes)}` scope."
    else:
        auth = "Requires any valid credential (API key or OIDC token); no particular scope."
    schema = refs[(op.response, "serialization")] if op.response else {"type": "object"}
    if op.is_list:
        schema = {"type": "object", "required": ["object", "data"],
                  "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": schema}}}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if op.binary_response:
        content = {media: {"schema": {"type": "string", "format": "binary"}}
                   for media in ("application/octet-stream",)}
    headers = _header_refs("x-request-id")
    if op.completion:
        content["text/event-stream"] = {"schema": {
            "type": "string", "description": "With `stream: true`: `data: {chat.completion.chunk}` events, "
                                             "then `data: [DONE]`"}}
        headers = _header_refs(*_HEADERS)
    if op.anthropic:
        content["text/event-stream"] = {"schema": {
            "type": "string", "description": "With `stream: true`: Anthropic's events — message_start, "
                                             "content_block_start / _delta / _stop, message_delta, message_stop"}}
        headers = _header_refs(*_HEADERS)
    responses: dict[str, Any] = {str(op.status): {"description": "OK" if op.status == 200 else "Created",
                                                  "headers": headers, "content": content}}
    prefix = "A" if op.anthropic else "E"
    responses |= {str(status): {"$ref": f"#/components/responses/{prefix}{status}"} for status in sorted(op.errors)}
    operation: dict[str, Any] = {
        "operationId": op.operation_id, "tags": [op.tag], "summary": op.summary,
        "description": f"{op.description}\n\n{auth}", "responses": responses,
        "security": [] if op.scopes is None else [{BEARER: list(op.scopes)}],
    }
    if names := re.findall(r"\{(\w+)\}", op.path):
        operation["parameters"] = [{"name": name, "in": "path", "required": True, "description": _PARAMETERS[name],
                                    "schema": {"type": "string"}} for name in names]
    if op.request:
        operation["requestBody"] = {"required": True, "content": {
            op.request_media: {"schema": refs[(op.request, "validation")]}}}
    return operation


@cache
def openapi_document() -> dict[str, Any]:
    """The document, built on first use and shared for the life of the process (do not mutate it)."""
    refs, schemas = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in _operations():
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    error = refs[(Error, "serialization")]
    anthropic_error = refs[(AnthropicError, "serialization")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "DeepSeek Gateway", "version": "v1",
                 "description": "OpenAI-compatible AI gateway: DeepSeek first, OpenAI and Anthropic as fallbacks. "
                                "Every error is `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`."},
        "tags": [{"name": "chat", "description": "Chat completions (scope `chat`)"},
                 {"name": "models", "description": "The model catalogue"},
                 {"name": "files", "description": "Batch input files (scope `files`)"},
                 {"name": "batches", "description": "Batches of chat completions (scope `batch`)"},
                 {"name": "admin", "description": "Tenants and API keys (scope `admin`)"},
                 {"name": "meta", "description": "This document"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {f"E{status}": {"description": text, "headers": _header_refs("x-request-id"),
                                         "content": {"application/json": {"schema": error}}}
                          for status, text in _ERRORS.items()}
                         | {f"A{status}": {"description": text, "headers": _header_refs("x-request-id"),
                                           "content": {"application/json": {"schema": anthropic_error}}}
                            for status, text in _ERRORS.items()},
            "headers": {name: {"description": text, "schema": {"type": "string"}} for name, text in _HEADERS.items()},
            "securitySchemes": {BEARER: {
                "type": "http", "scheme": "bearer", "bearerFormat": "API key or OIDC JWT",
                "description": "`Authorization: Bearer <key>` with a gateway API key (`dsg_<16 chars>_<44 chars>`) "
                               "or an OIDC access token; the scope listed on each operation is required.",
            }},
        },
    }


@cache
def openapi_json() -> str:
    return json.dumps(openapi_document(), separators=(",", ":"), ensure_ascii=False)
