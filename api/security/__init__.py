"""Authentication: Argon2id passwords, RS256 access tokens, rotating refresh tokens.

`await create_auth_state(settings, sessions)` builds what the API's lifespan stores as
``app.state.auth`` (the signing key ring is loaded from the metadata database, shared by every
replica); `CurrentUser` is the dependency that protects a route with a bearer access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import DbSession
from api.security.passwords import Passwords
from api.security.refresh import RefreshTokens
from api.security.signing_keys import KeyRing
from api.security.sliding_window import LoginLimiter
from api.security.tokens import AccessTokens, InvalidAccessToken, UnknownSigningKey
from polyvision.settings import Settings
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.metadata.models import User

ACCESS_TOKEN_LIFETIME_S = 900
# Retired keys verify this long after their retirement: a token's lifetime, plus a minute for
# a replica that has not yet reloaded the ring and still signs with the old key.
MAX_TOKEN_LIFETIME = timedelta(seconds=ACCESS_TOKEN_LIFETIME_S + 60)
AUDIENCE = "polyvision-api"


@dataclass
class AuthState:
    keys: KeyRing
    access: AccessTokens
    refresh: RefreshTokens = field(default_factory=RefreshTokens)
    passwords: Passwords = field(default_factory=Passwords)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


async def create_auth_state(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], **overrides: object
) -> AuthState:
    """The auth machinery for ``settings``: the key ring is read from (or first stored in)
    the metadata database behind ``sessions``, its private keys sealed with ``settings.secret``.

    Raises:
        KeyRingSecretError: the stored keys were encrypted with another secret.
    """
    keys = await KeyRing.load_or_create(
        sessions, settings.secret, max_token_lifetime=MAX_TOKEN_LIFETIME
    )
    access = AccessTokens(
        keys, issuer=settings.api_public_url, audience=AUDIENCE, lifetime_s=ACCESS_TOKEN_LIFETIME_S
    )
    return AuthState(keys=keys, access=access, **overrides)  # type: ignore[arg-type]


async def rotate_signing_key(settings: Settings) -> str:
    """Rotate the key ring in ``settings.database_url``; the new current key's kid.

    Every replica signs with the new key within a minute (its next reload); tokens signed by
    the old key keep verifying until they expire.
    """
    engine = create_engine(settings.database_url)
    try:
        keys = await KeyRing.load_or_create(
            session_maker(engine), settings.secret, max_token_lifetime=MAX_TOKEN_LIFETIME
        )
        return (await keys.rotate()).kid
    finally:
        await engine.dispose()


def get_auth(request: Request) -> AuthState:
    auth: AuthState = request.app.state.auth
    return auth


async def get_fresh_auth(request: Request) -> AuthState:
    """The auth state, its key ring reloaded first when older than its reload interval, so
    a rotation made on another replica is used for signing and in the JWKS."""
    auth = get_auth(request)
    await auth.keys.refresh_if_stale()
    return auth


AuthDep = Annotated[AuthState, Depends(get_fresh_auth)]


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def get_current_user(request: Request, auth: AuthDep, session: DbSession) -> User:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication required.", error=None)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authentication required.", error=None)
    await auth.keys.refresh_if_stale()
    try:
        claims = auth.access.verify(token.strip())
    except UnknownSigningKey as exc:
        # Maybe a key made on another replica since our last reload: reload, then retry once.
        if not await auth.keys.reload_for_unknown(exc.kid):
            raise unauthorized("The access token is invalid or expired.") from exc
        try:
            claims = auth.access.verify(token.strip())
        except InvalidAccessToken as retry_exc:
            raise unauthorized("The access token is invalid or expired.") from retry_exc
    except InvalidAccessToken as exc:
        raise unauthorized("The access token is invalid or expired.") from exc
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise unauthorized("The access token is invalid or expired.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
