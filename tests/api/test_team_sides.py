"""Which kit is home, through the API: settings at creation and upload, the operator's PATCH,
the settings handed to the workflow, and the analytics swapped at read time."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from activities.track.sides import (
    SIDES_ARTIFACT,
    KitCluster,
    SideSettings,
    SidesRecord,
    hex_to_lab8,
)
from api.analytics.shaping import served_teams, swap_team
from api.ingest.service import match_input
from polyvision.artifacts import artifact_key
from polyvision.storage.metadata.models import Match, Role, Upload
from tests.api.factories import Factory
from tests.api.factories import TestOrg as Tenant
from tests.api.test_analytics import Seeded, _seed
from tests.api.test_uploads import open_body

PROBLEM = "application/problem+json"
RED, BLUE = "#c8102e", "#1d428a"


def _kit(colour: str, mean_x: float) -> KitCluster:
    lightness, a, b = (float(value) for value in hex_to_lab8(colour))
    return KitCluster(lab=(lightness, a, b), mean_x=mean_x)


# What the track stage saw: kit 0 in blue on the right, kit 1 in red on the left.
CLUSTERS = {0: _kit(BLUE, 70.0), 1: _kit(RED, 35.0)}


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _create(
    client: httpx.AsyncClient, org: Tenant, role: Role = Role.analyst, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"/orgs/{org.id}/matches",
        json={"title": "Derby", **fields},
        headers=org.member(role).headers,
    )


# -- the catalog ------------------------------------------------------------------------------


async def test_a_new_match_takes_kit_colours_and_a_starting_side(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    plain = await _create(client, org)
    assert plain.status_code == 201, plain.text
    assert {k: plain.json()[k] for k in SideSettings.__dataclass_fields__} == {
        "home_kit_colour": None,
        "away_kit_colour": None,
        "home_starts_left": None,
        "teams_swapped": False,
    }

    created = await _create(
        client, org, home_kit_colour="#C8102E", away_kit_colour=BLUE, home_starts_left=True
    )
    assert created.status_code == 201, created.text
    match = created.json()
    assert match["home_kit_colour"] == RED  # stored in lower case
    assert (match["away_kit_colour"], match["home_starts_left"]) == (BLUE, True)
    fetched = await client.get(
        f"/orgs/{org.id}/matches/{match['id']}", headers=org.member(Role.viewer).headers
    )
    assert fetched.json() == match
    listed = await client.get(f"/orgs/{org.id}/matches", headers=org.member(Role.viewer).headers)
    [item] = [m for m in listed.json()["items"] if m["id"] == match["id"]]
    assert item["home_kit_colour"] == RED and item["teams_swapped"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"home_kit_colour": "red"},
        {"home_kit_colour": "c8102e"},
        {"away_kit_colour": "#c8102"},
        {"away_kit_colour": "#c8102e00"},
        {"home_kit_colour": "#zz0000"},
        {"home_starts_left": "left"},
    ],
)
async def test_a_bad_setting_is_a_422_problem(
    client: httpx.AsyncClient, factory: Factory, fields: dict[str, Any]
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    body = _problem(await _create(client, org, **fields), 422)
    [name] = fields
    assert any(error["loc"][-1] == name for error in body["errors"]), body


async def test_two_kits_of_one_colour_are_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    body = _problem(await _create(client, org, home_kit_colour=RED, away_kit_colour="#C8102E"), 422)
    assert "different colours" in str(body["errors"])


async def test_operators_patch_the_sides(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    match = (await _create(client, org, home_kit_colour=RED)).json()
    url = f"/orgs/{org.id}/matches/{match['id']}/sides"
    admin = org.member(Role.admin).headers

    swapped = await client.patch(url, json={"teams_swapped": True}, headers=admin)
    assert swapped.status_code == 200, swapped.text
    body = swapped.json()
    assert body["teams_swapped"] is True and body["home_kit_colour"] == RED  # untouched
    assert body["title"] == "Derby" and body["id"] == match["id"]

    changed = await client.patch(
        url,
        json={"home_kit_colour": None, "away_kit_colour": "#FFFFFF", "home_starts_left": False},
        headers=org.member(Role.owner).headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["home_kit_colour"], body["away_kit_colour"]) == (None, "#ffffff")
    assert body["home_starts_left"] is False and body["teams_swapped"] is True
    assert (await client.patch(url, json={}, headers=admin)).json() == body

    # The same colour as the other kit, given now or already stored: 422.
    _problem(await client.patch(url, json={"home_kit_colour": "#ffffff"}, headers=admin), 422)
    both = {"home_kit_colour": BLUE, "away_kit_colour": BLUE}
    _problem(await client.patch(url, json=both, headers=admin), 422)
    _problem(await client.patch(url, json={"teams_swapped": None}, headers=admin), 422)
    _problem(await client.patch(url, json={"away_kit_colour": "blue"}, headers=admin), 422)
    fetched = await client.get(f"/orgs/{org.id}/matches/{match['id']}", headers=admin)
    assert fetched.json()["away_kit_colour"] == "#ffffff"  # nothing refused was written


async def test_sides_are_for_operators_and_other_tenants_get_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org(roles=(Role.owner,))
    match = (await _create(client, org)).json()
    url = f"/orgs/{org.id}/matches/{match['id']}/sides"
    body = {"teams_swapped": True}
    for role in (Role.analyst, Role.viewer):
        refused = _problem(
            await client.patch(url, json=body, headers=org.member(role).headers), 403
        )
        assert "assign_sides" in refused["detail"]
    # The owner of another organization: through ours or through theirs, the match is absent.
    stranger = other.member(Role.owner).headers
    for path in (url, f"/orgs/{other.id}/matches/{match['id']}/sides"):
        _problem(await client.patch(path, json=body, headers=stranger), 404)
    _problem(
        await client.patch(
            f"/orgs/{org.id}/matches/{uuid.uuid4()}/sides",
            json=body,
            headers=org.member(Role.owner).headers,
        ),
        404,
    )
    assert (await client.patch(url, json=body)).status_code == 401
    untouched = await client.get(
        f"/orgs/{org.id}/matches/{match['id']}", headers=org.member(Role.owner).headers
    )
    assert untouched.json()["teams_swapped"] is False


async def test_an_upload_creates_its_match_with_the_settings(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    headers, path = org.member(Role.analyst).headers, f"/orgs/{org.id}/uploads"
    body = open_body(b"left", b"right", home_kit_colour="#1D428A", home_starts_left=False)
    opened = await client.post(path, json=body, headers=headers)
    assert opened.status_code == 201, opened.text
    match = await client.get(f"/orgs/{org.id}/matches/{opened.json()['match_id']}", headers=headers)
    assert match.json()["home_kit_colour"] == BLUE
    assert match.json()["away_kit_colour"] is None
    assert match.json()["home_starts_left"] is False
    bad = await client.post(
        path, json=open_body(b"l", b"r", away_kit_colour="navy"), headers=headers
    )
    _problem(bad, 422)
    same = open_body(b"l", b"r", home_kit_colour=BLUE, away_kit_colour=BLUE)
    _problem(await client.post(path, json=same, headers=headers), 422)


def test_the_workflow_input_carries_the_settings() -> None:
    organization_id = uuid.uuid4()
    match = Match(
        organization_id=organization_id,
        title="Derby",
        home_kit_colour=RED,
        home_starts_left=True,
        teams_swapped=True,
    )
    upload = Upload(
        organization_id=organization_id,
        match_id=match.id,
        left_size=1,
        right_size=1,
        left_sha256="a" * 64,
        right_sha256="b" * 64,
        left_frames=1,
        right_frames=1,
        left_key="l.mp4",
        right_key="r.mp4",
        rig_key="rig.json",
    )
    given = match_input(upload, match, 3)
    assert given.revision == 3
    assert (given.home_kit_colour, given.away_kit_colour) == (RED, None)
    assert (given.home_starts_left, given.teams_swapped) == (True, True)


# -- analytics swapped at read time -----------------------------------------------------------


def test_swapping_team_codes_keeps_the_unknown() -> None:
    assert [swap_team(t, True) for t in (-1, 0, 1)] == [-1, 1, 0]
    assert [swap_team(t, False) for t in (-1, 0, 1)] == [-1, 0, 1]
    columns = {"team": np.array([0, 1, -1], np.int8), "x": np.array([1.0, 2.0, 3.0])}
    served = served_teams(columns, True)
    assert served["team"].tolist() == [1, 0, -1] and served["team"].dtype == np.int8
    assert served["x"] is columns["x"] and served_teams(columns, False) is columns


async def _teams(client: httpx.AsyncClient, seeded: Seeded) -> list[tuple[int, int, float]]:
    response = await client.get(seeded.url("teams"), headers=seeded.headers)
    assert response.status_code == 200, response.text
    return [(t["team"], t["tracks"], t["distance_m"]) for t in response.json()["teams"]]


async def _heatmap_total(client: httpx.AsyncClient, seeded: Seeded, team: int) -> int:
    response = await client.get(
        seeded.url("heatmaps"), params={"team": team}, headers=seeded.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["team"] == team
    total: int = response.json()["total"]
    return total


async def _patch_sides(client: httpx.AsyncClient, seeded: Seeded, **fields: Any) -> None:
    response = await client.patch(
        f"/orgs/{seeded.org.id}/matches/{seeded.match_id}/sides",
        json=fields,
        headers=seeded.org.member(Role.owner).headers,
    )
    assert response.status_code == 200, response.text


async def _record(app: FastAPI, seeded: Seeded, record: SidesRecord | bytes) -> None:
    key = artifact_key(str(seeded.org.id), str(seeded.match_id), 2, "track", SIDES_ARTIFACT)
    body = record if isinstance(record, bytes) else record.to_json()
    await app.state.objects.put(key, body, content_type="application/json")


# The seeded revision as stored: team 0 has tracks 1 and 4 (2700 m), team 1 track 2 (1200.25 m);
# team 0's heatmap counts 4 points, team 1's 3.
STORED = [(0, 2, 2700.0), (1, 1, 1200.25)]
SWAPPED = [(0, 1, 1200.25), (1, 2, 2700.0)]


async def test_the_override_swaps_a_processed_match_without_reprocessing(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)  # tracked before sides were recorded: no sides.json
    assert await _teams(client, seeded) == STORED
    # Colours alone change nothing without a record of what the kits looked like.
    await _patch_sides(client, seeded, home_kit_colour=BLUE)
    assert await _teams(client, seeded) == STORED

    await _patch_sides(client, seeded, teams_swapped=True)
    assert await _teams(client, seeded) == SWAPPED
    assert [await _heatmap_total(client, seeded, team) for team in (0, 1)] == [3, 4]
    players = await client.get(seeded.url("players"), params={"team": 1}, headers=seeded.headers)
    assert sorted(p["track_id"] for p in players.json()["players"]) == [1, 4]
    tracks = await client.get(
        seeded.url("tracks"),
        params={"start_s": 0, "end_s": 10, "team": 0},
        headers=seeded.headers,
    )
    assert [(t["track_id"], t["team"]) for t in tracks.json()["tracks"]] == [(2, 0)]
    every = await client.get(
        seeded.url("tracks"), params={"start_s": 0, "end_s": 10}, headers=seeded.headers
    )
    assert {t["track_id"]: t["team"] for t in every.json()["tracks"]} == {1: 1, 2: 0, 3: -1}
    png = await client.get(seeded.url("heatmaps/0.png"), headers=seeded.headers)
    assert png.status_code == 200

    await _patch_sides(client, seeded, teams_swapped=False)
    assert await _teams(client, seeded) == STORED


async def test_recorded_sides_are_decided_again_with_todays_settings(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    # Tracked with red as home: kit 1 (red) was stored as 1, kit 0 as 0.
    await _record(app, seeded, SidesRecord.decide(CLUSTERS, SideSettings(home_kit_colour=RED)))
    await _patch_sides(client, seeded, home_kit_colour=RED)
    assert await _teams(client, seeded) == STORED
    # The operator corrects the colour: blue is home, so kit 0 is now served as home (1).
    await _patch_sides(client, seeded, home_kit_colour=BLUE)
    assert await _teams(client, seeded) == SWAPPED
    # ...and the override on top swaps that back.
    await _patch_sides(client, seeded, teams_swapped=True)
    assert await _teams(client, seeded) == STORED


async def test_a_run_with_the_override_is_not_swapped_twice(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    # The override was on when the revision was tracked: the stored codes already carry it.
    await _record(app, seeded, SidesRecord.decide(CLUSTERS, SideSettings(teams_swapped=True)))
    await _patch_sides(client, seeded, teams_swapped=True)
    assert await _teams(client, seeded) == STORED
    await _patch_sides(client, seeded, teams_swapped=False)
    assert await _teams(client, seeded) == SWAPPED


async def test_an_unreadable_record_serves_with_the_override_alone(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    await _record(app, seeded, b"{not json")
    assert await _teams(client, seeded) == STORED
    await _patch_sides(client, seeded, teams_swapped=True)
    assert await _teams(client, seeded) == SWAPPED
