"""DynamoDB's attribute-value format, converted by boto3's own (de)serializers, imported on first use.

`boto3.dynamodb.types` imports boto3 itself (~100 ms); the functions that need it run on the first
request, not at cold start.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _converters() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer().serialize, TypeDeserializer().deserialize


def serialize(value: Any) -> dict[str, Any]:
    return _converters()[0](value)


def deserialize(value: dict[str, Any]) -> Any:
    return _converters()[1](value)


def condition_failed(exc: BaseException) -> bool:
    """Whether a client error is DynamoDB's failed condition (or a transaction cancelled by one).

    Matched by the error code, not by `client.exceptions.ConditionalCheckFailedException`: botocore
    builds that class lazily per client, and threads racing on first use can each get their own class.
    """
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}
