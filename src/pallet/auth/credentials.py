"""Read a token from an Authorization header: ``Basic`` (any user, password = token; twine and uv
send ``__token__``) or ``Bearer``. Malformed headers are treated as absent credentials."""

from __future__ import annotations

import base64
import binascii


def token_from_authorization(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None
