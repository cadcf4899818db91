"""Email verification end to end, over real SMTP (an aiosmtpd server on a free port).

Register mails a link; following it verifies the address; only verified accounts can be
added to another organization, so registering someone else's address first captures nothing.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import FastAPI
from pydantic import SecretStr
from structlog.testing import capture_logs

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from api.routes.auth import REGISTRATION_ACCEPTED
from api.security.email_tokens import create_email_token
from api.security.playback import create_token as create_playback_token
from polyvision.mail import MailConfigError, Mailer, SmtpConfig, parse_smtp_url
from polyvision.ports import free_port
from polyvision.settings import Environment, Settings
from polyvision.storage.metadata.models import Role, User
from tests.api.factories import Factory
from tests.api.mailbox import SmtpSink, serving

PASSWORD = "correct horse battery"
SENDER = "noreply@polyvision.example"
SMTP_USER = "mailer"
SMTP_PASSWORD = "p@ss word"  # percent-encoded in the URL
LINK = re.compile(r"http://testserver/auth/verify-email\?token=[A-Za-z0-9_.%-]+")
INVALID_LINK = "The verification link is invalid."
EXPIRED_LINK = "The verification link has expired; ask for a new one."
UNVERIFIED = "This account has not verified its email address yet."
NOT_CONFIGURED = "Email delivery is not configured."

# The test server asks for AUTH over plain TCP (to prove the mailer logs in); aiosmtpd warns.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


# --- the SMTP server ---------------------------------------------------------------------


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(sender=SENDER, userinfo=f"{SMTP_USER}:p%40ss%20word@")
    with serving(
        sink,
        authenticator=_authenticate,
        auth_required=True,  # proves the mailer logs in with the URL's credentials
        auth_require_tls=False,
    ):
        yield sink


@pytest.fixture
def api_settings(api_settings: Settings, smtp: SmtpSink) -> Settings:
    """The shared test settings, sending mail to this module's SMTP server."""
    return api_settings.model_copy(update={"smtp_url": SecretStr(smtp.url)})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Another app on the same stores, for settings other than the module's."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


# --- helpers -----------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["detail"] == detail


