"""Register, verify the email address, log in, refresh, log out; the JWKS of our tokens.

Registration mails a verification link (`api.security.email_tokens`); an account that never
followed it can still log in and create its own organization, but cannot be added to anyone
else's (`api.routes.organizations.add_member`), so registering someone else's address first
captures nothing.

`router` is mounted at ``/auth``; `jwks_router` serves ``/.well-known/jwks.json`` at the root.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import DbSession, MailerDep, SettingsDep
from api.openapi import problem_responses
from api.problems import problem
from api.security import AuthDep, CurrentUser, unauthorized
from api.security.email_tokens import (
    EMAIL_TOKEN_LIFETIME,
    ExpiredEmailToken,
    InvalidEmailToken,
    create_email_token,
    verify_email_token,
)
from api.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from api.security.refresh import InvalidRefreshToken
from polyvision.mail import MailDeliveryError, Mailer
from polyvision.settings import Environment, Settings
from polyvision.storage.metadata.models import User, UserPublic, utcnow

router = APIRouter(prefix="/auth", tags=["auth"])
jwks_router = APIRouter(tags=["auth"])

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
INVALID_CREDENTIALS = "Invalid email or password."
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAIL_NOT_CONFIGURED = "Email delivery is not configured."
MAIL_FAILED = "The email could not be sent; try again shortly."
INVALID_LINK = "The verification link is invalid."
EXPIRED_LINK = "The verification link has expired; ask for a new one."
ALREADY_VERIFIED = "This email address is already verified."
VERIFY_PATH = "/auth/verify-email"
# Bound to the largest token `api.security.email_tokens` accepts.
MAX_TOKEN_LENGTH = 512

log = structlog.get_logger(__name__)


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


class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"token": "MQp2ZXJpZnktZW1haWwK....3q2-7wEAAABf"}]}
    )

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)


class EmailVerification(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "coach@fc-example.org",
                    "email_verified": True,
                    "email_verified_at": "2026-11-25T18:00:00Z",
                }
            ]
        }
    )

    email: str
    email_verified: bool
    email_verified_at: datetime


class Me(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool


def _client_address(request: Request) -> str:
    # Behind APISIX, uvicorn's --proxy-headers/--forwarded-allow-ips make this the real client.
    return request.client.host if request.client else "unknown"


def mail_unavailable(settings: Settings, mailer: Mailer) -> bool:
    """Whether mail would only be logged where that is not acceptable (outside development)."""
    return not mailer.configured and settings.env is not Environment.development


def verification_link(settings: Settings, user: User, now: float) -> str:
    """The link that verifies ``user``'s current address, valid `EMAIL_TOKEN_LIFETIME`."""
    token = create_email_token(settings.secret, user.id, user.email, now)
    query = urlencode({"token": token})
    return f"{settings.api_public_url.rstrip('/')}{VERIFY_PATH}?{query}"


async def send_verification(settings: Settings, mailer: Mailer, user: User) -> None:
    """Mail ``user`` a fresh verification link.

    Raises:
        MailDeliveryError: The SMTP server could not be reached or refused the message.
    """
    link = verification_link(settings, user, time.time())
    hours = int(EMAIL_TOKEN_LIFETIME.total_seconds() // 3600)
    text = (
        "Welcome to Polyvision.\n\n"
        "Confirm that this is your email address by opening this link:\n\n"
        f"{link}\n\n"
        f"The link works for {hours} hours. If you did not create an account, ignore this "
        "message: nobody can use the address until it is confirmed.\n"
    )
    await mailer.send(user.email, "Confirm your email address for Polyvision", text)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    summary="Create an account and mail it a verification link",
    responses=problem_responses(409, 422, 503),
)
async def register(
    body: RegisterRequest,
    auth: AuthDep,
    session: DbSession,
    settings: SettingsDep,
    mailer: MailerDep,
) -> User | JSONResponse:
    """Create an unverified account and mail a verification link to its address.

    503 when no mail server is configured outside development: an account that can never
    be verified is worse than none. A delivery failure after the account is created is only
    logged; `POST /auth/verify-email/resend` sends the link again.
    """
    if mail_unavailable(settings, mailer):
        return problem(503, MAIL_NOT_CONFIGURED)
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
    try:
        await send_verification(settings, mailer, user)
    except MailDeliveryError as exc:
        log.warning("auth.verification_mail_failed", user_id=str(user.id), error=str(exc))
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
    return Me(id=user.id, email=user.email, email_verified=user.email_verified_at is not None)


async def _verify_email(
    token: str, settings: Settings, session: DbSession
) -> EmailVerification | JSONResponse:
    try:
        grant = verify_email_token(settings.secret, token, time.time())
    except ExpiredEmailToken:
        return problem(400, EXPIRED_LINK, headers=NO_STORE)
    except InvalidEmailToken:
        return problem(400, INVALID_LINK, headers=NO_STORE)
    user = await session.get(User, grant.user_id)
    # A token for an address the account no longer has proves nothing about the new one.
    if user is None or not grant.matches(user.email):
        return problem(400, INVALID_LINK, headers=NO_STORE)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.add(user)
        await session.commit()
    return EmailVerification(
        email=user.email, email_verified=True, email_verified_at=user.email_verified_at
    )


@router.post(
    "/verify-email",
    response_model=EmailVerification,
    summary="Verify an email address with the token from the mailed link",
    responses=problem_responses(400, 422),
)
async def verify_email(
    body: VerifyEmailRequest, settings: SettingsDep, session: DbSession
) -> EmailVerification | JSONResponse:
    """Mark the token's account verified; an already verified account answers the same."""
    return await _verify_email(body.token, settings, session)


@router.get(
    "/verify-email",
    response_model=EmailVerification,
    summary="Verify an email address: the link mailed at registration",
    responses=problem_responses(400, 422),
)
async def verify_email_link(
    token: Annotated[str, Query(min_length=1, max_length=MAX_TOKEN_LENGTH)],
    settings: SettingsDep,
    session: DbSession,
) -> EmailVerification | JSONResponse:
    """The mailed link itself (``?token=``); same effect and answer as the POST."""
    return await _verify_email(token, settings, session)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mail the authenticated user a new verification link",
    responses=problem_responses(401, 409, 503),
)
async def resend_verification(
    user: CurrentUser, settings: SettingsDep, mailer: MailerDep
) -> Response:
    """Send a fresh link to the account's address; 409 when it is already verified."""
    if user.email_verified_at is not None:
        return problem(409, ALREADY_VERIFIED, title="Conflict")
    if mail_unavailable(settings, mailer):
        return problem(503, MAIL_NOT_CONFIGURED)
    try:
        await send_verification(settings, mailer, user)
    except MailDeliveryError as exc:
        log.warning("auth.verification_mail_failed", user_id=str(user.id), error=str(exc))
        return problem(503, MAIL_FAILED)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@jwks_router.get("/.well-known/jwks.json", summary="Public keys that verify our access tokens")
async def jwks(auth: AuthDep) -> JSONResponse:
    return JSONResponse(auth.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
