"""Password reset end to end, over real SMTP (an aiosmtpd server on a free port).

Asking answers the same for any address; the mailed link sets a new password once, within an
hour; a reset signs out every session (refresh-token families), and no token or password
appears in any answer or log line.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr
from sqlmodel import col, select
from structlog.testing import capture_logs

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from api.security import create_auth_state
from api.security.email_tokens import create_email_token
from api.security.password_reset import (
    RESET_TOKEN_LIFETIME,
    ExpiredResetToken,
    InvalidResetToken,
    PasswordResetLimiter,
    create_reset_token,
    set_password_if_unchanged,
    verify_reset_token,
)
from api.security.passwords import Passwords
from api.security.playback import create_token as create_playback_token
from polyvision.ports import free_port
from polyvision.settings import Environment, Settings
from polyvision.storage.metadata.models import RefreshToken, User
from tests.api.mailbox import SmtpSink, serving

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
SENDER = "noreply@polyvision.example"
CLIENT = "198.51.100.7"
LINK = re.compile(r"http://testserver/auth/password-reset\?token=[A-Za-z0-9_.%-]+")
RESET_SUBJECT = "Reset your Polyvision password"
INVALID = "The password reset link is invalid."
EXPIRED = "The password reset link has expired; ask for a new one."
USED = (
    "The password reset link has been used, or the password changed since it was sent; "
    "ask for a new one."
)
TOO_MANY = "Too many password reset requests; try again later."


# --- the SMTP server, the clock and the app ----------------------------------------------


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


def resets_to(smtp: SmtpSink, address: str) -> list[EmailMessage]:
    """The password reset messages delivered to ``address``, oldest first."""
    return smtp.messages_to(address, RESET_SUBJECT)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with serving(SmtpSink(sender=SENDER)) as sink:
        yield sink


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api_settings(api_settings: Settings, smtp: SmtpSink) -> Settings:
    """The shared test settings, mailing this module's SMTP server; the gateway's own
    per-address limit is lifted so that only the reset limiter under test refuses."""
    return api_settings.model_copy(
        update={"smtp_url": SecretStr(smtp.url), "rate_limit_auth_per_minute": 10_000}
    )


async def _prepare(application: FastAPI, settings: Settings, clock: Clock) -> None:
    # Cheap Argon2id parameters keep the suite fast (production uses argon2-cffi's defaults);
    # small limits on a test clock keep the limiter test short.
    application.state.auth = await create_auth_state(
        settings,
        application.state.sessions,
        passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)),
    )
    application.state.password_reset_limiter = PasswordResetLimiter(
        per_account=3, per_address=6, window_s=60, clock=clock
    )


@pytest_asyncio.fixture
async def app(api_settings: Settings, clock: Clock) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        await _prepare(application, api_settings, clock)
        yield application


def _client(application: FastAPI, address: str = CLIENT) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=application, raise_app_exceptions=False, client=(address, 1234)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest_asyncio.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as client:
        yield client


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the same stores, for settings other than the module's."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await _prepare(application, settings, Clock())
        async with _client(application) as client:
            yield client


# --- helpers -----------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["detail"] == detail


async def register(http: httpx.AsyncClient, email: str) -> uuid.UUID:
    """Register ``email``; the account's id, as `GET /auth/me` shows it after a login."""
    response = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    tokens = await login(http, email)
    assert tokens.status_code == 200, tokens.text
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    return uuid.UUID((await http.get("/auth/me", headers=headers)).json()["id"])


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/auth/login", json={"email": email, "password": password})


