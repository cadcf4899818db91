"""Team rosters and the analyst's identity corrections: CRUD, roles, tenancy, cycles, problems."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.analytics.identity_map import (
    IdentityConflictError,
    IdentityCycleError,
    build_identity_map,
    overrides_document,
)
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from tests.api.factories import Factory, TestOrg

PROBLEM = "application/problem+json"
P1, P2 = uuid.UUID(int=1), uuid.UUID(int=2)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _team(client: httpx.AsyncClient, org: TestOrg, name: str) -> str:
    response = await client.post(
        f"/orgs/{org.id}/teams", json={"name": name}, headers=org.member(Role.owner).headers
    )
    assert response.status_code == 201, response.text
    team_id: str = response.json()["id"]
    return team_id


async def _match(
    app: FastAPI, org: TestOrg, home: str | None, away: str | None, published: int | None = 2
) -> uuid.UUID:
    match = Match(
        title="Derby",
        organization_id=org.id,
        status=MatchStatus.ready if published else MatchStatus.created,
        revision=published or 0,
        published_revision=published,
        home_team_id=uuid.UUID(home) if home else None,
        away_team_id=uuid.UUID(away) if away else None,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    return match.id


# --- the pure map ------------------------------------------------------------------------


def test_merge_chains_resolve_to_their_end() -> None:
    mapping = build_identity_map([(1, 2), (2, 3), (7, 3)], {})
    assert [mapping.resolve(i) for i in (1, 2, 3, 7, 9)] == [3, 3, 3, 3, 9]
    assert mapping.members([1, 2, 3, 7, 9]) == {3: [1, 2, 3, 7], 9: [9]}
    assert mapping.player(1) is None


def test_a_player_follows_the_group_and_groups_of_one_player_are_one() -> None:
    mapping = build_identity_map([(1, 2)], {1: P1, 8: P1, 5: P2})
    assert mapping.resolve(1) == mapping.resolve(2) == 2
    assert mapping.player(2) == P1
    # 8 is P1 too: one person, under the smaller id of the two groups.
    assert mapping.resolve(8) == 2 and mapping.player(8) == P1
    assert mapping.resolve(5) == 5 and mapping.player(5) == P2


def test_cycles_and_two_players_in_one_group_are_refused() -> None:
    with pytest.raises(IdentityCycleError) as cycle:
        build_identity_map([(3, 1), (1, 2), (2, 3)], {})
    assert cycle.value.cycle == (1, 2, 3)
    assert "1 -> 2 -> 3 -> 1" in str(cycle.value)
    with pytest.raises(IdentityConflictError):
        build_identity_map([(1, 2)], {1: P1, 2: P2})
    with pytest.raises(ValueError):
        build_identity_map([(1, 2), (1, 3)], {})
    # Merging into itself changes nothing.
    assert build_identity_map([(4, 4)], {}).resolve(4) == 4


def test_overrides_document_is_the_analyze_stage_format() -> None:
    assert overrides_document([(2, 1)], {1: P1}) == {"merges": [[2, 1]], "roster": {"1": str(P1)}}


# --- roster --------------------------------------------------------------------------------


async def test_roster_crud_roles_and_numbers(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    team = await _team(client, org, "Rovers")
    base = f"/orgs/{org.id}/teams/{team}/players"
    analyst, viewer = org.member(Role.analyst).headers, org.member(Role.viewer).headers

    created = await client.post(base, json={"name": "Alex", "shirt_number": 9}, headers=analyst)
    assert created.status_code == 201, created.text
    alex = created.json()
    assert alex["team_id"] == team and alex["shirt_number"] == 9
    assert alex["created_by"] == str(org.member(Role.analyst).user_id)
    await client.post(base, json={"name": "Sam"}, headers=org.member(Role.admin).headers)
    await client.post(base, json={"name": "Kim", "shirt_number": 1}, headers=analyst)

    listed = await client.get(base, headers=viewer)
    assert [p["name"] for p in listed.json()] == ["Kim", "Alex", "Sam"]
    one = await client.get(f"{base}/{alex['id']}", headers=viewer)
    assert one.json()["name"] == "Alex"

    # A shirt number is worn once per team.
    _problem(await client.post(base, json={"name": "X", "shirt_number": 9}, headers=analyst), 409)
    renamed = await client.patch(
        f"{base}/{alex['id']}", json={"name": "Alex B", "shirt_number": 10}, headers=analyst
    )
    assert renamed.json()["name"] == "Alex B" and renamed.json()["shirt_number"] == 10
    cleared = await client.patch(
        f"{base}/{alex['id']}", json={"shirt_number": None}, headers=analyst
    )
    assert cleared.json()["shirt_number"] is None
    _problem(
        await client.patch(f"{base}/{alex['id']}", json={"shirt_number": 1}, headers=analyst), 409
    )
    _problem(await client.patch(f"{base}/{alex['id']}", json={"name": None}, headers=analyst), 422)
    _problem(await client.post(base, json={"name": ""}, headers=analyst), 422)
    _problem(await client.post(base, json={"name": "N", "shirt_number": -1}, headers=analyst), 422)

    # Viewers read only.
    _problem(await client.post(base, json={"name": "V"}, headers=viewer), 403)
    _problem(await client.patch(f"{base}/{alex['id']}", json={"name": "V"}, headers=viewer), 403)
    _problem(await client.delete(f"{base}/{alex['id']}", headers=viewer), 403)

    assert (await client.delete(f"{base}/{alex['id']}", headers=analyst)).status_code == 204
    _problem(await client.get(f"{base}/{alex['id']}", headers=viewer), 404)
    # Deleting the team takes its roster along.
    await client.delete(f"/orgs/{org.id}/teams/{team}", headers=analyst)
    _problem(await client.get(base, headers=viewer), 404)


async def test_rosters_stay_in_their_organization(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    team = await _team(client, org, "Rovers")
    their_team = await _team(client, other, "Rovers")
    player = (
        await client.post(
            f"/orgs/{org.id}/teams/{team}/players",
            json={"name": "Alex"},
            headers=org.member(Role.owner).headers,
        )
    ).json()
    theirs = other.member(Role.owner).headers
    # Another organization's team or player: 404, through their own org or ours.
    _problem(await client.get(f"/orgs/{other.id}/teams/{team}/players", headers=theirs), 404)
    _problem(await client.get(f"/orgs/{org.id}/teams/{team}/players", headers=theirs), 404)
    _problem(
        await client.get(
            f"/orgs/{other.id}/teams/{their_team}/players/{player['id']}", headers=theirs
        ),
        404,
    )
    _problem(
        await client.delete(
            f"/orgs/{other.id}/teams/{team}/players/{player['id']}", headers=theirs
        ),
        404,
    )
    # A player of one team is not reachable under another team of the same organization.
    second = await _team(client, org, "Athletic")
    _problem(
        await client.get(
            f"/orgs/{org.id}/teams/{second}/players/{player['id']}",
            headers=org.member(Role.viewer).headers,
        ),
        404,
    )


# --- identities ----------------------------------------------------------------------------


async def test_assign_merge_and_read_back(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    home, away = await _team(client, org, "Rovers"), await _team(client, org, "Athletic")
    bench = await _team(client, org, "Elsewhere")
    match_id = await _match(app, org, home, away)
    analyst = org.member(Role.analyst)

    async def player(team: str, name: str) -> str:
        response = await client.post(
            f"/orgs/{org.id}/teams/{team}/players", json={"name": name}, headers=analyst.headers
        )
        player_id: str = response.json()["id"]
        return player_id

    alex, sam, outsider = (
        await player(home, "Alex"),
        await player(away, "Sam"),
        await player(bench, "Out"),
    )
    base = f"/orgs/{org.id}/matches/{match_id}/identities"

    assigned = await client.put(
        f"{base}/7/player", json={"player_id": alex}, headers=analyst.headers
    )
    assert assigned.status_code == 200, assigned.text
    body = assigned.json()
    assert body["revision"] == 2 and body["player"]["name"] == "Alex"
    assert body["assigned_by"] == str(analyst.user_id)
    merged = await client.post(f"{base}/12/merge", json={"into": 7}, headers=analyst.headers)
    assert merged.status_code == 201, merged.text
    assert merged.json()["merged_by"] == str(analyst.user_id)
    await client.post(f"{base}/15/merge", json={"into": 12}, headers=analyst.headers)

    read = (await client.get(base, headers=analyst.headers)).json()
    assert read["revision"] == 2
    assert [(m["source_identity_id"], m["target_identity_id"]) for m in read["merges"]] == [
        (12, 7),
        (15, 12),
    ]
    resolved = {r["identity_id"]: (r["served_as"], r["player_id"]) for r in read["resolved"]}
    assert resolved == {7: (7, alex), 12: (7, alex), 15: (7, alex)}

    # Cycles are refused, and so are a second merge of one identity and a merge into itself.
    cycle = _problem(
        await client.post(f"{base}/7/merge", json={"into": 15}, headers=analyst.headers), 409
    )
    assert "cycle" in cycle["detail"]
    _problem(await client.post(f"{base}/12/merge", json={"into": 3}, headers=analyst.headers), 409)
    _problem(await client.post(f"{base}/3/merge", json={"into": 3}, headers=analyst.headers), 422)
    # One group, two players: refused on assignment and on merge.
    _problem(
        await client.put(f"{base}/15/player", json={"player_id": sam}, headers=analyst.headers),
        409,
    )
    await client.put(f"{base}/20/player", json={"player_id": sam}, headers=analyst.headers)
    _problem(await client.post(f"{base}/20/merge", json={"into": 7}, headers=analyst.headers), 409)
    # Players of neither team, of no team of ours, or unknown: 422.
    for unknown in (outsider, str(uuid.uuid4())):
        _problem(
            await client.put(
                f"{base}/21/player", json={"player_id": unknown}, headers=analyst.headers
            ),
            422,
        )
    # A revision the match does not have: 422; identity ids beyond UInt32: 422.
    _problem(
        await client.put(
            f"{base}/21/player", json={"player_id": sam, "revision": 9}, headers=analyst.headers
        ),
        422,
    )
    _problem(
        await client.put(
            f"{base}/{2**32}/player", json={"player_id": sam}, headers=analyst.headers
        ),
        422,
    )
    # Earlier revisions keep their own corrections.
    older = (await client.get(base, params={"revision": 1}, headers=analyst.headers)).json()
    assert older["merges"] == [] and older["assignments"] == []

    # Undo: the chain splits, the name stays with the identity it was given to.
    assert (await client.delete(f"{base}/12/merge", headers=analyst.headers)).status_code == 204
    _problem(await client.delete(f"{base}/12/merge", headers=analyst.headers), 404)
    served = {
        r["identity_id"]: r["served_as"]
        for r in (await client.get(base, headers=analyst.headers)).json()["resolved"]
    }
    assert served[15] == 12 and served[7] == 7
    assert (await client.delete(f"{base}/7/player", headers=analyst.headers)).status_code == 204
    _problem(await client.delete(f"{base}/7/player", headers=analyst.headers), 404)
    # Deleting a roster player removes the names given after the player.
    await client.delete(f"/orgs/{org.id}/teams/{away}/players/{sam}", headers=analyst.headers)
    assert (await client.get(base, headers=analyst.headers)).json()["assignments"] == []


async def test_identity_roles_tenancy_and_unpublished_matches(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org, other = await factory.org(), await factory.org()
    team = await _team(client, org, "Rovers")
    match_id = await _match(app, org, team, None)
    unpublished = await _match(app, org, None, None, published=None)
    player = (
        await client.post(
            f"/orgs/{org.id}/teams/{team}/players",
            json={"name": "Alex"},
            headers=org.member(Role.owner).headers,
        )
    ).json()["id"]
    base = f"/orgs/{org.id}/matches/{match_id}/identities"
    viewer = org.member(Role.viewer).headers

    # Viewers neither read nor write corrections (they are analytics).
    _problem(await client.get(base, headers=viewer), 403)
    _problem(await client.put(f"{base}/1/player", json={"player_id": player}, headers=viewer), 403)
    _problem(await client.post(f"{base}/1/merge", json={"into": 2}, headers=viewer), 403)
    _problem(await client.delete(f"{base}/1/merge", headers=viewer), 403)
    # Another organization: 404 whether through its org id or ours, and our player is unknown.
    theirs = other.member(Role.owner).headers
    _problem(await client.get(base, headers=theirs), 404)
    _problem(
        await client.get(f"/orgs/{other.id}/matches/{match_id}/identities", headers=theirs), 404
    )
    their_match = await _match(app, other, None, None)
    _problem(
        await client.put(
            f"/orgs/{other.id}/matches/{their_match}/identities/1/player",
            json={"player_id": player},
            headers=theirs,
        ),
        422,
    )
    _problem(
        await client.post(
            f"/orgs/{other.id}/matches/{match_id}/identities/1/merge",
            json={"into": 2},
            headers=theirs,
        ),
        404,
    )
    # No published revision and none named: 409; naming one works.
    owner = org.member(Role.owner).headers
    url = f"/orgs/{org.id}/matches/{unpublished}/identities"
    _problem(await client.post(f"{url}/1/merge", json={"into": 2}, headers=owner), 409)
    _problem(await client.get(url, headers=owner), 409)
    _problem(
        await client.post(f"{url}/1/merge", json={"into": 2, "revision": 1}, headers=owner), 422
    )
    # Unauthenticated: 401 problem.
    _problem(await client.get(base), 401)