async def register(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """Register ``email``; the account as `GET /auth/me` shows it (registration's own answer
    is the same for every address)."""
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert response.json() == REGISTRATION_ACCEPTED.model_dump()
    me = await client.get("/auth/me", headers=await login(client, email))
    assert me.status_code == 200, me.text
    body: dict[str, Any] = me.json()
    return body


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


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


async def is_verified(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    me = await client.get("/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    verified: bool = me.json()["email_verified"]
    return verified


# --- the flow ----------------------------------------------------------------------------


async def test_register_mails_a_link_that_verifies(
    client: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    created = await register(client, "Coach@Club.example")
    assert created["email"] == "coach@club.example"
    assert created["email_verified"] is False

    [envelope] = smtp.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["coach@club.example"]
    [message] = smtp.messages_to("coach@club.example")
    assert message["From"] == SENDER
    assert message["To"] == "coach@club.example"
    assert "Confirm your email address" in message["Subject"]
    link = link_in(message)

    headers = await login(client, "coach@club.example")  # unverified accounts log in
    assert not await is_verified(client, headers)

    followed = await client.get(link)
    assert followed.status_code == 200, followed.text
    body = followed.json()
    assert body["email"] == "coach@club.example"
    assert body["email_verified"] is True
    assert await is_verified(client, headers)

    # Following it again, by the link or by POST, changes nothing and answers the same.
    again = await client.get(link)
    assert again.status_code == 200
    assert again.json() == body
    posted = await client.post("/auth/verify-email", json={"token": token_of(link)})
    assert posted.status_code == 200
    assert posted.json() == body


async def test_registering_a_registered_address_mails_its_owner_a_note(
    client: httpx.AsyncClient, smtp: SmtpSink
) -> None:
    await register(client, "coach@club.example")
    again = await client.post(
        "/auth/register", json={"email": "Coach@Club.example", "password": "another passphrase"}
    )
    # The same answer as for a new address; only the owner's mailbox learns the difference.
    assert again.status_code == 201
    assert again.json() == REGISTRATION_ACCEPTED.model_dump()
    first, note = smtp.messages_to("coach@club.example")
    assert "Confirm your email address" in first["Subject"]
    assert note["Subject"] == "Your Polyvision account already exists"
    text = note.get_body(("plain",))
    assert text is not None
    assert "/auth/password-reset" in text.get_content()
    assert not LINK.findall(text.get_content())  # no verification link for the stranger


async def test_unverified_account_can_create_its_own_organization(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "founder@club.example")
    headers = await login(client, "founder@club.example")
    slug = f"org-{uuid.uuid4().hex[:10]}"
    created = await client.post("/orgs", json={"name": "Own", "slug": slug}, headers=headers)
    assert created.status_code == 201, created.text


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
        "x" * 600,
    ]


async def test_tampered_and_foreign_tokens_are_refused(
    client: httpx.AsyncClient, smtp: SmtpSink, api_settings: Settings
) -> None:
    created = await register(client, "keeper@club.example")
    token = token_of(link_in(smtp.messages_to("keeper@club.example")[0]))
    user_id = uuid.UUID(created["id"])
    now = time.time()
    refused = [
        *_tamper(token),
        # Signed with another server's secret.
        create_email_token(b"another-secret", user_id, "keeper@club.example", now),
        # Signed with our secret, but for another purpose (a playback grant).
        create_playback_token(api_settings.secret, "orgs/a/", str(user_id), int(now) + 60),
    ]
    for bad in refused:
        response = await client.post("/auth/verify-email", json={"token": bad})
        if len(bad) > 512:
            assert response.status_code == 422  # refused by the body's bounds
            continue
        assert_problem(response, 400, INVALID_LINK)
        linked = await client.get("/auth/verify-email", params={"token": bad})
        assert_problem(linked, 400, INVALID_LINK)
        assert "no-store" in linked.headers["cache-control"]
    headers = await login(client, "keeper@club.example")
    assert not await is_verified(client, headers)


async def test_expired_token_is_refused(client: httpx.AsyncClient, api_settings: Settings) -> None:
    created = await register(client, "late@club.example")
    issued = time.time() - timedelta(hours=24, seconds=1).total_seconds()
    token = create_email_token(
        api_settings.secret, uuid.UUID(created["id"]), "late@club.example", issued
    )
    response = await client.get("/auth/verify-email", params={"token": token})
    assert_problem(response, 400, EXPIRED_LINK)
    headers = await login(client, "late@club.example")
    assert not await is_verified(client, headers)


async def test_token_verifies_only_its_user_and_address(
    client: httpx.AsyncClient, app: FastAPI, smtp: SmtpSink, api_settings: Settings
) -> None:
    victim = await register(client, "coach@club.example")
    attacker = await register(client, "mallory@evil.example")
    attacker_token = token_of(link_in(smtp.messages_to("mallory@evil.example")[0]))
    now = time.time()

    # A token names one account and one address; pairing them differently fails.
    crossed = [
        create_email_token(
            api_settings.secret, uuid.UUID(victim["id"]), "mallory@evil.example", now
        ),
        create_email_token(
            api_settings.secret, uuid.UUID(attacker["id"]), "coach@club.example", now
        ),
        create_email_token(api_settings.secret, uuid.uuid4(), "coach@club.example", now),
    ]
    for token in crossed:
        assert_problem(
            await client.post("/auth/verify-email", json={"token": token}), 400, INVALID_LINK
        )

    # The attacker's own token verifies only the attacker.
    verified = await client.post("/auth/verify-email", json={"token": attacker_token})
    assert verified.status_code == 200
    assert verified.json()["email"] == "mallory@evil.example"
    assert not await is_verified(client, await login(client, "coach@club.example"))

    # Changing the address makes a token issued for the old one useless.
    victim_token = token_of(link_in(smtp.messages_to("coach@club.example")[0]))
    async with app.state.sessions() as session:
        user = await session.get(User, uuid.UUID(victim["id"]))
        assert user is not None
        user.email = "coach@new-club.example"
        session.add(user)
        await session.commit()
    stale = await client.post("/auth/verify-email", json={"token": victim_token})
    assert_problem(stale, 400, INVALID_LINK)


async def test_resend_mails_a_new_link(client: httpx.AsyncClient, smtp: SmtpSink) -> None:
    await register(client, "analyst@club.example")
    headers = await login(client, "analyst@club.example")

    resent = await client.post("/auth/verify-email/resend", headers=headers)
    assert resent.status_code == 204, resent.text
    first, second = smtp.messages_to("analyst@club.example")
    assert first["Message-ID"] != second["Message-ID"]
    followed = await client.get(link_in(second))
    assert followed.status_code == 200
    assert await is_verified(client, headers)

    verified = await client.post("/auth/verify-email/resend", headers=headers)
    assert_problem(verified, 409, "This email address is already verified.")
    assert len(smtp.messages_to("analyst@club.example")) == 2
    anonymous = await client.post("/auth/verify-email/resend")
    assert anonymous.status_code == 401


async def test_member_add_needs_a_verified_address(
    client: httpx.AsyncClient, factory: Factory, smtp: SmtpSink
) -> None:
    org = await factory.org(roles=(Role.owner,))
    owner = org.member(Role.owner).headers
    # Someone registers the coach's address before the club adds it.
    await register(client, "coach@club.example")
    body = {"email": "coach@club.example", "role": "analyst"}

    refused = await client.post(f"/orgs/{org.id}/members", json=body, headers=owner)
    assert_problem(refused, 409, UNVERIFIED)
    members = await client.get(f"/orgs/{org.id}/members", headers=owner)
    assert "coach@club.example" not in {m["email"] for m in members.json()}
    coach = await login(client, "coach@club.example")
    assert (await client.get(f"/orgs/{org.id}", headers=coach)).status_code == 404

    # Only whoever reads the coach's mailbox can verify it; then the add works.
    followed = await client.get(link_in(smtp.messages_to("coach@club.example")[0]))
    assert followed.status_code == 200
    added = await client.post(f"/orgs/{org.id}/members", json=body, headers=owner)
    assert added.status_code == 201, added.text
    assert (await client.get(f"/orgs/{org.id}", headers=coach)).json()["role"] == "analyst"


async def test_member_add_of_unverified_factory_user_is_409(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    user = await factory.user(verified=False)
    response = await client.post(
        f"/orgs/{org.id}/members",
        json={"email": user.email, "role": "viewer"},
        headers=org.member(Role.admin).headers,
    )
    assert_problem(response, 409, UNVERIFIED)


# --- without a mail server ---------------------------------------------------------------


@pytest.mark.parametrize("env", [Environment.production, Environment.test])
async def test_no_smtp_outside_development_refuses_registration(
    api_settings: Settings, env: Environment
) -> None:
    settings = api_settings.model_copy(
        update={"env": env, "secret_key": SecretStr("s" * 40), "smtp_url": SecretStr("")}
    )
    async with running(settings) as (application, http):
        response = await http.post(
            "/auth/register", json={"email": "coach@club.example", "password": PASSWORD}
        )
        assert_problem(response, 503, NOT_CONFIGURED)
        login_attempt = await http.post(
            "/auth/login", json={"email": "coach@club.example", "password": PASSWORD}
        )
        assert login_attempt.status_code == 401  # no account was created

        user = await Factory(application).user(verified=False)
        headers = {"Authorization": f"Bearer {application.state.auth.access.issue(user.id)}"}
        resend = await http.post("/auth/verify-email/resend", headers=headers)
        assert_problem(resend, 503, NOT_CONFIGURED)


async def test_no_smtp_in_development_logs_the_link(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"smtp_url": SecretStr("")})
    assert settings.env is Environment.development
    async with running(settings) as (_, http):
        with capture_logs() as logs:
            await register(http, "dev@club.example")
        [entry] = [e for e in logs if e["event"] == "mail.not_sent"]
        assert entry["to"] == "dev@club.example"
        [link] = LINK.findall(entry["body"])
        followed = await http.get(link)
        assert followed.status_code == 200
        assert followed.json()["email_verified"] is True


async def test_unreachable_smtp_keeps_the_account_and_resend_says_503(
    api_settings: Settings,
) -> None:
    url = f"smtp://127.0.0.1:{free_port()}?from={SENDER}&timeout=2"
    async with running(api_settings.model_copy(update={"smtp_url": SecretStr(url)})) as (_, http):
        with capture_logs() as logs:
            await register(http, "coach@club.example")
        assert [e for e in logs if e["event"] == "auth.verification_mail_failed"]
        headers = await login(http, "coach@club.example")
        resend = await http.post("/auth/verify-email/resend", headers=headers)
        assert_problem(resend, 503, "The email could not be sent; try again shortly.")


# --- the mailer's URL --------------------------------------------------------------------


def test_smtp_url_forms() -> None:
    assert parse_smtp_url("smtp://mail.example?from=a@b.example") == SmtpConfig(
        host="mail.example", port=25, sender="a@b.example"
    )
    starttls = parse_smtp_url(
        "smtp://us%40er:p%40ss@mail.example:587?starttls=1&from=a@b.example&timeout=3"
    )
    assert starttls == SmtpConfig(
        host="mail.example",
        port=587,
        sender="a@b.example",
        username="us@er",
        password="p@ss",
        starttls=True,
        timeout_s=3.0,
    )
    assert "p@ss" not in repr(starttls)
    implicit = parse_smtp_url("smtps://u:p@mail.example?from=a@b.example")
    assert (implicit.port, implicit.implicit_tls, implicit.starttls) == (465, True, False)
    assert not Mailer.from_url("").configured
    assert Mailer.from_url("smtp://mail.example?from=a@b.example").configured


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example?from=a@b.example",
        "smtp://?from=a@b.example",
        "smtp://mail.example",
        "smtp://mail.example?from=nobody",
        "smtp://mail.example:notaport?from=a@b.example",
        "smtp://mail.example?from=a@b.example&timeout=soon",
        "smtps://mail.example?starttls=1&from=a@b.example",
    ],
)
def test_malformed_smtp_url_is_refused(url: str) -> None:
    with pytest.raises(MailConfigError):
        parse_smtp_url(url)
