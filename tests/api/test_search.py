"""The indexed match search, the same queries on SQLite (FTS5) and PostgreSQL (GIN tsvector).

Relevance, then kickoff, then id; the index follows matches and teams as they are created,
renamed and deleted; results never leave the organization.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Match, Role
from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory, TestOrg

KICKOFF = datetime(2025, 5, 17, 15, 30, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    app: FastAPI
    http: httpx.AsyncClient
    factory: Factory


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, api_settings: Settings) -> Settings:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{api_settings.data_dir / 'search.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    settings = api_settings.model_copy(update={"database_url": url})
    upgrade_stores(settings)
    return settings


@pytest_asyncio.fixture
async def backend(backend_settings: Settings) -> AsyncIterator[Backend]:
    application = create_app(backend_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Backend(
                name=application.state.engine.dialect.name,
                app=application,
                http=http,
                factory=Factory(application),
            )


async def _team(backend: Backend, org: TestOrg, name: str) -> str:
    response = await backend.http.post(
        f"/orgs/{org.id}/teams", json={"name": name}, headers=org.member(Role.owner).headers
    )
    assert response.status_code == 201, response.text
    team_id: str = response.json()["id"]
    return team_id


async def _match(backend: Backend, org: TestOrg, **fields: Any) -> str:
    body = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in fields.items()
    }
    response = await backend.http.post(
        f"/orgs/{org.id}/matches", json=body, headers=org.member(Role.owner).headers
    )
    assert response.status_code == 201, response.text
    match_id: str = response.json()["id"]
    return match_id


async def _search(backend: Backend, org: TestOrg, q: str, **params: Any) -> list[str]:
    response = await backend.http.get(
        f"/orgs/{org.id}/matches",
        params={"q": q, "limit": 100, **params},
        headers=org.member(Role.viewer).headers,
    )
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


async def test_the_index_exists_on_each_backend(backend: Backend) -> None:
    engine = backend.app.state.engine
    async with engine.connect() as connection:
        if backend.name == "postgresql":
            method = await connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_match_search_document'")
            )
            assert "gin" in str(method)
        else:
            sql = await connection.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'match_search_fts'")
            )
            assert "fts5" in str(sql).lower()


async def test_relevance_then_kickoff(backend: Backend) -> None:
    org, other = await backend.factory.org(), await backend.factory.org()
    rovers = await _team(backend, org, "Rovers")
    city = await _team(backend, org, "City")
    await _team(backend, other, "Rovers")
    await _match(backend, org, title="Rovers cup night", kickoff_at=KICKOFF)
    await _match(backend, org, title="League", home_team_id=rovers, kickoff_at=KICKOFF)
    await _match(
        backend, org, title="Friendly", venue="Rovers Park", kickoff_at=KICKOFF + timedelta(days=9)
    )
    await _match(
        backend,
        org,
        title="Derby",
        home_team_id=city,
        away_team_id=rovers,
        kickoff_at=KICKOFF + timedelta(days=3),
    )
    await _match(backend, org, title="Rovers reserves", kickoff_at=None)
    await _match(backend, other, title="Rovers cup night", kickoff_at=KICKOFF)

    # Title (3) before a team's name (2) before the venue (1); then the newest kickoff, none last.
    assert await _search(backend, org, "rovers") == [
        "Rovers cup night",
        "Rovers reserves",
        "Derby",
        "League",
        "Friendly",
    ]
    # Every term must match somewhere: only the derby has both teams.
    assert await _search(backend, org, "rov cit") == ["Derby"]
    assert await _search(backend, org, "park rovers") == ["Friendly"]
    # An explicit sort still wins over relevance.
    titles = await _search(backend, org, "rovers", sort="title")
    assert titles == ["Derby", "Friendly", "League", "Rovers cup night", "Rovers reserves"]
    assert await _search(backend, org, "nothing") == []


async def test_the_index_follows_edits_renames_and_deletions(backend: Backend) -> None:
    org = await backend.factory.org()
    owner = org.member(Role.owner).headers
    rovers = await _team(backend, org, "Rovers")
    match_id = await _match(backend, org, title="Spring derby", home_team_id=rovers, venue="North")
    assert await _search(backend, org, "rovers north") == ["Spring derby"]

    await backend.http.patch(
        f"/orgs/{org.id}/teams/{rovers}", json={"name": "Wanderers"}, headers=owner
    )
    assert await _search(backend, org, "rovers") == []
    assert await _search(backend, org, "wanderers") == ["Spring derby"]

    await backend.http.patch(
        f"/orgs/{org.id}/matches/{match_id}",
        json={"title": "Autumn derby", "venue": "South"},
        headers=owner,
    )
    assert await _search(backend, org, "spring") == []
    assert await _search(backend, org, "autumn south wanderers") == ["Autumn derby"]

    await backend.http.delete(f"/orgs/{org.id}/teams/{rovers}", headers=owner)
    assert await _search(backend, org, "wanderers") == []
    assert await _search(backend, org, "autumn") == ["Autumn derby"]

    # A match written straight to the store (as an upload creates one) is indexed too.
    async with backend.app.state.sessions() as session:
        session.add(Match(organization_id=org.id, title="Uploaded final"))
        await session.commit()
    assert await _search(backend, org, "upload") == ["Uploaded final"]
    async with backend.app.state.engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM matches WHERE id = :id"),
            {
                "id": uuid.UUID(match_id)
                if backend.name == "postgresql"
                else uuid.UUID(match_id).hex
            },
        )
        remaining = await connection.scalar(text("SELECT count(*) FROM match_search"))
    assert remaining == 1
    assert await _search(backend, org, "autumn") == []


async def test_relevance_pages_walk_every_match_once(backend: Backend) -> None:
    org = await backend.factory.org()
    rovers = await _team(backend, org, "Rovers")
    for i in range(9):
        fields: dict[str, Any] = {"title": f"Rovers {i}" if i % 3 == 0 else f"Game {i}"}
        if i % 3 == 1:
            fields["home_team_id"] = rovers
        if i % 3 == 2:
            fields["venue"] = "Rovers ground"
        if i % 4:
            fields["kickoff_at"] = KICKOFF + timedelta(days=i % 2)
        await _match(backend, org, **fields)
    everything = await _search(backend, org, "rovers")
    assert len(everything) == 9
    url, headers = f"/orgs/{org.id}/matches", org.member(Role.viewer).headers
    walked: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"q": "rovers", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await backend.http.get(url, params=params, headers=headers)).json()
        walked.extend(item["title"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked == everything

    # A cursor whose relevance is not a whole number: a 422 problem.
    first = (
        await backend.http.get(url, params={"q": "rovers", "limit": 2}, headers=headers)
    ).json()
    raw = first["next_cursor"]
    decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    for forged_rank in ("3", None, True):
        decoded["r"] = forged_rank
        forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
        response = await backend.http.get(
            url, params={"q": "rovers", "limit": 2, "cursor": forged}, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
