"""HMAC-SHA256 signed object URLs, served by the API's objects router (file backend).

Pure functions: the caller passes the secret and the clock, so they are trivial to test and the
API and the store agree on one canonical message.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

from polyvision.storage.objects.keys import validate_key

SIGNED_METHODS = frozenset({"GET", "PUT"})

# Domain separation: the same server secret signs other things (tokens, delivery URLs); this
# prefix makes an object-URL signature useless anywhere else, and vice versa.
_CONTEXT = b"polyvision-object-url-v1"


class InvalidSignature(ValueError):
    """A signed object URL is malformed, tampered with, for another method, or expired."""


def object_signature(secret: bytes, key: str, method: str, expires: int) -> str:
    """The hex HMAC-SHA256 that authorises `method` on `key` until `expires` (unix seconds)."""
    message = b"\n".join(
        [_CONTEXT, method.upper().encode(), key.encode("utf-8"), str(int(expires)).encode()]
    )
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_object_url(base_url: str, secret: bytes, key: str, method: str, expires: int) -> str:
    """Build `{base_url}/objects/{key}?method=...&expires=...&sig=...`.

    Args:
        base_url: public base URL of the API, e.g. `https://api.example.com`.
        secret: the server's signing secret.
        key: a valid object key (percent-encoded in the URL, `/` kept).
        method: `GET` or `PUT`.
        expires: unix time after which the URL is refused.

    Raises:
        InvalidObjectKey: `key` is invalid.
        ValueError: `method` is not GET or PUT.
    """
    validate_key(key)
    method = method.upper()
    if method not in SIGNED_METHODS:
        raise ValueError(f"signed object URLs allow GET or PUT, not {method!r}")
    query = urlencode(
        {
            "method": method,
            "expires": str(int(expires)),
            "sig": object_signature(secret, key, method, expires),
        }
    )
    return f"{base_url.rstrip('/')}/objects/{quote(key, safe='/')}?{query}"


def verify_object_signature(
    secret: bytes, key: str, method: str, expires: int, sig: str, now: float
) -> None:
    """Check a signed object URL's parameters; return quietly when they authorise the request.

    Args:
        secret: the server's signing secret.
        key: the object key from the request path (already percent-decoded).
        method: the HTTP method of the request itself (not the `method` query parameter), so a
            GET URL can never be replayed as a PUT.
        expires: the `expires` query parameter.
        sig: the `sig` query parameter.
        now: current unix time.

    Raises:
        InvalidSignature: the signature does not match or has expired.
    """
    expected = object_signature(secret, key, method, expires)
    # Compare before looking at the expiry and always in constant time, so timing reveals
    # nothing about the expected signature.
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", errors="replace")):
        raise InvalidSignature("signature does not match")
    if now > expires:
        raise InvalidSignature("signature has expired")
