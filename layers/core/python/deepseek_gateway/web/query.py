"""Query-string values as the API documents them, each bad one a 400 naming its parameter."""

from __future__ import annotations

import re

from deepseek_gateway.errors import InvalidRequestError

# ASCII only: Python's int() also reads other scripts' digits ("٣" is 3), which no client means.
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


def int_param(query: dict[str, str], name: str, default: int) -> int:
    """`query[name]` as a decimal integer, or `default` when absent; the range is the caller's to check."""
    value = query.get(name)
    if value is None:
        return default
    if not _INTEGER.match(value):
        raise InvalidRequestError(f"`{name}` must be an integer.", param=name)
    return int(value)
