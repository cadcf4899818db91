"""Register, log in, refresh, log out; the JWKS that verifies our access tokens.

`router` is mounted at ``/auth``; `jwks_router` serves ``/.well-known/jwks.json`` at the root.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.openapi import problem_responses
from api.problems import problem
from api.security import AuthDep, CurrentUser, DbSession, unauthorized
from api.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from api.security.refresh import InvalidRefreshToken
from polyvision.storage.metadata.models import User, UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])
jwks_router = APIRouter(tags=["auth"])

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
INVALID_CREDENTIALS = "Invalid email or password."
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _normalize_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN),
    AfterValidator(_normalize_email),
]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "coach@fc-example.org",
                    "password": "a long passphrase",
                    "full_name": "Alex Coach",
                }
            ]
        }
    )

    email: Email
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    full_name: str | None = Field(default=None, max_length=200)


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "coach@fc-example.org", "password": "a long passphrase"}]
        }
    )

    # No pattern here: a malformed address gets the same 401 as a wrong password.
    email: Annotated[str, Field(max_length=320), AfterValidator(_normalize_email)]
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "3q2-7wEAAABf...opaque"}]}
    )

    refresh_token: str = Field(max_length=256)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    id: uuid.UUID
    email: str


def _client_address(request: Request) -> str:
    # Behind APISIX, uvicorn's --proxy-headers/--forwarded-allow-ips make this the real client.
    return request.client.host if request.client else "unknown"


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    summary="Create an account",
    responses=problem_responses(409, 422),
)
async def register(body: RegisterRequest, auth: AuthDep, session: DbSession) -> User | JSONResponse:
    existing = await session.exec(select(User).where(col(User.email) == body.email))
    if existing.first() is not None:
        return problem(409, "An account with this email already exists.", title="Conflict")
    user = User(
        email=body.email,
        full_name=body.full_name,
        password_hash=await auth.passwords.hash(body.password),
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:  # lost a race with a concurrent registration
        await session.rollback()
        return problem(409, "An account with this email already exists.", title="Conflict")
    return user


async def _token_pair(auth: AuthDep, session: DbSession, user: User) -> TokenPair:
    refresh_token = await auth.refresh.issue(session, user.id)
    await session.commit()
    return TokenPair(
        access_token=auth.access.issue(user.id),
        refresh_token=refresh_token,
        expires_in=auth.access.lifetime_s,
    )


@router.post(
    "/login",
    response_model=TokenPair,
    summary="Log in: an access token and a refresh token",
    responses=problem_responses(401, 422),
)
async def login(
    body: LoginRequest, request: Request, response: Response, auth: AuthDep, session: DbSession
) -> TokenPair | JSONResponse:
    address = _client_address(request)
    wait = auth.limiter.retry_after(body.email, address)
    if wait is not None:
        return problem(
            429, "Too many login attempts; try again later.", headers={"Retry-After": str(wait)}
        )
    user = (await session.exec(select(User).where(col(User.email) == body.email))).first()
    ok, new_hash = await auth.passwords.verify(
        user.password_hash if user is not None else None, body.password
    )
    if user is None or not ok or not user.is_active:
        auth.limiter.failed(body.email, address)
        raise unauthorized(INVALID_CREDENTIALS, error=None)
    auth.limiter.succeeded(body.email)
    if new_hash is not None:
        user.password_hash = new_hash
        session.add(user)
    response.headers.update(NO_STORE)
    return await _token_pair(auth, session, user)


@router.post(
    "/refresh",
    response_model=TokenPair,
    summary="Trade a refresh token for a new pair (the old one is spent)",
    responses=problem_responses(401, 422),
)
async def refresh(
    body: RefreshRequest, response: Response, auth: AuthDep, session: DbSession
) -> TokenPair:
    try:
        user_id, refresh_token = await auth.refresh.rotate(session, body.refresh_token)
    except InvalidRefreshToken as exc:
        raise unauthorized("The refresh token is invalid, expired or revoked.") from exc
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise unauthorized("The refresh token is invalid, expired or revoked.")
    response.headers.update(NO_STORE)
    return TokenPair(
        access_token=auth.access.issue(user.id),
        refresh_token=refresh_token,
        expires_in=auth.access.lifetime_s,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out: revoke the refresh token's whole family",
    responses=problem_responses(422),
)
async def logout(body: RefreshRequest, auth: AuthDep, session: DbSession) -> None:
    """Revoke the session (refresh-token family); unknown tokens are accepted (RFC 7009)."""
    await auth.refresh.revoke(session, body.refresh_token)


@router.get(
    "/me",
    response_model=Me,
    summary="The authenticated user",
    responses=problem_responses(401),
)
async def me(user: CurrentUser) -> Me:
    return Me(id=user.id, email=user.email)


@jwks_router.get("/.well-known/jwks.json", summary="Public keys that verify our access tokens")
async def jwks(auth: AuthDep) -> JSONResponse:
    return JSONResponse(auth.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
