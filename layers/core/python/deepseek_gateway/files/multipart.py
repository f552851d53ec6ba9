"""multipart/form-data bodies (RFC 7578), parsed with the standard library's email parser."""

from __future__ import annotations

from dataclasses import dataclass

from deepseek_gateway.errors import InvalidRequestError


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def parse_form(body: bytes, content_type: str | None) -> dict[str, FormPart]:
    """The form's parts by name (the first part of each name wins); malformed bodies are a 400."""
    if not content_type or content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise InvalidRequestError("Send the file as multipart/form-data (Content-Type: multipart/form-data; "
                                  "boundary=...), with the parts `file` and `purpose`.", code="invalid_content_type")
    if "boundary=" not in content_type.lower():
        raise InvalidRequestError("The multipart/form-data Content-Type has no boundary.", code="invalid_multipart")
    import email.parser  # lazy: only uploads need it
    import email.policy

    header = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    parts: dict[str, FormPart] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or name in parts:
                continue
            payload = part.get_payload(decode=True)
            parts[name] = FormPart(
                name=name,
                data=payload if isinstance(payload, bytes) else b"",
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("content-type") else None,
            )
    if not parts:
        raise InvalidRequestError("The multipart/form-data body has no readable parts; send `file` and `purpose`.",
                                  code="invalid_multipart")
    return parts