async def ask(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post("/auth/password-reset", json={"email": email})


async def confirm(
    http: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await http.post(
        "/auth/password-reset/confirm", json={"token": token, "password": password}
    )


def link_in(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    links = LINK.findall(text)
    assert len(links) == 1, text
    link: str = links[0]
    return link


def token_of(link: str) -> str:
    return httpx.URL(link).params["token"]


async def mailed_token(http: httpx.AsyncClient, smtp: SmtpSink, email: str) -> str:
    """Ask for a reset of ``email`` and the token of the link that arrives."""
    before = len(resets_to(smtp, email))
    assert (await ask(http, email)).status_code == 202
    messages = resets_to(smtp, email)
    assert len(messages) == before + 1
    return token_of(link_in(messages[-1]))


async def stored_user(app: FastAPI, user_id: uuid.UUID) -> User:
    async with app.state.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


# --- asking ------------------------------------------------------------------------------


async def test_known_and_unknown_addresses_get_the_same_answer(
    http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    await register(http, "coach@club.example")

    known = await ask(http, "Coach@Club.example")
    unknown = await ask(http, "nobody@club.example")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.json()["link_lifetime_s"] == 3600
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert known.headers["content-length"] == unknown.headers["content-length"]

    # Only the account's address gets mail; nothing goes to addresses without one.
    [message] = resets_to(smtp, "coach@club.example")
    assert message["From"] == SENDER
    assert message["To"] == "coach@club.example"
    assert not resets_to(smtp, "nobody@club.example")
    assert [m["Subject"] for m in smtp.messages()].count(RESET_SUBJECT) == 1

    # A malformed address is a validation error, for any address alike.
    assert (await ask(http, "not-an-address")).status_code == 422


async def test_mail_failure_answers_the_same_and_logs_no_secret(
    api_settings: Settings,
) -> None:
    url = f"smtp://127.0.0.1:{free_port()}?from={SENDER}&timeout=2"
    settings = api_settings.model_copy(update={"smtp_url": SecretStr(url)})
    async with running(settings) as http:
        await register(http, "coach@club.example")
        with capture_logs() as logs:
            known = await ask(http, "coach@club.example")
            unknown = await ask(http, "nobody@club.example")
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        [failure] = [e for e in logs if e["event"] == "auth.password_reset_mail_failed"]
        assert "token" not in str(failure) and "password-reset?" not in str(failure)


@pytest.mark.parametrize("env", [Environment.production, Environment.test])
async def test_no_smtp_outside_development_is_503(api_settings: Settings, env: Environment) -> None:
    settings = api_settings.model_copy(
        update={"env": env, "secret_key": SecretStr("s" * 40), "smtp_url": SecretStr("")}
    )
    async with running(settings) as http:
        assert_problem(
            await ask(http, "anyone@club.example"), 503, "Email delivery is not configured."
        )


async def test_requests_are_rate_limited_per_address_asked_and_per_client(
    app: FastAPI, http: httpx.AsyncClient, smtp: SmtpSink, clock: Clock
) -> None:
    await register(http, "coach@club.example")
    # Three a window per requested address, counted alike with and without an account.
    refusals = []
    for email in ("coach@club.example", "nobody@club.example"):
        for _ in range(3):
            assert (await ask(http, email)).status_code == 202
        refused = await ask(http, email)
        assert_problem(refused, 429, TOO_MANY)
        assert refused.headers["retry-after"] == "60"
        refusals.append(refused.json())
    assert refusals[0] == refusals[1]
    assert len(resets_to(smtp, "coach@club.example")) == 3  # refused requests mail nothing

    # Six a window per client address, whatever the address asked for.
    clock.now += 30
    assert_problem(await ask(http, "third@club.example"), 429, TOO_MANY)
    async with _client(app, "203.0.113.9") as elsewhere:
        assert (await ask(elsewhere, "third@club.example")).status_code == 202
        limited = await ask(elsewhere, "coach@club.example")
        assert_problem(limited, 429, TOO_MANY)
        assert limited.headers["retry-after"] == "30"

    # The window slides: a minute later everyone may ask again.
    clock.now += 31
    assert (await ask(http, "coach@club.example")).status_code == 202
    assert len(resets_to(smtp, "coach@club.example")) == 4


# --- the link ----------------------------------------------------------------------------


async def test_mailed_link_sets_a_new_password(
    app: FastAPI, http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    user_id = await register(http, "coach@club.example")
    assert (await ask(http, "coach@club.example")).status_code == 202
    [message] = resets_to(smtp, "coach@club.example")
    text = message.get_body(("plain",))
    assert text is not None and "1 hour" in text.get_content()
    link = link_in(message)

    # Opening the link checks it and spends nothing (mail scanners open links too).
    for _ in range(2):
        opened = await http.get(link)
        assert opened.status_code == 200, opened.text
        assert opened.headers["cache-control"] == "no-store"
        body = opened.json()
        assert body["email"] == "coach@club.example"
        assert body["confirm"] == "POST /auth/password-reset/confirm"

    done = await confirm(http, token_of(link))
    assert done.status_code == 204, done.text
    assert done.headers["cache-control"] == "no-store"
    assert (await login(http, "coach@club.example", NEW_PASSWORD)).status_code == 200
    assert (await login(http, "coach@club.example", PASSWORD)).status_code == 401

    # Argon2id, as at registration; following the mailed link verified the address.
    user = await stored_user(app, user_id)
    assert user.password_hash.startswith("$argon2id$")
    assert user.email_verified_at is not None


async def test_link_works_once(http: httpx.AsyncClient, smtp: SmtpSink) -> None:
    await register(http, "coach@club.example")
    first = await mailed_token(http, smtp, "coach@club.example")
    second = await mailed_token(http, smtp, "coach@club.example")

    assert (await confirm(http, first)).status_code == 204
    # The same link again, and any link sent before the password changed, are spent.
    assert_problem(await confirm(http, first, "yet another passphrase"), 400, USED)
    assert_problem(await confirm(http, second, "yet another passphrase"), 400, USED)
    assert_problem(await http.get("/auth/password-reset", params={"token": first}), 400, USED)
    assert (await login(http, "coach@club.example", NEW_PASSWORD)).status_code == 200

    # A link sent after the change works (once).
    third = await mailed_token(http, smtp, "coach@club.example")
    assert (await confirm(http, third, "yet another passphrase")).status_code == 204
    assert (await login(http, "coach@club.example", "yet another passphrase")).status_code == 200


async def test_concurrent_uses_of_one_link_change_the_password_once(
    app: FastAPI, http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    user_id = await register(http, "coach@club.example")
    token = await mailed_token(http, smtp, "coach@club.example")
    answers = await asyncio.gather(
        confirm(http, token, "first passphrase here"),
        confirm(http, token, "second passphrase here"),
    )
    assert sorted(a.status_code for a in answers) == [204, 400]
    [loser] = [a for a in answers if a.status_code == 400]
    assert_problem(loser, 400, USED)
    [winner] = [a for a in answers if a.status_code == 204]
    password = "first passphrase here" if answers[0] is winner else "second passphrase here"
    assert (await login(http, "coach@club.example", password)).status_code == 200

    # The compare-and-set itself: a stale hash changes nothing.
    async with app.state.sessions() as session:
        assert not await set_password_if_unchanged(session, user_id, "$argon2id$stale", "x")
        await session.commit()
    assert (await stored_user(app, user_id)).password_hash != "x"


async def test_expired_link_is_refused(
    app: FastAPI, http: httpx.AsyncClient, api_settings: Settings
) -> None:
    user_id = await register(http, "late@club.example")
    user = await stored_user(app, user_id)
    issued = time.time() - RESET_TOKEN_LIFETIME.total_seconds() - 1
    token = create_reset_token(
        api_settings.secret, user_id, "late@club.example", user.password_hash, issued
    )
    assert_problem(await confirm(http, token), 400, EXPIRED)
    assert_problem(await http.get("/auth/password-reset", params={"token": token}), 400, EXPIRED)
    assert (await login(http, "late@club.example")).status_code == 200


def test_token_lifetime_is_one_hour_on_an_injected_clock() -> None:
    secret, user_id, issued = b"k" * 32, uuid.uuid4(), 1_700_000_000.0
    token = create_reset_token(secret, user_id, "a@b.example", "$argon2id$hash", issued)
    grant = verify_reset_token(secret, token, issued + 3599)
    assert grant.user_id == user_id
    assert grant.for_address("a@b.example") and not grant.for_address("c@b.example")
    assert grant.for_password(secret, "$argon2id$hash")
    assert not grant.for_password(secret, "$argon2id$other")
    assert not grant.for_password(b"j" * 32, "$argon2id$hash")
    with pytest.raises(ExpiredResetToken):
        verify_reset_token(secret, token, issued + 3600)
    with pytest.raises(InvalidResetToken):
        verify_reset_token(b"j" * 32, token, issued)
    # The readable payload names neither the address nor anything of the password hash.
    payload = token.split(".")[0]
    assert "a@b.example" not in token and "argon2" not in payload


def _tamper(token: str) -> list[str]:
    payload, signature = token.split(".")
    flip = "A" if payload[5] != "A" else "B"
    return [
        f"{payload[:5]}{flip}{payload[6:]}.{signature}",  # payload changed
        f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",  # signature
        payload,  # no signature
        f"{payload}.",
        "not-a-token",
        f"{payload}.{signature}.extra",
    ]


async def test_tampered_foreign_and_orphaned_tokens_are_refused(
    app: FastAPI, http: httpx.AsyncClient, smtp: SmtpSink, api_settings: Settings
) -> None:
    user_id = await register(http, "keeper@club.example")
    token = await mailed_token(http, smtp, "keeper@club.example")
    stored = await stored_user(app, user_id)
    secret, now = api_settings.secret, time.time()
    refused = [
        *_tamper(token),
        # Signed with another server's secret.
        create_reset_token(b"another-secret", user_id, stored.email, stored.password_hash, now),
        # Signed with our secret, for other purposes: email verification, playback.
        create_email_token(secret, user_id, "keeper@club.example", now),
        create_playback_token(secret, "orgs/a/", str(user_id), int(now) + 60),
        # Ours, but for another address or an account that does not exist.
        create_reset_token(secret, user_id, "other@club.example", stored.password_hash, now),
        create_reset_token(secret, uuid.uuid4(), stored.email, stored.password_hash, now),
    ]
    for bad in refused:
        assert_problem(await confirm(http, bad), 400, INVALID)
        checked = await http.get("/auth/password-reset", params={"token": bad})
        assert_problem(checked, 400, INVALID)
        assert "no-store" in checked.headers["cache-control"]
    too_long = await confirm(http, "x" * 600)
    assert too_long.status_code == 422  # refused by the body's bounds
    assert (await login(http, "keeper@club.example")).status_code == 200

    # The genuine link stops working once its account is deactivated or deleted.
    async with app.state.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.is_active = False
        session.add(user)
        await session.commit()
    assert_problem(await confirm(http, token), 400, INVALID)
    assert (await ask(http, "keeper@club.example")).status_code == 202
    assert len(resets_to(smtp, "keeper@club.example")) == 1  # nothing mailed to it now
    async with app.state.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        await session.delete(user)
        await session.commit()
    assert_problem(await confirm(http, token), 400, INVALID)


async def test_bad_new_password_is_422_and_spends_nothing(
    http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    await register(http, "coach@club.example")
    token = await mailed_token(http, smtp, "coach@club.example")
    for password in ("tiny-pw9", "x" * 1025):
        refused = await confirm(http, token, password)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert token not in refused.text and password not in refused.text
    missing = await http.post("/auth/password-reset/confirm", json={"token": token})
    assert missing.status_code == 422
    assert (await confirm(http, token)).status_code == 204


# --- what a reset changes ----------------------------------------------------------------


async def test_reset_revokes_every_refresh_token_family(
    app: FastAPI, http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    user_id = await register(http, "coach@club.example")
    laptop = (await login(http, "coach@club.example")).json()
    phone = (await login(http, "coach@club.example")).json()
    rotated = await http.post("/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert rotated.status_code == 200
    phone = rotated.json()

    token = await mailed_token(http, smtp, "coach@club.example")
    assert (await confirm(http, token)).status_code == 204

    for stolen in (laptop, phone):
        refused = await http.post("/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
        assert refused.status_code == 401, refused.text
    async with app.state.sessions() as session:
        rows = (
            await session.exec(select(RefreshToken).where(col(RefreshToken.user_id) == user_id))
        ).all()
    # Four: `register` logged in once too.
    assert len(rows) == 4 and all(row.revoked_at is not None for row in rows)

    # Access tokens are not looked up: one already issued lives out its 15 minutes.
    headers = {"Authorization": f"Bearer {laptop['access_token']}"}
    assert (await http.get("/auth/me", headers=headers)).status_code == 200
    # A new login starts a new, working session.
    fresh = (await login(http, "coach@club.example", NEW_PASSWORD)).json()
    again = await http.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.status_code == 200


async def test_no_token_or_password_in_answers_or_logs(
    http: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    await register(http, "coach@club.example")
    with capture_logs() as logs:
        token = await mailed_token(http, smtp, "coach@club.example")
        answers = [
            await confirm(http, token),
            await confirm(http, token),  # used
            await confirm(http, token[:-3] + "AAA"),  # tampered
        ]
    logged = repr(logs)
    assert [e for e in logs if e["event"] == "mail.sent"]
    assert [e for e in logs if e["event"] == "auth.password_reset"]
    for secret in (token, token.split(".")[0], token.split(".")[1], NEW_PASSWORD):
        assert secret not in logged
        assert all(secret not in answer.text for answer in answers)


def test_reset_operations_are_documented(app: FastAPI) -> None:
    paths: dict[str, Any] = app.openapi()["paths"]
    asked = paths["/auth/password-reset"]["post"]
    assert set(asked["responses"]) >= {"202", "413", "422", "429", "503"}
    assert "Retry-After" in asked["responses"]["429"]["headers"]
    assert set(paths["/auth/password-reset"]["get"]["responses"]) >= {"200", "400", "422"}
    confirmed = paths["/auth/password-reset/confirm"]["post"]
    assert set(confirmed["responses"]) >= {"204", "400", "413", "422"}
    assert "security" not in asked and "security" not in confirmed
