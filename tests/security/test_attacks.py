"""Attacks the API must refuse, beyond those `tests/api` already covers (see RELIABILITY.md):
hostile JWT headers, parallel refresh, login timing by construction, mass assignment,
analytics parameters that try to widen the organization or inject SQL, and oversized
reprocess bodies."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api.problems import PROBLEM_MEDIA_TYPE
from api.security import AUDIENCE
from polyvision.storage.metadata.models import (
    Match,
    MatchStatus,
    Membership,
    Role,
    Team,
    User,
)
from tests.api.factories import Factory, TestOrg

ISSUER = "http://testserver"
PASSWORD = "correct horse battery staple"


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    return body


def _claims(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(app: FastAPI, claims: dict[str, Any], **header: Any) -> str:
    key = app.state.auth.keys.current
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)


async def _ready_match(app: FastAPI, org: TestOrg, title: str = "Our match") -> Match:
    match = Match(
        organization_id=org.id,
        title=title,
        status=MatchStatus.ready,
        revision=1,
        published_revision=1,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
        await session.refresh(match)
    return match


# --- hostile JWT headers (the claims and the classic algorithms: tests/api/test_auth.py) -----

HEADER_ATTACKS: dict[str, dict[str, Any]] = {
    "x5u": {"x5u": "https://attacker.example/cert.pem"},
    "x5c": {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
    "kid_path_traversal": {"kid": "../../../../../../etc/passwd"},
    "kid_sql": {"kid": "' OR '1'='1"},
    "kid_url": {"kid": "https://attacker.example/jwks.json"},
    "crit": {"crit": ["x-unknown"], "x-unknown": True},
}


@pytest.mark.parametrize("attack", sorted(HEADER_ATTACKS))
async def test_hostile_jwt_header_is_refused(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, attack: str
) -> None:
    user = await factory.user()
    control = _sign(app, _claims(user.id))
    headers = {"Authorization": f"Bearer {control}"}
    assert (await client.get("/auth/me", headers=headers)).status_code == 200
    token = _sign(app, _claims(user.id), **HEADER_ATTACKS[attack])
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    _problem(response, 401)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": None},
        {"iat": None},
        {"nbf": int(time.time()) + 86_400},
        {"iat": int(time.time()) + 86_400},
        {"aud": "another-api"},
        {"iss": "https://attacker.example"},
        {"sub": None},
        {"exp": int(time.time()) + 10 * 365 * 86_400},
    ],
    ids=["no_exp", "no_iat", "future_nbf", "future_iat", "aud", "iss", "no_sub", "decade_exp"],
)
async def test_hostile_jwt_claims_are_refused(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, claims: dict[str, Any]
) -> None:
    user = await factory.user()
    token = _sign(app, _claims(user.id, **claims))
    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    _problem(response, 401)


# --- refresh tokens ---------------------------------------------------------------------------


async def _login_user(app: FastAPI, factory: Factory) -> str:
    user = await factory.user()
    password_hash = await app.state.auth.passwords.hash(PASSWORD)
    async with app.state.sessions() as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.password_hash = password_hash
        session.add(row)
        await session.commit()
    return user.email


async def test_parallel_refresh_with_one_token_lets_at_most_one_win_and_revokes_the_family(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    email = await _login_user(app, factory)
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["refresh_token"]

    answers = await asyncio.gather(
        *(client.post("/auth/refresh", json={"refresh_token": token}) for _ in range(4))
    )

    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) <= 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code != 200:
            _problem(answer, 401)
    # A reuse happened: the whole family is revoked, the winner's successor included.
    for winner in winners:
        successor = winner.json()["refresh_token"]
        again = await client.post("/auth/refresh", json={"refresh_token": successor})
        _problem(again, 401)
    spent = await client.post("/auth/refresh", json={"refresh_token": token})
    _problem(spent, 401)


# --- login: same answer and the same work for an unknown address and a wrong password -------


async def test_login_calls_the_password_hash_once_on_every_path(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = await _login_user(app, factory)
    passwords = app.state.auth.passwords
    calls: list[str] = []

    class Spy:
        """The real Argon2id hasher, counting its verifications."""

        def __init__(self, hasher: Any) -> None:
            self._hasher = hasher

        def verify(self, password_hash: str, password: str) -> bool:
            calls.append(password_hash)
            result: bool = self._hasher.verify(password_hash, password)
            return result

        def __getattr__(self, name: str) -> Any:
            return getattr(self._hasher, name)

    monkeypatch.setattr(passwords, "hasher", Spy(passwords.hasher))

    answers = {}
    for case, address in (("wrong", email), ("unknown", f"nobody-{uuid.uuid4().hex}@x.org")):
        calls.clear()
        answers[case] = await client.post(
            "/auth/login", json={"email": address, "password": "not the password 1"}
        )
        assert len(calls) == 1, f"{case}: {len(calls)} hash verifications"
    calls.clear()
    right = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert right.status_code == 200 and len(calls) == 1

    wrong, unknown = answers["wrong"], answers["unknown"]
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
    assert wrong.headers["content-type"] == unknown.headers["content-type"] == PROBLEM_MEDIA_TYPE


# --- mass assignment: fields a body may not set are ignored ---------------------------------

SMUGGLED = {
    "role": "owner",
    "is_admin": True,
    "is_superuser": True,
    "is_active": True,
    "status": "ready",
    "revision": 99,
    "published_revision": 99,
    "email_verified_at": "2020-01-01T00:00:00Z",
}


async def test_mass_assignment_is_ignored(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    owner = org.member(Role.owner)
    smuggled = {**SMUGGLED, "organization_id": str(other.id), "id": str(uuid.uuid4())}

    team = await client.post(
        f"/orgs/{org.id}/teams", json={"name": "Mass FC", **smuggled}, headers=owner.headers
    )
    assert team.status_code == 201, team.text
    match = await _ready_match(app, org)
    async with app.state.sessions() as session:
        stored = await session.get(Match, match.id)
        assert stored is not None
        stored.status, stored.revision, stored.published_revision = MatchStatus.created, 0, None
        session.add(stored)
        await session.commit()
    patched = await client.patch(
        f"/orgs/{org.id}/matches/{match.id}",
        json={"title": "Renamed", **smuggled},
        headers=owner.headers,
    )
    assert patched.status_code == 200, patched.text
    viewer = org.member(Role.viewer)
    role_change = await client.patch(
        f"/orgs/{org.id}/members/{viewer.user_id}",
        json={"role": "analyst", "organization_id": str(other.id), "user_id": str(uuid.uuid4())},
        headers=owner.headers,
    )
    assert role_change.status_code == 200, role_change.text
    created_org = await client.post(
        "/orgs",
        json={"name": "Mass Org", "slug": f"mass-{uuid.uuid4().hex[:8]}", **smuggled},
        headers=viewer.headers,
    )
    assert created_org.status_code == 201, created_org.text
    registered = await client.post(
        "/auth/register",
        json={
            "email": f"mass-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            **smuggled,
        },
    )

    async with app.state.sessions() as session:
        team_row = await session.get(Team, uuid.UUID(team.json()["id"]))
        assert team_row is not None and team_row.organization_id == org.id
        assert str(team_row.id) != smuggled["id"]
        match_row = await session.get(Match, match.id)
        assert match_row is not None and match_row.organization_id == org.id
        assert match_row.title == "Renamed"
        assert match_row.status is MatchStatus.created and match_row.revision == 0
        assert match_row.published_revision is None
        memberships = (
            await session.exec(
                Membership.__table__.select().where(  # type: ignore[attr-defined]
                    Membership.__table__.c.user_id == viewer.user_id  # type: ignore[attr-defined]
                )
            )
        ).all()
        roles = {(row.organization_id, row.role) for row in memberships}
        new_org = uuid.UUID(created_org.json()["id"])
        assert roles == {(org.id, Role.analyst), (new_org, Role.owner)}
        assert str(new_org) != smuggled["id"]
    if registered.status_code == 201:  # 503 without a mail server outside development
        email = registered.request.content.decode()
        async with app.state.sessions() as session:
            users = (await session.exec(User.__table__.select())).all()  # type: ignore[attr-defined]
        mass = [u for u in users if u.email in email]
        assert mass and all(u.email_verified_at is None for u in mass)


# --- analytics parameters that try to widen the organization or inject SQL ------------------


async def test_analytics_parameters_cannot_widen_or_inject(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(roles=(Role.analyst,)), await factory.org()
    match = await _ready_match(app, org)
    theirs = await _ready_match(app, other, title="Their secret match")
    headers = org.member(Role.analyst).headers
    base = f"/orgs/{org.id}/matches/{match.id}/analytics"

    injected = [
        await client.get(f"{base}/players", params={"team": "0 OR 1=1"}, headers=headers),
        await client.get(f"{base}/players", params={"team": "1; DROP TABLE x"}, headers=headers),
        await client.get(
            f"{base}/players", params={"sort": "distance; DROP TABLE x"}, headers=headers
        ),
        await client.get(
            f"{base}/tracks",
            params={"start_s": "0", "end_s": "10", "track_id": "1 OR 1=1"},
            headers=headers,
        ),
        await client.get(
            f"{base}/heatmaps", params={"team": "1) UNION SELECT 1 --"}, headers=headers
        ),
        await client.get(f"{base}/heatmaps/1%20OR%201=1.png", headers=headers),
    ]
    for response in injected:
        assert response.status_code in {404, 422}, response.request.url
        _problem(response, response.status_code)

    widened = await client.get(
        f"{base}/players",
        params={
            "organization_id": str(other.id),
            "org_id": str(other.id),
            "match_id": str(theirs.id),
        },
        headers=headers,
    )
    assert widened.status_code == 200, widened.text
    assert widened.json()["match_id"] == str(match.id)
    assert str(theirs.id) not in widened.text
    # Their match through our organization's path: 404, never their rows.
    crossed = await client.get(
        f"/orgs/{org.id}/matches/{theirs.id}/analytics/players", headers=headers
    )
    _problem(crossed, 404)


# --- a reprocess body over the size limit -----------------------------------------------------


async def test_reprocess_with_a_huge_options_payload_is_a_clear_4xx(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    match = await _ready_match(app, org)
    url = f"/orgs/{org.id}/matches/{match.id}/processing/reprocess"
    headers = org.member(Role.admin).headers
    limit = app.state.settings.max_request_bytes

    huge = await client.post(
        url, json={"from_stage": "track", "options": {"x": "y" * (limit + 1)}}, headers=headers
    )
    body = _problem(huge, 413)
    assert str(limit) in body["detail"]
    long_stage = await client.post(url, json={"from_stage": "t" * 100_000}, headers=headers)
    _problem(long_stage, 422)
    # Under the limit the unknown field is ignored; the match never started: 409, no update.
    ignored = await client.post(
        url, json={"from_stage": "track", "options": {"x": "y" * 1000}}, headers=headers
    )
    _problem(ignored, 409)
