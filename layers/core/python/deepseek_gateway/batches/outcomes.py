"""A workflow error (`{"Error": <exception class name>, "Cause": <JSON text>}`) as a line's error code and message.

Lambda reports an exception as its class name; the code comes from the GatewayError subclass of that
name (its `code`), never from the message. A gateway error's message is written for clients and is
kept; anything else (a bug, a timeout of the platform) becomes `internal_error` with a generic
message, so no exception text or stack trace of ours ever reaches an error file.
"""

from __future__ import annotations

import importlib
import json
from functools import cache

from deepseek_gateway.errors import GatewayError

GENERIC_MESSAGE = "The request could not be processed."
MAX_MESSAGE = 1000
# Modules defining the GatewayError subclasses a workflow task can raise (imported before the map is built).
_ERROR_MODULES = (
    "deepseek_gateway.errors",
    "deepseek_gateway.batches.errors",
    "deepseek_gateway.batches.lines",
    "deepseek_gateway.limits.service",
    "deepseek_gateway.policy.engine",
    "deepseek_gateway.safety.verdicts",
    "deepseek_gateway.files.store",
)
# Errors Step Functions itself raises, by name.
_STATES_ERRORS = {"States.Timeout": ("timeout", "The request timed out.")}


@cache
def gateway_error_codes() -> dict[str, str]:
    """Class name → code of every GatewayError subclass (names are unique in the gateway: a test holds them)."""
    for module in _ERROR_MODULES:
        importlib.import_module(module)
    codes: dict[str, str] = {}
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        codes.setdefault(cls.__name__, str(cls.code or "internal_error"))
        pending += cls.__subclasses__()
    return codes


def _message(cause: str | None) -> str | None:
    if not cause:
        return None
    try:
        value = json.loads(cause)
    except ValueError:
        return None
    message = value.get("errorMessage") if isinstance(value, dict) else None
    return message[:MAX_MESSAGE] if isinstance(message, str) and message.strip() else None


def task_error(error: str, cause: str | None) -> tuple[str, str]:
    """(code, message) for a line's error file entry or a failed batch's `errors`."""
    if error in _STATES_ERRORS:
        return _STATES_ERRORS[error]
    code = gateway_error_codes().get(error)
    if code is None or error == "GatewayError":
        return "internal_error", GENERIC_MESSAGE
    return code, _message(cause) or GENERIC_MESSAGE
