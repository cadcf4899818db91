"""Authentication: Argon2id passwords, RS256 access tokens, rotating refresh tokens.

`create_auth_state(settings)` builds what the API's lifespan stores as ``app.state.auth``;
`CurrentUser` is the dependency that protects a route with a bearer access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import get_session
from api.security.keys import KeyRing
from api.security.passwords import Passwords
from api.security.ratelimit import LoginLimiter
from api.security.refresh import RefreshTokens
from api.security.tokens import AccessTokens, InvalidAccessToken
from polyvision.settings import Settings
from polyvision.storage.metadata.models import User

ACCESS_TOKEN_LIFETIME_S = 900
AUDIENCE = "polyvision-api"


@dataclass
class AuthState:
    keys: KeyRing
    access: AccessTokens
    refresh: RefreshTokens = field(default_factory=RefreshTokens)
    passwords: Passwords = field(default_factory=Passwords)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


def create_auth_state(settings: Settings, **overrides: object) -> AuthState:
    """The auth machinery for ``settings``: key ring under ``data_dir/keys``."""
    lifetime_s = ACCESS_TOKEN_LIFETIME_S
    keys = KeyRing.load_or_create(
        settings.data_dir / "keys", max_token_lifetime=timedelta(seconds=lifetime_s + 60)
    )
    access = AccessTokens(
        keys, issuer=settings.api_public_url, audience=AUDIENCE, lifetime_s=lifetime_s
    )
    return AuthState(keys=keys, access=access, **overrides)  # type: ignore[arg-type]


DbSession = Annotated[AsyncSession, Depends(get_session)]


def get_auth(request: Request) -> AuthState:
    auth: AuthState = request.app.state.auth
    return auth


AuthDep = Annotated[AuthState, Depends(get_auth)]


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
    try:
        claims = auth.access.verify(token.strip())
    except InvalidAccessToken as exc:
        raise unauthorized("The access token is invalid or expired.") from exc
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise unauthorized("The access token is invalid or expired.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
