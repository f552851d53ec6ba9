"""The file-level check of a batch input file: UTF-8 JSON Lines, each non-empty line a JSON object.

What each line must contain (`custom_id`, `method`, `url`, `body`) is the batch ingestion's check, per line.
"""

from __future__ import annotations

from deepseek_gateway.errors import InvalidRequestError
from deepseek_gateway.validation import strict_json

_SHOWN = 3  # bad lines named in the error
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _invalid(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="file", code="invalid_file_format")


def check_jsonl(data: bytes) -> int:
    """The number of JSON lines in `data`, or a 400 saying what is wrong with the file as a whole."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise _invalid("The file starts with a byte order mark; save it as UTF-8 without BOM.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _invalid(f"The file is not UTF-8 text (invalid byte at offset {exc.start}, line {line}); "
                       "batch files must be UTF-8 JSON Lines.") from None
    bad: list[str] = []
    count = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            value = strict_json(line)
        except RecursionError:
            bad.append(f"line {number}: nested too deep")
        except ValueError as exc:  # JSONDecodeError has .msg; NotJsonError and int() limits say it in str()
            bad.append(f"line {number}: not valid JSON ({getattr(exc, 'msg', None) or str(exc)[:200]})")
        else:
            if not isinstance(value, dict):
                bad.append(f"line {number}: {_JSON_TYPES.get(type(value), 'a value')}, not a JSON object")
        if len(bad) == _SHOWN:
            break
    if count == 0:
        raise _invalid("The file is empty; a batch file has one JSON object per line.")
    if bad:
        raise _invalid("The file is not JSON Lines (one JSON object per line): " + "; ".join(bad) + ".")
    return count
