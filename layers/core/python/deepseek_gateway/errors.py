"""Domain exceptions, each carrying the HTTP status and OpenAI error fields it maps to.

Every layer raises these; the web layer turns them into `{"error": {...}}` in one place, so no
code anywhere matches an error by its message text.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error a client may see."""

    status: int = 500
    type: str = "api_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


def quoted_id(value: str, limit: int = 100) -> str:
    """A caller-supplied id as an error message shows it: at most `limit` characters (a 5,000-character id
    is not echoed back whole)."""
    return value if len(value) <= limit else f"{value[:limit]}… ({len(value)} characters)"


class UnrecognizedArgumentError(InvalidRequestError):
    code = "unrecognized_argument"

    def __init__(self, field: str) -> None:
        super().__init__(f"Unrecognized request argument supplied: {quoted_id(field)}", param=quoted_id(field))


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str, *, param: str | None = "model") -> None:
        super().__init__(f"The model `{quoted_id(model)}` does not exist or you do not have access to it.",
                         param=param)


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class ConflictError(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnprocessableError(GatewayError):
    status = 422
    type = "invalid_request_error"
    code = "unprocessable_entity"


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """Every provider in the chain failed, or a provider answered with something unusable."""

    status = 502
    type = "api_error"
    code = "upstream_error"


class UpstreamAuthError(UpstreamError):
    """A provider refused the gateway's own credentials (401/403): the operator's problem, not the caller's.

    A class of its own (not only a code) because the batch workflow sees errors by class name."""

    code = "upstream_auth_error"


class ServiceUnavailableError(GatewayError):
    """No provider could be tried: all skipped by their circuit breakers."""

    status = 503
    type = "api_error"
    code = "service_unavailable"


class GatewayTimeoutError(GatewayError):
    status = 504
    type = "api_error"
    code = "timeout"


class ProviderClientError(GatewayError):
    """A provider refused the request itself (400/404/422): the client's to fix, never retried."""

    type = "invalid_request_error"
    code = "upstream_invalid_request"

    def __init__(self, message: str, *, status: int, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status
