"""The authorizer function: API Gateway REQUEST authorizer events → allow with tenant context, or deny.

A missing or bad credential raises "Unauthorized" (API Gateway answers 401 with the UNAUTHORIZED
gateway response); a valid credential that may not proceed is a Deny (403, ACCESS_DENIED) whose
reason travels in the context to the gateway response.
"""

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from deepseek_gateway.auth.authenticator import context_of
from deepseek_gateway.auth.service import get_authenticator, usage_key_for
from deepseek_gateway.errors import AuthenticationError, PermissionDeniedError
from deepseek_gateway.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: object) -> dict:
    arn = event.parsed_arn
    try:
        principal = get_authenticator().authenticate(event.headers or {})
    except AuthenticationError as error:
        logger.info("authentication refused", extra={"code": error.code})
        raise Exception("Unauthorized") from None  # noqa: TRY002 - the exact signal API Gateway expects
    except PermissionDeniedError as error:
        logger.info("authorization denied", extra={"code": error.code})
        denied = APIGatewayAuthorizerResponse("denied", arn.region, arn.aws_account_id, arn.api_id, arn.stage,
                                              context={"error_message": error.message, "error_code": error.code})
        denied.deny_all_routes()
        return denied.asdict()
    logger.info("authorized", extra={"tenant_id": principal.tenant_id, "kind": principal.kind})
    allowed = APIGatewayAuthorizerResponse(
        f"{principal.tenant_id}:{principal.principal_id}", arn.region, arn.aws_account_id, arn.api_id, arn.stage,
        context=context_of(principal), usage_identifier_key=usage_key_for(principal.plan),
    )
    allowed.allow_all_routes()  # one cached answer serves every route; scopes are checked per route
    return allowed.asdict()
