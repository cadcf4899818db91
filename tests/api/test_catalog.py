"""Catalog: teams and matches CRUD, filters, search, keyset pages, tenancy and roles.

The listing, search and pagination tests run on SQLite and on PostgreSQL: the search is built
differently per backend and must find the same rows.
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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from api.catalog import search_terms
from api.catalog.cursor import PageKey, decode_cursor, encode_cursor
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Asset, AssetKind, Match, MatchStatus, Role
from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory, TestOrg
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput

KICKOFF = datetime(2025, 5, 17, 15, 30, tzinfo=UTC)


@dataclass
class Backend:
    """An app on one metadata backend, with a client and a factory on it."""

    name: str
    app: FastAPI
    http: httpx.AsyncClient
    factory: Factory

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        sessions: async_sessionmaker[AsyncSession] = self.app.state.sessions
        return sessions


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, api_settings: Settings) -> Settings:
    """The shared API settings, on SQLite or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        # The embedded default, even when PV_TEST_API_DATABASE points the suite elsewhere.
        settings = api_settings.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{api_settings.data_dir / 'search.db'}"}
        )
        upgrade_stores(settings)
        return settings
    url: str = request.getfixturevalue("postgres_database_url")
    settings = api_settings.model_copy(update={"database_url": url})
    upgrade_stores(settings)
    return settings


