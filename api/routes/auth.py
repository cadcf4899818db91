"""Register, verify the email address, log in, refresh, log out, reset a forgotten password;
the JWKS of our tokens.

Registration mails a verification link (`api.security.email_tokens`); an account that never
followed it can still log in and create its own organization, but cannot be added to anyone
else's (`api.routes.organizations.add_member`), so registering someone else's address first
captures nothing.

Registration answers the same for an address with and without an account (a registered one is
mailed a note instead of a link), so neither its answer nor its timing says which addresses have
accounts. Failed logins are limited per (account, client address), per client address, and per
account from addresses that never logged in to it (`api.security.sliding_window.LoginLimiter`):
someone who knows an owner's address cannot lock the owner out of their own address, and guessing
from many addresses is still capped. Client addresses come from forwarded headers only when the
peer is one of ``PV_TRUSTED_PROXIES``.

A forgotten password is reset by a mailed link (`api.security.password_reset`): one hour,
single-use (the token is bound to the password hash it replaces), and answered the same for
addresses with and without an account. A reset revokes every refresh-token family of the
account; access tokens already issued live out their 15 minutes.

`router` is mounted at ``/auth``; `jwks_router` serves ``/.well-known/jwks.json`` at the root.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
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
from api.security.password_reset import (
    RESET_TOKEN_LIFETIME,
    ExpiredResetToken,
    InvalidResetToken,
    PasswordResetLimiter,
    ResetGrant,
    create_reset_token,
    revoke_all_refresh_tokens,
    set_password_if_unchanged,
    verify_reset_token,
)
from api.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from api.security.refresh import InvalidRefreshToken
from polyvision.mail import MailDeliveryError, Mailer
from polyvision.settings import Environment, Settings
from polyvision.storage.metadata.models import User, utcnow

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
RESET_PATH = "/auth/password-reset"
INVALID_RESET_LINK = "The password reset link is invalid."
EXPIRED_RESET_LINK = "The password reset link has expired; ask for a new one."
USED_RESET_LINK = (
    "The password reset link has been used, or the password changed since it was sent; "
    "ask for a new one."
)
TOO_MANY_RESETS = "Too many password reset requests; try again later."
# Bound to the largest token `api.security.email_tokens` and `.password_reset` accept.
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


def _hours(lifetime_s: float) -> str:
    hours = int(lifetime_s // 3600)
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


RESET_LINK_LIFETIME = _hours(RESET_TOKEN_LIFETIME.total_seconds())


class RegistrationAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": (
                        "A message is on its way to this address: follow its link to verify "
                        "the account, then log in."
                    ),
                    "link_lifetime_s": int(EMAIL_TOKEN_LIFETIME.total_seconds()),
                }
            ]
        }
    )

    detail: str
    link_lifetime_s: int


REGISTRATION_ACCEPTED = RegistrationAccepted(
    detail=(
        "A message is on its way to this address: follow its link to verify the account, "
        "then log in. If the address already had an account, the message says so instead and "
        "nothing changed."
    ),
    link_lifetime_s=int(EMAIL_TOKEN_LIFETIME.total_seconds()),
)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "coach@fc-example.org"}]})

    email: Email


class PasswordResetAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": (
                        "If an account uses this address, a password reset link is on its "
                        f"way to it. The link works once, for {RESET_LINK_LIFETIME}."
                    ),
                    "link_lifetime_s": int(RESET_TOKEN_LIFETIME.total_seconds()),
                }
            ]
        }
    )

    detail: str
    link_lifetime_s: int


RESET_ACCEPTED = PasswordResetAccepted(
    detail=(
        "If an account uses this address, a password reset link is on its way to it. "
        f"The link works once, for {RESET_LINK_LIFETIME}."
    ),
    link_lifetime_s=int(RESET_TOKEN_LIFETIME.total_seconds()),
)


class PasswordResetConfirmRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "MQpyZXNldC1wYXNzd29yZAo....3q2-7wEAAABf",
                    "password": "a new long passphrase",
                }
            ]
        }
    )

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)
    # The rules of registration.
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


class PasswordResetLink(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "coach@fc-example.org",
                    "expires_at": "2026-11-25T19:00:00Z",
                    "confirm": "POST /auth/password-reset/confirm",
                }
            ]
        }
    )

    email: str
    expires_at: datetime
    confirm: str = f"POST {RESET_PATH}/confirm"


class Me(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool


def _client_address(request: Request) -> str:
    # Behind a proxy listed in PV_TRUSTED_PROXIES the app's proxy-headers layer (`api.app`) has
    # put the real client here; anyone else's X-Forwarded-For is ignored.
    return request.client.host if request.client else "unknown"


def mail_unavailable(settings: Settings, mailer: Mailer) -> bool:
    """Whether mail would only be logged where that is not acceptable (outside development)."""
    return not mailer.configured and settings.env is not Environment.development


def _mailed_link(settings: Settings, path: str, token: str) -> str:
    """The public URL of ``path`` carrying ``token``, as the verification and reset mails put it."""
    return f"{settings.api_public_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def verification_link(settings: Settings, user: User, now: float) -> str:
    """The link that verifies ``user``'s current address, valid `EMAIL_TOKEN_LIFETIME`."""
    return _mailed_link(
        settings, VERIFY_PATH, create_email_token(settings.secret, user.id, user.email, now)
    )


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


