"""Password hashing with Argon2id (argon2-cffi), off the event loop.

Verification is constant-time inside argon2; a login for an unknown account verifies
against a dummy hash so it spends about as long as a wrong password for a real one.
"""

from __future__ import annotations

import secrets
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hash and verify passwords; `hasher` defaults to argon2-cffi's Argon2id parameters."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await run_in_threadpool(self.hasher.hash, password)

    def _verify(self, password_hash: str, password: str) -> tuple[bool, str | None]:
        try:
            self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if self.hasher.check_needs_rehash(password_hash):
            return True, self.hasher.hash(password)
        return True, None

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Whether ``password`` matches, and a new hash when the parameters changed.

        With ``password_hash=None`` (unknown account) a dummy hash is verified and the
        answer is always ``False``.
        """
        if password_hash is None:
            await run_in_threadpool(self._verify, self._dummy_hash, password)
            return False, None
        return await run_in_threadpool(self._verify, password_hash, password)