@pytest_asyncio.fixture
async def backend(
    backend_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[Backend]:
    application = create_app(backend_settings)
    wanted = {"sqlite": "sqlite", "postgres": "postgresql"}
    async with application.router.lifespan_context(application):
        # Each variant really runs on its database.
        dialect = application.state.engine.dialect.name
        assert dialect == wanted[request.node.callspec.params["backend_settings"]]
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Backend(
                name=application.state.engine.dialect.name,
                app=application,
                http=http,
                factory=Factory(application),
            )


async def _add(sessions: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    """Setup written straight to the store (status, device, timestamps the API never takes)."""
    async with sessions() as session:
        session.add_all(rows)
        await session.commit()


async def _team(http: httpx.AsyncClient, org: TestOrg, name: str) -> uuid.UUID:
    response = await http.post(
        f"/orgs/{org.id}/teams", json={"name": name}, headers=org.member(Role.owner).headers
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _list(http: httpx.AsyncClient, org: TestOrg, **params: Any) -> list[dict[str, Any]]:
    """Every item of one listing (a single page large enough)."""
    response = await http.get(
        f"/orgs/{org.id}/matches",
        params={"limit": 100, **params},
        headers=org.member(Role.viewer).headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def _titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["title"] for item in items]


# --- teams -------------------------------------------------------------------------------


async def test_team_crud_and_unique_names(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    owner, base = org.member(Role.owner).headers, f"/orgs/{org.id}/teams"

    created = await client.post(base, json={"name": "Rovers"}, headers=owner)
    assert created.status_code == 201
    team = created.json()
    assert team["name"] == "Rovers" and team["organization_id"] == str(org.id)
    await client.post(base, json={"name": "Athletic"}, headers=owner)

    listed = await client.get(base, headers=org.member(Role.viewer).headers)
    assert [t["name"] for t in listed.json()] == ["Athletic", "Rovers"]

    duplicate = await client.post(base, json={"name": "Rovers"}, headers=owner)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"

    renamed = await client.patch(f"{base}/{team['id']}", json={"name": "Rangers"}, headers=owner)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Rangers"
    clash = await client.patch(f"{base}/{team['id']}", json={"name": "Athletic"}, headers=owner)
    assert clash.status_code == 409
    unchanged = await client.patch(f"{base}/{team['id']}", json={}, headers=owner)
    assert unchanged.json()["name"] == "Rangers"

    fetched = await client.get(f"{base}/{team['id']}", headers=org.member(Role.viewer).headers)
    assert fetched.json()["name"] == "Rangers"
    assert (await client.post(base, json={"name": ""}, headers=owner)).status_code == 422

    deleted = await client.delete(f"{base}/{team['id']}", headers=org.member(Role.analyst).headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{base}/{team['id']}", headers=owner)).status_code == 404


async def test_the_same_team_name_in_two_orgs_is_fine(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    first, second = await factory.org(), await factory.org()
    await _team(client, first, "Rovers")
    assert await _team(client, second, "Rovers")


async def test_teams_answer_404_across_tenants_and_403_below_edit(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    team_id = await _team(client, org, "Rovers")
    stranger = other.member(Role.owner).headers
    # Another tenant's team through the stranger's own organization: not found.
    for method, path in (
        ("GET", f"/orgs/{other.id}/teams/{team_id}"),
        ("PATCH", f"/orgs/{other.id}/teams/{team_id}"),
        ("DELETE", f"/orgs/{other.id}/teams/{team_id}"),
        # And the organization itself, which the stranger is no member of.
        ("GET", f"/orgs/{org.id}/teams"),
        ("GET", f"/orgs/{org.id}/teams/{team_id}"),
    ):
        response = await client.request(method, path, json={"name": "X"}, headers=stranger)
        assert response.status_code == 404, (method, path)
    assert (await client.get(f"/orgs/{other.id}/teams", headers=stranger)).json() == []

    viewer = org.member(Role.viewer).headers
    base = f"/orgs/{org.id}/teams"
    assert (await client.post(base, json={"name": "New"}, headers=viewer)).status_code == 403
    patched = await client.patch(f"{base}/{team_id}", json={"name": "New"}, headers=viewer)
    assert patched.status_code == 403
    assert (await client.delete(f"{base}/{team_id}", headers=viewer)).status_code == 403
    assert (await client.get(f"{base}/{team_id}", headers=viewer)).status_code == 200


async def test_deleting_a_team_keeps_its_matches(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    owner = org.member(Role.owner).headers
    home, away = await _team(client, org, "Rovers"), await _team(client, org, "Athletic")
    created = await client.post(
        f"/orgs/{org.id}/matches",
        json={"title": "Derby", "home_team_id": str(home), "away_team_id": str(away)},
        headers=owner,
    )
    match_id = created.json()["id"]
    assert (await client.delete(f"/orgs/{org.id}/teams/{home}", headers=owner)).status_code == 204
    match = (await client.get(f"/orgs/{org.id}/matches/{match_id}", headers=owner)).json()
    assert match["home_team"] is None
    assert match["away_team"] == {"id": str(away), "name": "Athletic"}


# --- matches: create, read, edit, delete -------------------------------------------------


async def test_create_read_and_edit_a_match(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    analyst = org.member(Role.analyst).headers
    home, away = await _team(client, org, "Rovers"), await _team(client, org, "Athletic")
    created = await client.post(
        f"/orgs/{org.id}/matches",
        json={
            "title": "Rovers vs Athletic",
            "home_team_id": str(home),
            "away_team_id": str(away),
            "venue": "Example Park",
            "kickoff_at": "2025-05-17T17:30:00+02:00",
        },
        headers=analyst,
    )
    assert created.status_code == 201, created.text
    match = created.json()
    assert match["home_team"] == {"id": str(home), "name": "Rovers"}
    assert match["away_team"] == {"id": str(away), "name": "Athletic"}
    assert match["status"] == "created" and match["revision"] == 0 and match["device"] is None
    assert datetime.fromisoformat(match["kickoff_at"]) == KICKOFF

    url = f"/orgs/{org.id}/matches/{match['id']}"
    fetched = await client.get(url, headers=org.member(Role.viewer).headers)
    assert fetched.json() == match

    edited = await client.patch(
        url, json={"title": "Cup final", "venue": None, "away_team_id": None}, headers=analyst
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["title"] == "Cup final" and body["venue"] is None and body["away_team"] is None
    assert body["home_team"]["name"] == "Rovers"  # untouched
    assert body["kickoff_at"] == match["kickoff_at"]

    assert (await client.patch(url, json={"title": None}, headers=analyst)).status_code == 422
    naive = await client.patch(url, json={"kickoff_at": "2025-05-17T15:30:00"}, headers=analyst)
    assert naive.status_code == 422  # a kickoff without a timezone is ambiguous
    untitled = await client.post(f"/orgs/{org.id}/matches", json={"venue": "X"}, headers=analyst)
    assert untitled.status_code == 422


async def test_a_match_takes_only_teams_of_its_organization(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    ours, theirs = await _team(client, org, "Rovers"), await _team(client, other, "Rovers")
    owner, base = org.member(Role.owner).headers, f"/orgs/{org.id}/matches"

    for body in (
        {"title": "A", "home_team_id": str(theirs)},
        {"title": "A", "away_team_id": str(uuid.uuid4())},
    ):
        refused = await client.post(base, json=body, headers=owner)
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("Unknown team:")
    same = await client.post(
        base,
        json={"title": "A", "home_team_id": str(ours), "away_team_id": str(ours)},
        headers=owner,
    )
    assert same.status_code == 422

    match_id = (await client.post(base, json={"title": "A"}, headers=owner)).json()["id"]
    patched = await client.patch(
        f"{base}/{match_id}", json={"home_team_id": str(theirs)}, headers=owner
    )
    assert patched.status_code == 422


async def test_matches_answer_404_across_tenants_and_403_below_edit(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org, other = await factory.org(), await factory.org()
    match = Match(organization_id=org.id, title="Ours")
    await _add(app.state.sessions, match)
    stranger = other.member(Role.owner).headers
    for method, path in (
        ("GET", f"/orgs/{other.id}/matches/{match.id}"),
        ("PATCH", f"/orgs/{other.id}/matches/{match.id}"),
        ("DELETE", f"/orgs/{other.id}/matches/{match.id}"),
        ("GET", f"/orgs/{other.id}/matches/{match.id}/assets"),
        ("GET", f"/orgs/{org.id}/matches"),
        ("GET", f"/orgs/{org.id}/matches/{match.id}"),
        ("GET", f"/orgs/{org.id}/matches/{uuid.uuid4()}"),
    ):
        response = await client.request(method, path, json={"title": "X"}, headers=stranger)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    assert await _list(client, other) == []

    viewer, base = org.member(Role.viewer).headers, f"/orgs/{org.id}/matches"
    assert (await client.post(base, json={"title": "X"}, headers=viewer)).status_code == 403
    patched = await client.patch(f"{base}/{match.id}", json={"title": "X"}, headers=viewer)
    assert patched.status_code == 403
    assert (await client.delete(f"{base}/{match.id}", headers=viewer)).status_code == 403
    assert (await client.get(base)).status_code == 401


async def test_a_match_lists_its_assets(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match, empty = (
        Match(organization_id=org.id, title="A"),
        Match(organization_id=org.id, title="B"),
    )
    prefix = f"orgs/{org.id}/matches/{match.id}/1"
    await _add(app.state.sessions, match, empty)
    await _add(
        app.state.sessions,
        Asset(
            organization_id=org.id,
            match_id=match.id,
            kind=AssetKind.hls,
            object_key=f"{prefix}/hls/master.m3u8",
            size_bytes=120,
            content_type="application/vnd.apple.mpegurl",
        ),
        Asset(
            organization_id=org.id,
            match_id=match.id,
            kind=AssetKind.panorama,
            object_key=f"{prefix}/stitch/chunk-00000.mp4",
            size_bytes=5_000_000_000,
        ),
    )
    viewer = org.member(Role.viewer).headers
    listed = await client.get(f"/orgs/{org.id}/matches/{match.id}/assets", headers=viewer)
    assert listed.status_code == 200
    assets = listed.json()
    # By kind, then key; the size is far above 32 bits (a BIGINT column).
    assert [(a["kind"], a["size_bytes"]) for a in assets] == [
        ("hls", 120),
        ("panorama", 5_000_000_000),
    ]
    assert all(a["match_id"] == str(match.id) for a in assets)
    none = await client.get(f"/orgs/{org.id}/matches/{empty.id}/assets", headers=viewer)
    assert none.json() == []


async def test_deleting_a_match_removes_its_outputs_but_not_while_processing(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI, temporal_client: Client
) -> None:
    org = await factory.org()
    done = Match(organization_id=org.id, title="Done", status=MatchStatus.ready, revision=1)
    busy = Match(organization_id=org.id, title="Busy", status=MatchStatus.processing)
    # Busy's workflow runs (on a queue no worker polls, so it stays running).
    busy.workflow_id = workflow_id_for(str(busy.id))
    running = await temporal_client.start_workflow(
        MatchWorkflow.run,
        MatchInput(str(org.id), str(busy.id), "l.mp4", "r.mp4", "rig.json"),
        id=busy.workflow_id,
        task_queue=f"unpolled-{uuid.uuid4().hex[:8]}",
    )
    # A row left "processing" by a run that never started does not block a delete.
    stale = Match(organization_id=org.id, title="Stale", status=MatchStatus.processing)
    await _add(app.state.sessions, done, busy, stale)
    key = f"orgs/{org.id}/matches/{done.id}/1/hls/master.m3u8"
    kept = f"orgs/{org.id}/matches/{busy.id}/1/hls/master.m3u8"
    for object_key in (key, kept):
        await app.state.objects.put(object_key, b"#EXTM3U\n")
    await _add(
        app.state.sessions,
        Asset(
            organization_id=org.id,
            match_id=done.id,
            kind=AssetKind.hls,
            object_key=key,
            size_bytes=8,
        ),
    )
    editor, base = org.member(Role.analyst).headers, f"/orgs/{org.id}/matches"

    refused = await client.delete(f"{base}/{busy.id}", headers=editor)
    assert refused.status_code == 409
    assert await app.state.objects.exists(kept)

    assert (await client.delete(f"{base}/{done.id}", headers=editor)).status_code == 204
    assert (await client.get(f"{base}/{done.id}", headers=editor)).status_code == 404
    assert (await client.get(f"{base}/{done.id}/assets", headers=editor)).status_code == 404
    assert not await app.state.objects.exists(key)
    assert await app.state.objects.exists(kept)
    assert (await client.delete(f"{base}/{done.id}", headers=editor)).status_code == 404
    assert (await client.delete(f"{base}/{stale.id}", headers=editor)).status_code == 204

    await running.terminate("test over")
    assert (await client.delete(f"{base}/{busy.id}", headers=editor)).status_code == 204
    assert not await app.state.objects.exists(kept)


# --- listing: filters, search, sort, pages (both backends) -------------------------------


@dataclass
class Catalog:
    """A tenant with a known set of matches, and another tenant's look-alike."""

    org: TestOrg
    teams: dict[str, uuid.UUID]
    device: uuid.UUID
    matches: dict[str, Match]


async def _catalog(backend: Backend) -> Catalog:
    org, other = await backend.factory.org(), await backend.factory.org()
    teams = {name: await _team(backend.http, org, name) for name in ("Rovers", "Athletic", "City")}
    their_team = await _team(backend.http, other, "Rovers")
    device = await backend.factory.device(org.id)
    rows = [
        Match(
            organization_id=org.id,
            title="Spring derby",
            home_team_id=teams["Rovers"],
            away_team_id=teams["Athletic"],
            venue="Example Park",
            kickoff_at=KICKOFF,
            status=MatchStatus.ready,
            device_id=device.id,
        ),
        Match(
            organization_id=org.id,
            title="Cup semi-final",
            home_team_id=teams["City"],
            away_team_id=teams["Rovers"],
            venue="North Stadium",
            kickoff_at=KICKOFF + timedelta(days=7),
            status=MatchStatus.processing,
            device_id=device.id,
        ),
        Match(
            organization_id=org.id,
            title="Friendly",
            home_team_id=teams["Athletic"],
            away_team_id=teams["City"],
            venue="Example Park",
            kickoff_at=KICKOFF - timedelta(days=7),
            status=MatchStatus.failed,
        ),
        Match(organization_id=org.id, title="Training", status=MatchStatus.created),
    ]
    await _add(
        backend.sessions,
        *rows,
        Match(
            organization_id=other.id,
            title="Spring derby",
            home_team_id=their_team,
            venue="Example Park",
            kickoff_at=KICKOFF,
            status=MatchStatus.ready,
        ),
    )
    return Catalog(org=org, teams=teams, device=device.id, matches={row.title: row for row in rows})


async def test_filters_combine_and_stay_in_the_tenant(backend: Backend) -> None:
    catalog = await _catalog(backend)
    org, http = catalog.org, backend.http

    everything = await _list(http, org)
    # Newest kickoff first; the match without a kickoff last.
    assert _titles(everything) == ["Cup semi-final", "Spring derby", "Friendly", "Training"]
    derby = next(item for item in everything if item["title"] == "Spring derby")
    assert derby["home_team"] == {"id": str(catalog.teams["Rovers"]), "name": "Rovers"}
    assert derby["device"]["id"] == str(catalog.device)
    assert derby["venue"] == "Example Park" and derby["status"] == "ready"

    assert _titles(await _list(http, org, status="ready")) == ["Spring derby"]
    both = await _list(http, org, status=["failed", "processing"])
    assert _titles(both) == ["Cup semi-final", "Friendly"]
    # A team plays home or away.
    rovers = await _list(http, org, team_id=str(catalog.teams["Rovers"]))
    assert _titles(rovers) == ["Cup semi-final", "Spring derby"]
    recorded = await _list(http, org, device_id=str(catalog.device))
    assert _titles(recorded) == ["Cup semi-final", "Spring derby"]
    # from is inclusive, to exclusive.
    window = await _list(
        http,
        org,
        kickoff_from=KICKOFF.isoformat(),
        kickoff_to=(KICKOFF + timedelta(days=7)).isoformat(),
    )
    assert _titles(window) == ["Spring derby"]
    combined = await _list(http, org, team_id=str(catalog.teams["City"]), status="failed")
    assert _titles(combined) == ["Friendly"]
    assert await _list(http, org, team_id=str(uuid.uuid4())) == []

    assert _titles(await _list(http, org, sort="kickoff_at")) == [
        "Friendly",
        "Spring derby",
        "Cup semi-final",
        "Training",
    ]
    assert _titles(await _list(http, org, sort="title")) == [
        "Cup semi-final",
        "Friendly",
        "Spring derby",
        "Training",
    ]
    assert _titles(await _list(http, org, sort="-title"))[0] == "Training"

    for bad in ({"status": "lost"}, {"sort": "venue"}, {"kickoff_from": "2025-05-17T15:30:00"}):
        response = await http.get(
            f"/orgs/{org.id}/matches", params=bad, headers=org.member(Role.viewer).headers
        )
        assert response.status_code == 422, bad


async def test_search_needs_every_term_in_title_venue_or_team_names(backend: Backend) -> None:
    catalog = await _catalog(backend)
    org, http = catalog.org, backend.http

    async def search(q: str) -> list[str]:
        return sorted(_titles(await _list(http, org, q=q)))

    assert await search("rovers") == ["Cup semi-final", "Spring derby"]
    # Terms from different fields (a team's name and the venue), any case.
    assert await search("ROVERS example") == ["Spring derby"]
    assert await search("athletic city") == ["Friendly"]
    # Every term must match.
    assert await search("rovers friendly") == []
    # A term matches the start of a word: "park" and "exam" do, "ample" does not.
    assert await search("exam park") == ["Friendly", "Spring derby"]
    assert await search("ample") == []
    # Punctuation splits words the same way on both backends.
    assert await search("semi") == ["Cup semi-final"]
    assert await search("final, cup!") == ["Cup semi-final"]
    # Only punctuation: no terms, no filter.
    assert len(await search("--")) == 4
    # The other tenant's "Spring derby" is never found.
    assert await search("spring derby") == ["Spring derby"]
    # Search combines with the other filters.
    found = await _list(http, org, q="example", status="failed")
    assert _titles(found) == ["Friendly"]


def test_search_terms_are_words_lower_cased_deduplicated_and_bounded() -> None:
    assert search_terms(None) == []
    assert search_terms("  Rovers, ROVERS & Athletic-B  ") == ["rovers", "athletic", "b"]
    assert search_terms("100% o'brien_x") == ["100", "o", "brien", "x"]
    assert len(search_terms(" ".join(f"w{i}" for i in range(20)))) == 8


def _expected(matches: list[Match], sort: str) -> list[uuid.UUID]:
    """The listing's order, computed here: value, then id, nulls last either way."""
    field = sort.removeprefix("-")
    descending = sort.startswith("-")
    with_value = [m for m in matches if getattr(m, field) is not None]
    without = [m for m in matches if getattr(m, field) is None]
    with_value.sort(key=lambda m: (getattr(m, field), m.id), reverse=descending)
    without.sort(key=lambda m: m.id, reverse=descending)
    return [m.id for m in with_value + without]


async def _walk(backend: Backend, org: TestOrg, limit: int, **params: Any) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await backend.http.get(
            f"/orgs/{org.id}/matches", params=query, headers=org.member(Role.viewer).headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        ids.extend(uuid.UUID(item["id"]) for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
        assert pages < 50, "pagination does not end"


async def test_pages_walk_every_match_once_in_order(backend: Backend) -> None:
    org = await backend.factory.org(roles=(Role.viewer,))
    created = datetime(2025, 1, 1, tzinfo=UTC)
    matches = [
        Match(
            organization_id=org.id,
            # Few distinct titles, kickoffs and creation times: ties everywhere, and some
            # matches without a kickoff, so the id tie-breaker and NULL handling both count.
            title=("Alpha", "Bravo", "Charlie")[i % 3],
            kickoff_at=None if i % 5 == 0 else KICKOFF + timedelta(hours=i % 4),
            created_at=created + timedelta(seconds=i // 2, microseconds=7),
        )
        for i in range(23)
    ]
    await _add(backend.sessions, *matches)
    for sort in ("-kickoff_at", "kickoff_at", "created_at", "-created_at", "title", "-title"):
        walked = await _walk(backend, org, limit=4, sort=sort)
        assert len(walked) == len(set(walked)) == 23, sort
        assert walked == _expected(matches, sort), sort
    # Exactly one full page: no empty page after it.
    one_page = await backend.http.get(
        f"/orgs/{org.id}/matches", params={"limit": 23}, headers=org.member(Role.viewer).headers
    )
    assert one_page.json()["next_cursor"] is None


async def test_pages_follow_a_search(backend: Backend) -> None:
    org = await backend.factory.org(roles=(Role.owner, Role.viewer))
    home = await _team(backend.http, org, "Rovers")
    matches = [
        Match(
            organization_id=org.id,
            title=f"League round {i}",
            home_team_id=home if i % 2 else None,
            kickoff_at=KICKOFF + timedelta(days=i // 3),
        )
        for i in range(15)
    ]
    await _add(backend.sessions, *matches)
    walked = await _walk(backend, org, limit=2, q="rovers league")
    wanted = [m for m in matches if m.home_team_id is not None]
    assert walked == _expected(wanted, "-kickoff_at")


async def test_a_cursor_only_fits_its_own_query(backend: Backend) -> None:
    org = await backend.factory.org(roles=(Role.viewer,))
    await _add(backend.sessions, *(Match(organization_id=org.id, title=f"M{i}") for i in range(3)))
    url, headers = f"/orgs/{org.id}/matches", org.member(Role.viewer).headers
    first = (await backend.http.get(url, params={"limit": 1}, headers=headers)).json()
    cursor = first["next_cursor"]
    assert cursor
    for params in (
        {"cursor": cursor, "sort": "title"},
        {"cursor": cursor, "q": "m1"},
        {"cursor": "not-a-cursor"},
        {"cursor": cursor[:-4]},
        {"limit": 0},
        {"limit": 101},
    ):
        response = await backend.http.get(url, params=params, headers=headers)
        assert response.status_code == 422, params
    following = await backend.http.get(url, params={"cursor": cursor, "limit": 1}, headers=headers)
    assert following.status_code == 200
    # An edited cursor whose value has the wrong type for the sort's column: 422, not a 500.
    body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    body.update({"t": "text", "k": "not a date"})
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    response = await backend.http.get(url, params={"cursor": forged}, headers=headers)
    assert response.status_code == 422, response.text


def test_cursors_round_trip() -> None:
    key = PageKey("-kickoff_at", KICKOFF, uuid.uuid4(), "f" * 16)
    assert decode_cursor(encode_cursor(key), sort="-kickoff_at", fingerprint="f" * 16) == key
    empty = PageKey("kickoff_at", None, uuid.uuid4(), "a" * 16)
    assert decode_cursor(encode_cursor(empty), sort="kickoff_at", fingerprint="a" * 16) == empty


async def test_openapi_documents_examples_and_problems(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    create = paths["/orgs/{org_id}/matches"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert schema["examples"][0]["title"]
    assert {"403", "404", "422"} <= set(create["responses"])
    assert create["summary"]
    team_ref = paths["/orgs/{org_id}/teams"]["post"]["requestBody"]["content"]["application/json"]
    team_schema = document["components"]["schemas"][team_ref["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert team_schema["examples"]
    delete = paths["/orgs/{org_id}/matches/{match_id}"]["delete"]
    assert "409" in delete["responses"]