def password_reset_link(
    settings: Settings, user_id: uuid.UUID, email: str, password_hash: str, now: float
) -> str:
    """The link that sets a new password for ``user_id`` once, valid `RESET_TOKEN_LIFETIME`."""
    token = create_reset_token(settings.secret, user_id, email, password_hash, now)
    return _mailed_link(settings, RESET_PATH, token)


async def send_password_reset(mailer: Mailer, email: str, link: str) -> None:
    """Mail ``link`` (from `password_reset_link`) to ``email``.

    Raises:
        MailDeliveryError: The SMTP server could not be reached or refused the message.
    """
    text = (
        "Someone, hopefully you, asked to reset the password of the Polyvision account that "
        "uses this email address.\n\n"
        "Choose a new password with this link:\n\n"
        f"{link}\n\n"
        f"The link works once, for {RESET_LINK_LIFETIME}. Setting a new password signs out "
        "every session of the account.\n\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    await mailer.send(email, "Reset your Polyvision password", text)


async def _mail_reset_link(
    settings: Settings, mailer: Mailer, user_id: uuid.UUID, email: str, password_hash: str
) -> None:
    # Runs after the answer is sent, so an address with an account answers no later than one
    # without; a failure can only be logged (the answer must not differ either).
    link = password_reset_link(settings, user_id, email, password_hash, time.time())
    try:
        await send_password_reset(mailer, email, link)
    except MailDeliveryError as exc:
        log.warning("auth.password_reset_mail_failed", user_id=str(user_id), error=str(exc))


def get_reset_limiter(request: Request) -> PasswordResetLimiter:
    """The app's limiter of reset requests, made on first use (a test may set its own)."""
    state = request.app.state
    limiter = getattr(state, "password_reset_limiter", None)
    if not isinstance(limiter, PasswordResetLimiter):
        limiter = PasswordResetLimiter()
        state.password_reset_limiter = limiter
    return limiter


ResetLimiterDep = Annotated[PasswordResetLimiter, Depends(get_reset_limiter)]

_RESET_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        **problem_responses(429)[429],
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before the next request.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    }
}


