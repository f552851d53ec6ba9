"""The admin API (`admin` scope): tenants and their keys. Operators drive it with `dsg-admin`."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.observability import logger
from deepseek_gateway.policy.engine import validate
from deepseek_gateway.policy.models import TenantPolicy
from deepseek_gateway.tenancy.models import KeyCreate, TenantCreate, TenantUpdate
from deepseek_gateway.validation import parse_model
from deepseek_gateway.web.auth import require
from deepseek_gateway.web.body import read_json_body, request_text
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services
from deepseek_gateway.web.usage_query import usage_totals

router = Router()

# Admin bodies are small; this keeps a mistaken upload from being parsed.
ADMIN_BODY_LIMIT = 64 * 1024


def _body() -> object:
    return read_json_body(request_text(router.current_event), ADMIN_BODY_LIMIT)


def _operator() -> str:
    return require(router, "admin").principal_id


@router.post("/tenants")
def create_tenant() -> Response:
    operator = _operator()
    tenant = get_services().tenants.create_tenant(parse_model(TenantCreate, _body()))
    logger.info("tenant created", extra={"tenant_id": tenant.tenant_id, "by": operator})
    return json_response(201, tenant.model_dump(mode="json"))


@router.get("/tenants")
def list_tenants() -> Response:
    _operator()
    tenants = get_services().tenants.list_tenants()
    return json_response(200, {"object": "list", "data": [t.model_dump(mode="json") for t in tenants]})


@router.get("/tenants/<tenant_id>")
def get_tenant(tenant_id: str) -> Response:
    _operator()
    return json_response(200, get_services().tenants.require_tenant(tenant_id).model_dump(mode="json"))


@router.patch("/tenants/<tenant_id>")
def update_tenant(tenant_id: str) -> Response:
    operator = _operator()
    tenant = get_services().tenants.update_tenant(tenant_id, parse_model(TenantUpdate, _body()))
    logger.info("tenant updated", extra={"tenant_id": tenant_id, "by": operator, "status": tenant.status})
    return json_response(200, tenant.model_dump(mode="json"))


@router.delete("/tenants/<tenant_id>")
def disable_tenant(tenant_id: str) -> Response:
    """Disabling keeps the tenant's records (usage, keys) and refuses its requests from then on."""
    operator = _operator()
    tenant = get_services().tenants.update_tenant(tenant_id, TenantUpdate(status="disabled"))
    logger.info("tenant disabled", extra={"tenant_id": tenant_id, "by": operator})
    return json_response(200, tenant.model_dump(mode="json"))


@router.post("/tenants/<tenant_id>/keys")
def create_key(tenant_id: str) -> Response:
    operator = _operator()
    created = get_services().tenants.create_key(tenant_id, parse_model(KeyCreate, _body()))
    logger.info("api key created", extra={"tenant_id": tenant_id, "key_id": created.key_id, "by": operator})
    return json_response(201, created.model_dump(mode="json"))


@router.get("/tenants/<tenant_id>/keys")
def list_keys(tenant_id: str) -> Response:
    _operator()
    store = get_services().tenants
    store.require_tenant(tenant_id)
    keys = [k.model_dump(mode="json") for k in store.list_keys(tenant_id)]
    return json_response(200, {"object": "list", "data": keys})


@router.delete("/tenants/<tenant_id>/keys/<key_id>")
def revoke_key(tenant_id: str, key_id: str) -> Response:
    operator = _operator()
    revoked = get_services().tenants.revoke_key(tenant_id, key_id)
    logger.info("api key revoked", extra={"tenant_id": tenant_id, "key_id": key_id, "by": operator})
    return json_response(200, revoked.model_dump(mode="json"))


@router.get("/tenants/<tenant_id>/policy")
def get_policy(tenant_id: str) -> Response:
    _operator()
    store = get_services().tenants
    store.require_tenant(tenant_id)
    policy = store.get_policy(tenant_id)
    return json_response(200, {"tenant_id": tenant_id, "custom": policy is not None,
                               **(policy or TenantPolicy()).model_dump(mode="json")})


@router.put("/tenants/<tenant_id>/policy")
def put_policy(tenant_id: str) -> Response:
    """A policy is validated against the gateway's Cedar schema here, so a bad one never reaches a request."""
    operator = _operator()
    policy = parse_model(TenantPolicy, _body())
    validate(policy.cedar)
    get_services().tenants.put_policy(tenant_id, policy)
    logger.info("tenant policy written", extra={"tenant_id": tenant_id, "by": operator})
    return json_response(200, {"tenant_id": tenant_id, "custom": True, **policy.model_dump(mode="json")})


@router.delete("/tenants/<tenant_id>/policy")
def delete_policy(tenant_id: str) -> Response:
    operator = _operator()
    get_services().tenants.delete_policy(tenant_id)
    logger.info("tenant policy reset to defaults", extra={"tenant_id": tenant_id, "by": operator})
    return json_response(200, {"tenant_id": tenant_id, "custom": False, **TenantPolicy().model_dump(mode="json")})


@router.get("/tenants/<tenant_id>/usage")
def tenant_usage(tenant_id: str) -> Response:
    _operator()
    services = get_services()
    services.tenants.require_tenant(tenant_id)
    query = dict(router.current_event.query_string_parameters or {})
    return json_response(200, usage_totals(services.usage, services.tenants, tenant_id, query))


@router.get("/usage")
def usage_for_operators() -> Response:
    """`/admin/usage?tenant_id=...`: the same totals as /v1/usage, for any tenant."""
    _operator()
    query = dict(router.current_event.query_string_parameters or {})
    tenant_id = query.pop("tenant_id", None)
    if not tenant_id:
        raise InvalidRequestError("Name the tenant with ?tenant_id=.", param="tenant_id")
    services = get_services()
    services.tenants.require_tenant(tenant_id)
    return json_response(200, usage_totals(services.usage, services.tenants, tenant_id, query))
