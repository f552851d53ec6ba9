"""The caller, as the authorizer established it, and the scope each route needs."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from deepseek_gateway.auth.authenticator import principal_from_context
from deepseek_gateway.auth.principal import Principal, Scope
from deepseek_gateway.errors import AuthenticationError, PermissionDeniedError


def caller(router: Router) -> Principal:
    """Only API Gateway's authorizer context says who the caller is; headers and bodies never do."""
    context = (router.current_event.raw_event.get("requestContext") or {}).get("authorizer")
    principal = principal_from_context(context)
    if principal is None:
        raise AuthenticationError("You didn't provide an API key.", code="missing_api_key")
    return principal


def require(router: Router, scope: Scope) -> Principal:
    principal = caller(router)
    if not principal.has(scope):
        raise PermissionDeniedError(
            f"This credential lacks the `{scope}` scope needed for this route.", code="insufficient_scope"
        )
    return principal