async def send_already_registered(settings: Settings, mailer: Mailer, email: str) -> None:
    """Tell the owner of ``email`` that someone tried to register it again.

    Raises:
        MailDeliveryError: The SMTP server could not be reached or refused the message.
    """
    base = settings.api_public_url.rstrip("/")
    text = (
        "Someone, hopefully you, tried to create a Polyvision account with this email address, "
        "which already has one. Nothing was changed.\n\n"
        f"If it was you, log in instead. If you do not know the password, reset it: "
        f"POST {base}{RESET_PATH} with this address mails you a link.\n\n"
        "If it was not you, ignore this message.\n"
    )
    await mailer.send(email, "Your Polyvision account already exists", text)


async def _mail_registration(
    settings: Settings, mailer: Mailer, user: User | None, email: str
) -> None:
    # Runs after the answer is sent, so a new address answers no later than a registered
    # one; a failure can only be logged (the answer must not differ either).
    try:
        if user is not None:
            await send_verification(settings, mailer, user)
        else:
            await send_already_registered(settings, mailer, email)
    except MailDeliveryError as exc:
        event = "verification" if user is not None else "already_registered"
        log.warning(f"auth.{event}_mail_failed", error=str(exc))


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegistrationAccepted,
    summary="Register an address: a verification link (or a note) is mailed to it",
    responses=problem_responses(422, 503),
)
async def register(
    body: RegisterRequest,
    background: BackgroundTasks,
    auth: AuthDep,
    session: DbSession,
    settings: SettingsDep,
    mailer: MailerDep,
) -> RegistrationAccepted | JSONResponse:
    """Create an unverified account and mail a verification link to its address.

    The answer is the same 201 and body whether or not the address already has an account,
    so registration cannot be used to learn which addresses have one: a new address gets the
    verification link, a registered one a note saying so (and how to reset the password),
    nothing else changes for it. Both paths hash the password (the same Argon2id work) and
    mail after the answer is sent, so their timing does not tell them apart either. Log in
    afterwards to learn the account's id (`GET /auth/me`).

    503 when no mail server is configured outside development: an account that can never
    be verified is worse than none. A delivery failure is only logged;
    `POST /auth/verify-email/resend` sends the link again.
    """
    if mail_unavailable(settings, mailer):
        return problem(503, MAIL_NOT_CONFIGURED)
    password_hash = await auth.passwords.hash(body.password)
    existing = (await session.exec(select(User).where(col(User.email) == body.email))).first()
    created: User | None = None
    if existing is None:
        user = User(email=body.email, full_name=body.full_name, password_hash=password_hash)
        session.add(user)
        try:
            await session.commit()
            created = user
        except IntegrityError:  # lost a race with a concurrent registration of the address
            await session.rollback()
    background.add_task(_mail_registration, settings, mailer, created, body.email)
    return REGISTRATION_ACCEPTED


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
    """Trade an email and password for a token pair.

    A wrong password and an unknown address answer the same 401. Failures are limited by
    `api.security.sliding_window.LoginLimiter` (429 with ``Retry-After``): per account and
    client address, per client address, and per account from addresses that never logged in
    to it; so guessing is slow, and nobody's failures refuse the owner from their own address.
    """
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
    auth.limiter.succeeded(body.email, address)
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


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
    summary="Mail a single-use, one-hour password reset link (same answer for any address)",
    responses={**problem_responses(422, 503), **_RESET_RATE_LIMITED},
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    background: BackgroundTasks,
    session: DbSession,
    settings: SettingsDep,
    mailer: MailerDep,
    limiter: ResetLimiterDep,
) -> PasswordResetAccepted | JSONResponse:
    """Mail a reset link to the address if an active account uses it.

    The answer is 202 with the same body whether or not an account uses the address, and it
    does not wait for the mail: the link is made and sent after the answer. Requests are
    limited per requested address and per client address (429 with ``Retry-After``), counted
    alike for addresses with and without an account. 503 when no mail server is configured
    outside development.
    """
    if mail_unavailable(settings, mailer):
        return problem(503, MAIL_NOT_CONFIGURED)
    address = _client_address(request)
    wait = limiter.retry_after(body.email, address)
    if wait is not None:
        return problem(429, TOO_MANY_RESETS, headers={"Retry-After": str(wait)})
    limiter.hit(body.email, address)
    user = (await session.exec(select(User).where(col(User.email) == body.email))).first()
    if user is not None and user.is_active:
        background.add_task(
            _mail_reset_link, settings, mailer, user.id, user.email, user.password_hash
        )
    return RESET_ACCEPTED


