"""Opaque refresh tokens: random, stored as SHA-256, rotated on every use.

Each use marks the token used and issues its successor in the same family. Presenting a
used (or revoked) token again means it leaked: the whole family is revoked, so the newest
token, whoever holds it, stops working too.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.metadata.models import RefreshToken

TOKEN_PREFIX = "pvr_"
DEFAULT_LIFETIME = timedelta(days=30)


class InvalidRefreshToken(Exception):
    """Unknown, expired, revoked or reused refresh token."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class RefreshTokens:
    def __init__(self, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        self.lifetime = lifetime

    async def issue(
        self, session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID | None = None
    ) -> str:
        """A new refresh token (added to ``session``; the caller commits)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                family_id=family_id or uuid.uuid4(),
                user_id=user_id,
                token_hash=hash_token(token),
                expires_at=datetime.now(UTC) + self.lifetime,
            )
        )
        return token

    async def _find(self, session: AsyncSession, token: str) -> RefreshToken | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        result = await session.exec(
            select(RefreshToken).where(col(RefreshToken.token_hash) == hash_token(token))
        )
        return result.first()

    async def revoke_family(self, session: AsyncSession, family_id: uuid.UUID) -> None:
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == family_id)
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=datetime.now(UTC))
        )

    async def rotate(self, session: AsyncSession, token: str) -> tuple[uuid.UUID, str]:
        """Spend ``token``: its user and its successor. Commits; raises on any misuse."""
        row = await self._find(session, token)
        if row is None:
            raise InvalidRefreshToken("unknown refresh token")
        now = datetime.now(UTC)
        if row.used_at is not None or row.revoked_at is not None:
            await self.revoke_family(session, row.family_id)
            await session.commit()
            raise InvalidRefreshToken("refresh token reused; its family is revoked")
        if _aware(row.expires_at) <= now:
            raise InvalidRefreshToken("refresh token expired")
        # Compare-and-set: of two concurrent uses only one wins; the other is a reuse.
        marked = await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.id) == row.id)
            .where(col(RefreshToken.used_at).is_(None))
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(used_at=now)
        )
        if marked.rowcount != 1:
            await self.revoke_family(session, row.family_id)
            await session.commit()
            raise InvalidRefreshToken("refresh token reused; its family is revoked")
        user_id, family_id = row.user_id, row.family_id
        successor = await self.issue(session, user_id, family_id)
        await session.commit()
        return user_id, successor

    async def revoke(self, session: AsyncSession, token: str) -> None:
        """Log out: revoke the family ``token`` belongs to (unknown tokens are ignored)."""
        row = await self._find(session, token)
        if row is not None:
            await self.revoke_family(session, row.family_id)
            await session.commit()
