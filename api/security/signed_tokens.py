"""Tokens the API signs for itself (playback URLs, email verification links).

Format: ``{payload}.{signature}``, both base64url without padding. The payload is text fields
joined by newlines; the signature is HMAC-SHA256 over the payload *as transmitted*, with a key
derived from the server secret under a label of its own per purpose, so a token made for one
purpose never passes for another. The signature is checked first, in constant time: nothing in
an unsigned payload is trusted. Each purpose parses and checks its own fields.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

from polyvision.device_tokens import b64url, b64url_decode

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class InvalidSignedToken(ValueError):
    """A token is too long, malformed, or not signed with this key."""


def derive_key(secret: bytes, label: bytes) -> bytes:
    """The HMAC key of one purpose: the server secret bound to ``label``."""
    return hmac.new(secret, label, hashlib.sha256).digest()


def seal(key: bytes, fields: Sequence[str]) -> str:
    """The signed token carrying ``fields`` (none may contain a newline)."""
    if any("\n" in field for field in fields):
        raise ValueError("token fields must be single lines")
    encoded = b64url("\n".join(fields).encode("utf-8"))
    return f"{encoded}.{_signature(key, encoded)}"


def unseal(key: bytes, token: str, *, max_chars: int) -> list[str]:
    """The fields of a token signed with ``key``.

    Raises:
        InvalidSignedToken: too long (checked before any decoding), malformed, or a signature
            that does not match.
    """
    if len(token) > max_chars:
        raise InvalidSignedToken("token is too long")
    encoded, dot, signature = token.partition(".")
    if not dot or not _BASE64URL.fullmatch(encoded) or not _BASE64URL.fullmatch(signature):
        raise InvalidSignedToken("token is malformed")
    if not hmac.compare_digest(_signature(key, encoded), signature):
        raise InvalidSignedToken("token signature is invalid")
    try:
        text = b64url_decode(encoded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidSignedToken("token payload is malformed") from exc
    return text.split("\n")


def _signature(key: bytes, encoded_payload: str) -> str:
    return b64url(hmac.new(key, encoded_payload.encode("ascii"), hashlib.sha256).digest())
