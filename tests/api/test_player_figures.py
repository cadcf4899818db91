"""Per-player figures served with the analyst's merges and roster names applied.

Rows go straight into the analytics tables of migration 0005 (``match_player_figures``, and
``match_player_cells`` whose materialized view fills ``match_player_heatmaps``), in the analyze
stage's own row schemas.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI

from activities.analyze.figure_rows import PLAYER_CELLS_SCHEMA, PLAYER_FIGURES_SCHEMA
from api.analytics.identity_map import build_identity_map
from api.analytics.player_figures import FigureRow, combine_figures, combine_heatmaps
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from tests.api.factories import Factory, TestOrg

PROBLEM = "application/problem+json"

# (identity, team, tracks, seconds, distance, top speed, zones, sprints); values exact in f32.
ROWS = [
    (1, 1, [1], 600.0, 2000.0, 7.5, (100.0, 200.0, 200.0, 50.0, 50.0), 3),
    (4, 1, [4, 9], 300.0, 1000.0, 8.5, (50.0, 100.0, 100.0, 25.0, 25.0), 2),
    (6, 0, [6], 900.0, 2500.0, 6.0, (300.0, 300.0, 200.0, 100.0, 0.0), 0),
]
# (identity, minute, x, y, frames)
CELLS = [
    (1, 0, 10, 20, 5),
    (1, 1, 10, 20, 5),
    (4, 0, 10, 20, 7),
    (4, 0, 11, 20, 1),
    (6, 0, 50, 30, 4),
]


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _figures(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in PLAYER_FIGURES_SCHEMA.names}
    for identity, team, tracks, seconds, distance, top, zones, sprints in rows:
        values = [identity, team, 0, "", tracks, seconds, distance, top, *zones, sprints]
        for name, value in zip(PLAYER_FIGURES_SCHEMA.names, values, strict=True):
            columns[name].append(value)
    return pa.table(columns, schema=PLAYER_FIGURES_SCHEMA)


def _cells(rows: list[tuple[int, int, int, int, int]]) -> pa.Table:
    identity, minute, x, y, frames = (list(c) for c in zip(*rows, strict=True))
    team = [1] * len(rows)
    return pa.table([identity, team, minute, x, y, frames], schema=PLAYER_CELLS_SCHEMA)


async def _seed(app: FastAPI, factory: Factory) -> tuple[TestOrg, TestOrg, uuid.UUID]:
    org = await factory.org()
    other = await factory.org()
    match = Match(
        title="Derby",
        organization_id=org.id,
        status=MatchStatus.ready,
        revision=2,
        published_revision=2,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    analytics: AnalyticsStore = app.state.analytics
    mine, match_id = str(org.id), str(match.id)
    analytics.replace_revision("match_player_figures", mine, match_id, 2, _figures(ROWS))
    analytics.replace_revision("match_player_cells", mine, match_id, 2, _cells(CELLS))
    # Never served: an older revision, and another tenant under the same match id.
    stale = [(1, 1, [1], 1.0, 99999.0, 30.0, (1.0,) * 5, 99)]
    analytics.replace_revision("match_player_figures", mine, match_id, 1, _figures(stale))
    analytics.replace_revision("match_player_figures", str(other.id), match_id, 2, _figures(stale))
    return org, other, match.id


def test_combining_sums_and_takes_the_top_speed_and_longest_team() -> None:
    rows = [
        FigureRow(1, 1, 0, "", (1,), 10.0, 100.0, 5.0, (1.0, 2.0, 3.0, 4.0, 0.0), 1),
        FigureRow(2, 0, 0, "", (2, 3), 30.0, 50.0, math.nan, (0.0, 0.0, 1.0, 0.0, 1.0), 2),
    ]
    mapping = build_identity_map([(1, 2)], {})
    (only,) = combine_figures(rows, mapping)
    assert only.identity_id == 2 and only.identity_ids == (1, 2)
    assert only.team == 0  # identity 2 was seen longest
    assert only.track_ids == (1, 2, 3)
    assert (only.seconds, only.distance_m, only.top_speed, only.sprints) == (40.0, 150.0, 5.0, 3)
    assert only.zones == (1.0, 2.0, 4.0, 4.0, 1.0)
    heat = combine_heatmaps([1, 2, 2], [0, 0, 1], [0, 0, 0], [3, 4, 5], mapping)
    assert heat == {2: [(0, 0, 7), (1, 0, 5)]}


async def test_figures_follow_merges_and_roster_names(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, _, match_id = await _seed(app, factory)
    analyst = org.member(Role.analyst).headers
    url = f"/orgs/{org.id}/matches/{match_id}/analytics/player-figures"

    before = await client.get(url, headers=analyst)
    assert before.status_code == 200, before.text
    players = before.json()["players"]
    assert [p["identity_id"] for p in players] == [1, 4, 6]
    assert players[0]["distance_m"] == 2000.0 and players[0]["player"] is None
    assert players[1]["track_ids"] == [4, 9]
    assert players[0]["zones"] == {
        "walk_s": 100.0,
        "jog_s": 200.0,
        "run_s": 200.0,
        "high_s": 50.0,
        "sprint_s": 50.0,
    }
    assert players[0]["heatmap"] is None

    # Name identity 1 after a roster player, then merge 4 into it.
    team = (
        await client.post(f"/orgs/{org.id}/teams", json={"name": "Rovers"}, headers=analyst)
    ).json()["id"]
    alex = (
        await client.post(
            f"/orgs/{org.id}/teams/{team}/players",
            json={"name": "Alex", "shirt_number": 9},
            headers=analyst,
        )
    ).json()["id"]
    identities = f"/orgs/{org.id}/matches/{match_id}/identities"
    await client.put(f"{identities}/1/player", json={"player_id": alex}, headers=analyst)
    merged = await client.post(f"{identities}/4/merge", json={"into": 1}, headers=analyst)
    assert merged.status_code == 201, merged.text

    after = (await client.get(url, params={"heatmap": "true"}, headers=analyst)).json()
    one, six = after["players"]
    assert one["identity_id"] == 1 and one["identity_ids"] == [1, 4]
    assert one["player"] == {"id": alex, "team_id": team, "name": "Alex", "shirt_number": 9}
    assert one["distance_m"] == 3000.0 and one["seconds"] == 900.0
    assert one["top_speed_mps"] == 8.5 and one["sprints"] == 5
    assert one["zones"]["walk_s"] == 150.0 and one["zones"]["sprint_s"] == 75.0
    assert one["track_ids"] == [1, 4, 9]
    assert one["heatmap"] == [[10, 20, 17], [11, 20, 1]]
    assert six["heatmap"] == [[50, 30, 4]] and six["player"] is None

    # Team filter (served codes), and the cycle the figures can never see.
    home = (await client.get(url, params={"team": 1}, headers=analyst)).json()["players"]
    assert [p["identity_id"] for p in home] == [1]
    _problem(await client.post(f"{identities}/1/merge", json={"into": 4}, headers=analyst), 409)

    # Undoing the merge splits the figures again.
    await client.delete(f"{identities}/4/merge", headers=analyst)
    split = (await client.get(url, headers=analyst)).json()["players"]
    assert [p["identity_id"] for p in split] == [1, 4, 6]
    assert split[0]["distance_m"] == 2000.0 and split[0]["player"]["name"] == "Alex"


async def test_player_figures_roles_tenancy_and_problems(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other, match_id = await _seed(app, factory)
    url = f"/orgs/{org.id}/matches/{match_id}/analytics/player-figures"
    _problem(await client.get(url, headers=org.member(Role.viewer).headers), 403)
    _problem(await client.get(url), 401)
    theirs = other.member(Role.owner).headers
    _problem(await client.get(url, headers=theirs), 404)
    _problem(
        await client.get(
            f"/orgs/{other.id}/matches/{match_id}/analytics/player-figures", headers=theirs
        ),
        404,
    )
    _problem(await client.get(url, params={"team": 3}, headers=org.member(Role.owner).headers), 422)
    unpublished = Match(title="Later", organization_id=org.id)
    async with app.state.sessions() as session:
        session.add(unpublished)
        await session.commit()
    _problem(
        await client.get(
            f"/orgs/{org.id}/matches/{unpublished.id}/analytics/player-figures",
            headers=org.member(Role.owner).headers,
        ),
        409,
    )


@pytest.mark.parametrize("swapped", [False, True])
async def test_served_teams_follow_the_side_override(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, swapped: bool
) -> None:
    org, _, match_id = await _seed(app, factory)
    owner = org.member(Role.owner).headers
    if swapped:
        response = await client.patch(
            f"/orgs/{org.id}/matches/{match_id}/sides", json={"teams_swapped": True}, headers=owner
        )
        assert response.status_code == 200, response.text
    players = (
        await client.get(
            f"/orgs/{org.id}/matches/{match_id}/analytics/player-figures", headers=owner
        )
    ).json()["players"]
    teams = {p["identity_id"]: p["team"] for p in players}
    assert teams == ({1: 0, 4: 0, 6: 1} if swapped else {1: 1, 4: 1, 6: 0})