async def _reset_target(
    token: str, settings: Settings, session: DbSession
) -> tuple[User, ResetGrant] | JSONResponse:
    """The account a reset token may still change, or the problem that refuses it."""
    try:
        grant = verify_reset_token(settings.secret, token, time.time())
    except ExpiredResetToken:
        return problem(400, EXPIRED_RESET_LINK, headers=NO_STORE)
    except InvalidResetToken:
        return problem(400, INVALID_RESET_LINK, headers=NO_STORE)
    user = await session.get(User, grant.user_id)
    # Deleted, deactivated, or no longer at the address the link was mailed to.
    if user is None or not user.is_active or not grant.for_address(user.email):
        return problem(400, INVALID_RESET_LINK, headers=NO_STORE)
    if not grant.for_password(settings.secret, user.password_hash):
        return problem(400, USED_RESET_LINK, headers=NO_STORE)
    return user, grant


@router.get(
    "/password-reset",
    response_model=PasswordResetLink,
    summary="Check a password reset link: the link mailed by POST /auth/password-reset",
    responses=problem_responses(400, 422),
)
async def check_password_reset_link(
    token: Annotated[str, Query(min_length=1, max_length=MAX_TOKEN_LENGTH)],
    response: Response,
    settings: SettingsDep,
    session: DbSession,
) -> PasswordResetLink | JSONResponse:
    """Whether the link still works, for which address and until when; it changes nothing
    (mail scanners that open links must not spend it). The new password is set with
    ``POST /auth/password-reset/confirm`` and the link's token."""
    target = await _reset_target(token, settings, session)
    if isinstance(target, JSONResponse):
        return target
    user, grant = target
    response.headers.update(NO_STORE)
    return PasswordResetLink(
        email=user.email, expires_at=datetime.fromtimestamp(grant.expires_at, UTC)
    )


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a password reset link's token (signs out every session)",
    responses=problem_responses(400, 422),
)
async def confirm_password_reset(
    body: PasswordResetConfirmRequest, auth: AuthDep, session: DbSession, settings: SettingsDep
) -> Response:
    """Set the account's password (Argon2id; the rules of registration) and spend the link.

    The link works once: it is bound to the password hash it replaces, so this reset (or any
    other password change) makes it, and every other link sent before, useless. Every
    refresh-token family of the account is revoked, so every session has to log in again;
    access tokens already issued stay valid until they expire (15 minutes at most).
    Following the link proves the address, so an unverified one becomes verified.

    400 when the link is tampered with, expired, already used, or its account is gone.
    """
    target = await _reset_target(body.token, settings, session)
    if isinstance(target, JSONResponse):
        return target
    user, _ = target
    user_id, email, old_hash = user.id, user.email, user.password_hash
    new_hash = await auth.passwords.hash(body.password)
    changed = await set_password_if_unchanged(
        session, user_id, old_hash, new_hash, verify_email=user.email_verified_at is None
    )
    if not changed:  # a concurrent use of the same link won
        await session.rollback()
        return problem(400, USED_RESET_LINK, headers=NO_STORE)
    revoked = await revoke_all_refresh_tokens(session, user_id)
    await session.commit()
    auth.limiter.forgive(email)  # failed logins before the reset no longer count
    log.info("auth.password_reset", user_id=str(user_id), refresh_tokens_revoked=revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)


@jwks_router.get("/.well-known/jwks.json", summary="Public keys that verify our access tokens")
async def jwks(auth: AuthDep) -> JSONResponse:
    return JSONResponse(auth.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
