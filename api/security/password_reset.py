"""Password reset: signed, one-hour, single-use links, and what a reset changes.

A reset token is a signed token (`api.security.signed_tokens`) under a key label of its own,
so neither an email-verification token nor a playback token can pass for one. Its payload is
the text ``version \\n purpose \\n user_id \\n email_digest \\n password_digest \\n
expires_at``:

* ``email_digest`` (`api.security.email_tokens.email_digest`): the link works only while the
  account still has the address it was mailed to, and the token never spells it out;
* ``password_digest``: a keyed, truncated HMAC of the account's password hash *when the link
  was made*. Every password change writes a new Argon2id hash (a fresh random salt, even for
  the same password), so the first successful reset, or any other password change, makes
  every outstanding link useless. That is what makes a link single-use without a table of
  spent tokens. Two concurrent uses of one link are settled by a compare-and-set on the hash
  (`set_password_if_unchanged`): exactly one wins. The digest is keyed so the token, whose
  payload anyone can read, tells nothing about the stored hash.

The token functions are pure (the caller passes the secret and the clock);
`set_password_if_unchanged` and `revoke_all_refresh_tokens` act on the metadata database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.security.email_tokens import email_digest
from api.security.signed_tokens import InvalidSignedToken, derive_key, seal, unseal
from api.security.sliding_window import AccountAndAddressLimiter
from polyvision.device_tokens import b64url
from polyvision.storage.metadata.models import RefreshToken, User

RESET_TOKEN_LIFETIME = timedelta(hours=1)
"""How long a password reset link works (and only once)."""

TOKEN_VERSION = "1"
PURPOSE = "reset-password"
MAX_TOKEN_CHARS = 512

_KEY_LABEL = b"polyvision/password-reset-token/v1"
_BINDING_LABEL = b"polyvision/password-reset-binding/v1"
_DIGEST_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]{1,12}")


class InvalidResetToken(ValueError):
    """A reset token is malformed, tampered with or signed for something else."""


class ExpiredResetToken(InvalidResetToken):
    """An authentic reset token whose lifetime has passed."""


@dataclass(frozen=True)
class ResetGrant:
    """What an authentic, unexpired reset token says about the account it was made for."""

    user_id: uuid.UUID
    email_digest: str
    password_digest: str
    expires_at: int

    def for_address(self, email: str) -> bool:
        """Whether the link was mailed to ``email`` (the account's current address)."""
        return hmac.compare_digest(self.email_digest, email_digest(email))

    def for_password(self, secret: bytes, password_hash: str) -> bool:
        """Whether the password is still the one the link was made for (not used yet)."""
        return hmac.compare_digest(self.password_digest, password_digest(secret, password_hash))


def derive_reset_key(secret: bytes) -> bytes:
    """The HMAC key that signs reset tokens: the server secret bound to this one purpose."""
    return derive_key(secret, _KEY_LABEL)


def password_digest(secret: bytes, password_hash: str) -> str:
    """The keyed fingerprint of a stored password hash that a reset token is bound to."""
    key = derive_key(secret, _BINDING_LABEL)
    digest = hmac.new(key, password_hash.encode("utf-8"), hashlib.sha256).digest()
    return b64url(digest[:_DIGEST_BYTES])


def create_reset_token(
    secret: bytes,
    user_id: uuid.UUID,
    email: str,
    password_hash: str,
    now: float,
    lifetime: timedelta = RESET_TOKEN_LIFETIME,
) -> str:
    """A token that lets whoever received it at ``email`` set ``user_id``'s password once.

    Args:
        secret: The server secret (``settings.secret``); the keys are derived from it.
        user_id: The account.
        email: The address the link is mailed to (as stored, lower-cased).
        password_hash: The account's password hash now; any change to it spends the token.
        now: The current unix time.
        lifetime: How long the token works from ``now``.

    Returns:
        The URL-safe token.
    """
    expires_at = int(now + lifetime.total_seconds())
    fields = [
        TOKEN_VERSION,
        PURPOSE,
        str(user_id),
        email_digest(email),
        password_digest(secret, password_hash),
        str(expires_at),
    ]
    return seal(derive_reset_key(secret), fields)


def verify_reset_token(secret: bytes, token: str, now: float) -> ResetGrant:
    """Check a token's signature (first, in constant time), format and expiry.

    The caller still checks `ResetGrant.for_address` and `ResetGrant.for_password` against
    the account as stored now.

    Raises:
        ExpiredResetToken: Authentic, but ``now`` is at or past its expiry.
        InvalidResetToken: Anything else wrong with it.
    """
    try:
        fields = unseal(derive_reset_key(secret), token, max_chars=MAX_TOKEN_CHARS)
    except InvalidSignedToken as exc:
        raise InvalidResetToken(str(exc)) from exc
    grant = _grant(fields)
    if now >= grant.expires_at:
        raise ExpiredResetToken("token has expired")
    return grant


def _grant(fields: list[str]) -> ResetGrant:
    # Only reached with a valid signature; a failure means a format mix-up, refused anyway.
    if len(fields) != 6 or fields[0] != TOKEN_VERSION or fields[1] != PURPOSE:
        raise InvalidResetToken("token version, purpose or layout is unknown")
    _, _, user_id, address, password, expires_at = fields
    if not (
        _DIGITS.fullmatch(expires_at)
        and _BASE64URL.fullmatch(address)
        and _BASE64URL.fullmatch(password)
    ):
        raise InvalidResetToken("token payload is malformed")
    try:
        parsed_id = uuid.UUID(user_id)
    except ValueError as exc:
        raise InvalidResetToken("token payload is malformed") from exc
    return ResetGrant(
        user_id=parsed_id,
        email_digest=address,
        password_digest=password,
        expires_at=int(expires_at),
    )


async def set_password_if_unchanged(
    session: AsyncSession,
    user_id: uuid.UUID,
    old_hash: str,
    new_hash: str,
    *,
    verify_email: bool = False,
) -> bool:
    """Replace ``user_id``'s password hash, only if it still is ``old_hash``.

    The compare-and-set makes a link single-use even under concurrent uses: of two requests
    that both checked the token against ``old_hash``, only one changes a row. The caller
    commits.

    Args:
        verify_email: Also mark the address verified (following the mailed link proves it).

    Returns:
        Whether this call changed the password.
    """
    values: dict[str, object] = {"password_hash": new_hash}
    if verify_email:
        values["email_verified_at"] = datetime.now(UTC)
    changed = await session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .where(col(User.password_hash) == old_hash)
        .values(**values)
    )
    return changed.rowcount == 1


async def revoke_all_refresh_tokens(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Revoke every refresh-token family of ``user_id`` (every session); the caller commits.

    Access tokens already issued stay valid until they expire (15 minutes): they are not
    looked up anywhere, which is what makes them cheap to check.

    Returns:
        How many refresh tokens were still unrevoked.
    """
    revoked = await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(revoked.rowcount)


class PasswordResetLimiter(AccountAndAddressLimiter):
    """Reset requests counted per requested address and per client address.

    Every accepted request counts, for an address with an account or without one alike, so
    a refusal says nothing about which addresses have accounts; refused requests do not
    count. Per process, like `SlidingWindowLimiter`.
    """

    def __init__(
        self,
        *,
        per_account: int = 3,
        per_address: int = 10,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            per_account=per_account, per_address=per_address, window_s=window_s, clock=clock
        )
