"""HMAC-SHA256 signed object URLs, served by the API's objects router (file backend).

Pure functions: the caller passes the secret and the clock, so they are trivial to test and the
API and the store agree on one canonical message.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

from polyvision.storage.objects.object_keys import validate_key

SIGNED_METHODS = frozenset({"GET", "PUT"})

# Domain separation: the same server secret signs other things (tokens, delivery URLs); this
# prefix makes an object-URL signature useless anywhere else, and vice versa.
_CONTEXT = b"polyvision-object-url-v1"
# Part URLs get their own context, so an object URL can never be replayed as a part URL (or the
# reverse) even where the other fields happen to coincide.
_PART_CONTEXT = b"polyvision-object-part-url-v1"


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


def part_signature(secret: bytes, key: str, upload_id: str, number: int, expires: int) -> str:
    """The hex HMAC-SHA256 that authorises one `PUT` of part `number` of upload `upload_id`."""
    message = b"\n".join(
        [
            _PART_CONTEXT,
            b"PUT",
            key.encode("utf-8"),
            upload_id.encode("utf-8"),
            str(int(number)).encode(),
            str(int(expires)).encode(),
        ]
    )
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_part_url(
    base_url: str, secret: bytes, key: str, upload_id: str, number: int, expires: int
) -> str:
    """Build `{base_url}/objects/{key}?uploadId=...&partNumber=...&expires=...&sig=...`.

    The query parameter names are S3's, so the URL reads like an S3 UploadPart URL.

    Args:
        base_url: public base URL of the API.
        secret: the server's signing secret.
        key: a valid object key (percent-encoded in the URL, `/` kept).
        upload_id: the multipart upload id.
        number: the part number.
        expires: unix time after which the URL is refused.

    Raises:
        InvalidObjectKey: `key` is invalid.
    """
    validate_key(key)
    query = urlencode(
        {
            "uploadId": upload_id,
            "partNumber": str(int(number)),
            "expires": str(int(expires)),
            "sig": part_signature(secret, key, upload_id, number, expires),
        }
    )
    return f"{base_url.rstrip('/')}/objects/{quote(key, safe='/')}?{query}"


def verify_part_signature(
    secret: bytes, key: str, upload_id: str, number: int, expires: int, sig: str, now: float
) -> None:
    """Check a signed part URL's parameters; return quietly when they authorise the `PUT`.

    Raises:
        InvalidSignature: the signature does not match or has expired.
    """
    expected = part_signature(secret, key, upload_id, number, expires)
    # Constant-time comparison before the expiry check, as in `verify_object_signature`.
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", errors="replace")):
        raise InvalidSignature("signature does not match")
    if now > expires:
        raise InvalidSignature("signature has expired")
