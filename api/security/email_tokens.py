"""Signed, expiring email-verification tokens, bound to one account and one address.

Token format: ``{payload}.{signature}``, both base64url without padding. The payload is the
ASCII text ``version \\n purpose \\n user_id \\n email_digest \\n expires_at``, where
``email_digest`` is a truncated SHA-256 of the address the link was sent to: changing the
account's email makes every earlier token useless, and the token does not spell the
address out in logs. The signature is HMAC-SHA256 over the payload *as transmitted*, with a
key derived from the server secret under its own label, so neither a playback token nor a
signed object URL (other purposes of the same secret) can pass for one of these.

Everything here is pure: the caller passes the secret and the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from api.security.signed_tokens import InvalidSignedToken, derive_key, seal, unseal
from polyvision.device_tokens import b64url

EMAIL_TOKEN_LIFETIME = timedelta(hours=24)
"""How long a verification link works."""

TOKEN_VERSION = "1"
PURPOSE = "verify-email"

_KEY_LABEL = b"polyvision/email-verification-token/v1"
_DIGEST_BYTES = 16
_MAX_TOKEN_CHARS = 512
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]{1,12}")


class InvalidEmailToken(ValueError):
    """A verification token is malformed, tampered with or signed for something else."""


class ExpiredEmailToken(InvalidEmailToken):
    """An authentic verification token whose lifetime has passed."""


@dataclass(frozen=True)
class EmailGrant:
    """What a verified token says: ``user_id`` owned ``email_digest``'s address."""

    user_id: uuid.UUID
    email_digest: str
    expires_at: int

    def matches(self, email: str) -> bool:
        """Whether the token was issued for ``email`` (the account's current address)."""
        return hmac.compare_digest(self.email_digest, email_digest(email))


def derive_email_key(secret: bytes) -> bytes:
    """The HMAC key for verification tokens: the server secret bound to this one purpose."""
    return derive_key(secret, _KEY_LABEL)


def email_digest(email: str) -> str:
    """The short, URL-safe fingerprint of an address that a token carries."""
    return b64url(hashlib.sha256(email.encode("utf-8")).digest()[:_DIGEST_BYTES])


def create_email_token(
    secret: bytes,
    user_id: uuid.UUID,
    email: str,
    now: float,
    lifetime: timedelta = EMAIL_TOKEN_LIFETIME,
) -> str:
    """A token proving that whoever holds it received mail at ``email`` for ``user_id``.

    Args:
        secret: The server secret (``settings.secret``); the signing key is derived from it.
        user_id: The account to verify.
        email: The address the token is mailed to (as stored, lower-cased).
        now: The current unix time.
        lifetime: How long the token works from ``now``.

    Returns:
        The URL-safe token.
    """
    expires_at = int(now + lifetime.total_seconds())
    fields = [TOKEN_VERSION, PURPOSE, str(user_id), email_digest(email), str(expires_at)]
    return seal(derive_email_key(secret), fields)


def verify_email_token(secret: bytes, token: str, now: float) -> EmailGrant:
    """Check a token's signature, format and expiry (the signature first, in constant time).

    The caller still has to check `EmailGrant.matches` against the account's current address.

    Raises:
        ExpiredEmailToken: Authentic, but ``now`` is at or past its expiry.
        InvalidEmailToken: Anything else wrong with it.
    """
    try:
        fields = unseal(derive_email_key(secret), token, max_chars=_MAX_TOKEN_CHARS)
    except InvalidSignedToken as exc:
        raise InvalidEmailToken(str(exc)) from exc
    grant = _grant(fields)
    if now >= grant.expires_at:
        raise ExpiredEmailToken("token has expired")
    return grant


def _grant(fields: list[str]) -> EmailGrant:
    # Only reached with a valid signature; a failure means a format mix-up, refused anyway.
    if len(fields) != 5 or fields[0] != TOKEN_VERSION or fields[1] != PURPOSE:
        raise InvalidEmailToken("token version, purpose or layout is unknown")
    _, _, user_id, digest, expires_at = fields
    if not _DIGITS.fullmatch(expires_at) or not _BASE64URL.fullmatch(digest):
        raise InvalidEmailToken("token payload is malformed")
    try:
        parsed_id = uuid.UUID(user_id)
    except ValueError as exc:
        raise InvalidEmailToken("token payload is malformed") from exc
    return EmailGrant(user_id=parsed_id, email_digest=digest, expires_at=int(expires_at))
