"""GET /v1/usage: the calling tenant's own usage and cost, per day or month, optionally per key."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.web.auth import caller
from deepseek_gateway.web.responses import json_response
from deepseek_gateway.web.services import get_services
from deepseek_gateway.web.usage_query import usage_totals

router = Router()


@router.get("/usage")
def own_usage() -> Response:
    principal = caller(router)
    services = get_services()
    query = dict(router.current_event.query_string_parameters or {})
    return json_response(200, usage_totals(services.usage, services.tenants, principal.tenant_id, query))
