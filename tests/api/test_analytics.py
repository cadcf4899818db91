"""The analytics endpoints against the real embedded stores: chDB rows, catalog matches, objects.

The data set (`_seed`) is small enough to check by hand: one organization's match at revision
2 with a frame rate of 50 fps in its summary, rows of an older revision 1 and rows another
organization wrote under the same match id, both of which must never show.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from activities.analyze.metrics import heatmap_grid
from api.analytics.queries import frame_window, window_error
from api.analytics.shaping import PlayerSort, frame_rate, group_tracks, players, track_totals
from polyvision.artifacts import artifact_key
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from tests.api.factories import Factory
from tests.api.factories import TestOrg as Tenant

NAN = math.nan
PROBLEM = "application/problem+json"


# -- data -------------------------------------------------------------------------------------


def _points(rows: list[tuple[int, int, int, float, float, float]]) -> dict[str, np.ndarray]:
    """``track_points`` columns from (frame, track_id, team, x, y, speed) tuples."""
    frame, track, team, x, y, speed = zip(*rows, strict=True)
    return {
        "frame": np.asarray(frame, dtype=np.uint32),
        "track_id": np.asarray(track, dtype=np.uint32),
        "team": np.asarray(team, dtype=np.int8),
        "pitch_x": np.asarray(x, dtype=np.float32),
        "pitch_y": np.asarray(y, dtype=np.float32),
        "speed": np.asarray(speed, dtype=np.float32),
    }


def _stats(rows: list[tuple[int, int, int, float, float, int]]) -> dict[str, np.ndarray]:
    """``player_stats`` columns from (track_id, team, frames, distance, max_speed, sprints)."""
    track, team, frames, distance, max_speed, sprints = zip(*rows, strict=True)
    return {
        "track_id": np.asarray(track, dtype=np.uint32),
        "team": np.asarray(team, dtype=np.int8),
        "frames": np.asarray(frames, dtype=np.uint32),
        "distance_m": np.asarray(distance, dtype=np.float32),
        "max_speed": np.asarray(max_speed, dtype=np.float32),
        "sprints": np.asarray(sprints, dtype=np.uint16),
    }


def _possession(rows: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """``team_possession`` columns from (team, frames) tuples."""
    team, frames = zip(*rows, strict=True)
    return {
        "team": np.asarray(team, dtype=np.int8),
        "frames": np.asarray(frames, dtype=np.uint32),
    }


def _ball(rows: list[tuple[int, float, float, float, int, int, int, float]]) -> dict[str, Any]:
    """``ball_points`` columns from (frame, x, y, z, visible, observed, in_play, confidence)."""
    frame, x, y, z, visible, observed, in_play, confidence = zip(*rows, strict=True)
    return {
        "frame": np.asarray(frame, dtype=np.uint32),
        "pitch_x": np.asarray(x, dtype=np.float32),
        "pitch_y": np.asarray(y, dtype=np.float32),
        "height_m": np.asarray(z, dtype=np.float32),
        "visible": np.asarray(visible, dtype=np.uint8),
        "observed": np.asarray(observed, dtype=np.uint8),
        "in_play": np.asarray(in_play, dtype=np.uint8),
        "confidence": np.asarray(confidence, dtype=np.float32),
    }


# Revision 2 at 50 fps. Chunk 0: frames 0-249, chunk 1: 250-499.
CHUNK0_POINTS = [
    (0, 1, 0, 10.0, 20.0, 1.0),
    (25, 1, 0, 11.0, 20.0, 1.5),
    (50, 1, 0, 12.0, 20.0, 2.25),
    (25, 2, 1, 90.0, 60.0, 3.0),
    (50, 2, 1, 91.0, 60.0, 3.25),
    (75, 2, 1, NAN, NAN, 0.0),  # no homography: never served, never counted
    (50, 3, -1, 52.0, 33.0, 10.0),  # the ball
]
CHUNK1_POINTS = [
    (250, 1, 0, 50.0, 30.0, 2.5),
    (300, 2, 1, 110.0, -3.0, 4.0),  # off the pitch: the nearest edge cell
]
CHUNK0_STATS = [
    (1, 0, 30000, 1100.5, 6.5, 1),
    (2, 1, 24000, 1000.25, 7.75, 2),
    (3, -1, 30000, 3000.0, 11.0, 0),
]
CHUNK1_STATS = [
    (1, 0, 30000, 1199.5, 8.0, 2),
    (2, 0, 6000, 200.0, 5.0, 0),  # the same track under the other team for a while
    (4, 0, 15000, 400.0, 4.5, 0),
]
# Team 0 had the ball 400 frames, team 1 300; contested and free frames are no one's.
CHUNK0_POSSESSION = [(0, 300), (1, 100), (-1, 50)]
CHUNK1_POSSESSION = [(0, 100), (1, 200), (-2, 20)]
CHUNK0_BALL = [
    (25, 50.0, 30.0, 0.11, 1, 1, 1, 0.9),
    (50, 51.0, 30.0, 2.5, 1, 0, 1, 0.4),  # in the air, bridged between two sightings
    (75, NAN, NAN, NAN, 0, 0, 0, 0.0),  # not visible: never served
]
CHUNK1_BALL = [(250, 106.0, 30.0, 0.11, 1, 1, 0, 0.8)]  # out of play, still served
# What must never show: an older revision, and another tenant under the same match id.
STALE_POINTS = [(0, 1, 0, 1.0, 1.0, 9.0), (25, 9, 1, 1.0, 1.0, 9.0)]
STALE_STATS = [(1, 0, 99999, 5000.0, 11.5, 9), (9, 1, 500, 10.0, 3.0, 0)]
STALE_POSSESSION = [(1, 99999)]
STALE_BALL = [(25, 1.0, 1.0, 9.0, 1, 1, 1, 0.1), (100, 1.0, 1.0, 9.0, 1, 1, 1, 0.1)]


@dataclass
class Seeded:
    org: Tenant
    other: Tenant
    match_id: uuid.UUID

    def url(self, tail: str, match_id: uuid.UUID | None = None) -> str:
        return f"/orgs/{self.org.id}/matches/{match_id or self.match_id}/analytics/{tail}"

    @property
    def headers(self) -> dict[str, str]:
        return self.org.member(Role.analyst).headers


async def _match(
    app: FastAPI,
    org_id: uuid.UUID,
    *,
    revision: int = 2,
    status: MatchStatus = MatchStatus.ready,
    fps: float | None = 50.0,
) -> uuid.UUID:
    """A catalog match at ``revision`` and, with ``fps``, that revision's ``summary.json``."""
    published = revision if status is MatchStatus.ready and revision >= 1 else None
    match = Match(
        title="Derby",
        organization_id=org_id,
        status=status,
        revision=revision,
        published_revision=published,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    if fps is not None:
        key = artifact_key(str(org_id), str(match.id), revision, "index", "summary.json")
        body = json.dumps({"version": 1, "fps": fps, "frames": 500, "revision": revision})
        await app.state.objects.put(key, body.encode(), content_type="application/json")
    return match.id


async def _seed(app: FastAPI, factory: Factory) -> Seeded:
    org = await factory.org(roles=(Role.owner, Role.analyst, Role.viewer))
    other = await factory.org(roles=(Role.owner,))
    match_id = await _match(app, org.id)
    analytics: AnalyticsStore = app.state.analytics
    mine, theirs = str(org.id), str(other.id)
    for chunk, points, stats, possession, ball in (
        (0, CHUNK0_POINTS, CHUNK0_STATS, CHUNK0_POSSESSION, CHUNK0_BALL),
        (1, CHUNK1_POINTS, CHUNK1_STATS, CHUNK1_POSSESSION, CHUNK1_BALL),
    ):
        analytics.replace_slice("track_points", mine, str(match_id), 2, chunk, _points(points))
        analytics.replace_slice("player_stats", mine, str(match_id), 2, chunk, _stats(stats))
        analytics.replace_slice(
            "team_possession", mine, str(match_id), 2, chunk, _possession(possession)
        )
        analytics.replace_slice("ball_points", mine, str(match_id), 2, chunk, _ball(ball))
    for org_id, revision in ((mine, 1), (theirs, 2)):
        analytics.replace_slice(
            "track_points", org_id, str(match_id), revision, 0, _points(STALE_POINTS)
        )
        analytics.replace_slice(
            "player_stats", org_id, str(match_id), revision, 0, _stats(STALE_STATS)
        )
        analytics.replace_slice(
            "team_possession", org_id, str(match_id), revision, 0, _possession(STALE_POSSESSION)
        )
        analytics.replace_slice(
            "ball_points", org_id, str(match_id), revision, 0, _ball(STALE_BALL)
        )
    return Seeded(org=org, other=other, match_id=match_id)


def _decode(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# -- pure helpers -----------------------------------------------------------------------------


def test_frame_window_is_half_open_in_frames() -> None:
    assert frame_window(0.0, 2.0, 25.0) == (0, 50)
    assert frame_window(1.0, 1.02, 50.0) == (50, 51)
    assert frame_window(0.1, 0.2, 30.0) == (3, 6)  # 0.1 * 30 is 3.0000000000000004
    assert frame_window(0.01, 0.05, 25.0) == (1, 2)  # frame 0 is before 0.01 s


def test_window_error_explains_refusals() -> None:
    assert window_error(0.0, 600.0) is None
    assert window_error(5.0, 5.0) == "start_s must be before end_s."
    assert window_error(0.0, 600.5) == "The time window is at most 600 s."


def test_frame_rate_falls_back_with_a_note() -> None:
    assert frame_rate(b'{"fps": 29.97}', 25.0).fps == 29.97
    assert frame_rate(b'{"fps": 29.97}', 25.0).note is None
    for body in (None, b"not json", b"[]", b'{"fps": 0}', b'{"fps": "50"}', b'{"fps": true}'):
        rate = frame_rate(body, 25.0)
        assert rate.fps == 25.0
        assert rate.note == "The match summary gives no frame rate; 25 fps is assumed."


def test_shaping_handles_empty_results() -> None:
    # chDB answers an empty SELECT with no columns at all.
    assert group_tracks({}, 25.0) == []
    assert players(track_totals({}), 25.0, PlayerSort.distance_m_desc) == []


def test_track_team_is_the_majority_of_its_points() -> None:
    columns = _points(
        [(0, 5, 1, 1.0, 1.0, 1.0), (1, 5, 0, 2.0, 1.0, NAN), (2, 5, 1, 3.0, 1.0, 1.0)]
    )
    (series,) = group_tracks(columns, 1.0)
    assert series.team == 1
    assert series.points[1] == (1.0, 2.0, 1.0, None)


# -- endpoints --------------------------------------------------------------------------------


async def test_tracks_in_a_window_use_the_summary_frame_rate(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    response = await client.get(
        seeded.url("tracks"), params={"start_s": 0.5, "end_s": 5.0}, headers=seeded.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fps"] == 50.0
    assert body["note"] is None
    assert body["revision"] == 2
    assert body["match_id"] == str(seeded.match_id)
    # Frames [25, 250): frame 0 is before the window, frame 250 (5.0 s) is its end.
    assert body["tracks"] == [
        {"track_id": 1, "team": 0, "points": [[0.5, 11.0, 20.0, 1.5], [1.0, 12.0, 20.0, 2.25]]},
        {"track_id": 2, "team": 1, "points": [[0.5, 90.0, 60.0, 3.0], [1.0, 91.0, 60.0, 3.25]]},
        {"track_id": 3, "team": -1, "points": [[1.0, 52.0, 33.0, 10.0]]},
    ]


async def test_tracks_filters_by_track_and_team(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    window = {"start_s": 0.0, "end_s": 600.0}
    by_track = await client.get(
        seeded.url("tracks"), params={**window, "track_id": 1}, headers=seeded.headers
    )
    assert by_track.json()["tracks"] == [
        {
            "track_id": 1,
            "team": 0,
            "points": [
                [0.0, 10.0, 20.0, 1.0],
                [0.5, 11.0, 20.0, 1.5],
                [1.0, 12.0, 20.0, 2.25],
                [5.0, 50.0, 30.0, 2.5],
            ],
        }
    ]
    by_team = await client.get(
        seeded.url("tracks"), params={**window, "team": 1}, headers=seeded.headers
    )
    # The NaN point at frame 75 is left out; the off-pitch point is served as measured.
    assert by_team.json()["tracks"] == [
        {
            "track_id": 2,
            "team": 1,
            "points": [
                [0.5, 90.0, 60.0, 3.0],
                [1.0, 91.0, 60.0, 3.25],
                [6.0, 110.0, -3.0, 4.0],
            ],
        }
    ]
    empty = await client.get(
        seeded.url("tracks"), params={"start_s": 100.0, "end_s": 200.0}, headers=seeded.headers
    )
    assert empty.status_code == 200
    assert empty.json()["tracks"] == []


async def test_the_ball_in_a_window_of_the_current_revision(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    response = await client.get(
        seeded.url("ball"), params={"start_s": 0.5, "end_s": 5.0}, headers=seeded.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["fps"], body["revision"], body["match_id"]) == (50.0, 2, str(seeded.match_id))
    # Frames [25, 250) at 50 fps; frame 75 (not visible) is left out; the older revision's and
    # the other tenant's ball at frames 25 and 100 never show.
    assert body["points"] == [
        [0.5, 50.0, 30.0, 0.11, True, True, 0.9],
        [1.0, 51.0, 30.0, 2.5, False, True, 0.4],
    ]
    whole = await client.get(
        seeded.url("ball"), params={"start_s": 0, "end_s": 600}, headers=seeded.headers
    )
    points = whole.json()["points"]
    assert len(points) == 3 and points[-1] == [5.0, 106.0, 30.0, 0.11, True, False, 0.8]


async def test_tracks_without_a_summary_assume_25_fps(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id, revision=1, fps=None)
    app.state.analytics.replace_slice(
        "track_points", str(org.id), str(match_id), 1, 0, _points([(50, 7, 0, 5.0, 5.0, 1.0)])
    )
    response = await client.get(
        f"/orgs/{org.id}/matches/{match_id}/analytics/tracks",
        params={"start_s": 1.0, "end_s": 3.0},
        headers=org.member(Role.analyst).headers,
    )
    body = response.json()
    assert body["fps"] == 25.0
    assert body["note"] == "The match summary gives no frame rate; 25 fps is assumed."
    assert body["tracks"] == [{"track_id": 7, "team": 0, "points": [[2.0, 5.0, 5.0, 1.0]]}]


async def test_heatmap_grid_counts_points_per_cell(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    team0 = (
        await client.get(seeded.url("heatmaps"), params={"team": 0}, headers=seeded.headers)
    ).json()
    assert team0["shape"] == [20, 16]
    assert team0["cell_m"] == [5.25, 4.25]
    assert team0["pitch_m"] == [105.0, 68.0]
    assert team0["team"] == 0
    assert team0["total"] == 4
    expected0 = np.zeros((20, 16), dtype=np.int64)
    expected0[1, 4] = 1  # (10, 20)
    expected0[2, 4] = 2  # (11, 20), (12, 20)
    expected0[9, 7] = 1  # (50, 30)
    assert team0["grid"] == expected0.tolist()

    team1 = (
        await client.get(seeded.url("heatmaps"), params={"team": 1}, headers=seeded.headers)
    ).json()
    expected1 = np.zeros((20, 16), dtype=np.int64)
    expected1[17, 14] = 2  # (90, 60), (91, 60)
    expected1[19, 0] = 1  # (110, -3), off the pitch
    assert team1["grid"] == expected1.tolist()
    assert team1["total"] == 3

    coarse = await client.get(
        seeded.url("heatmaps"), params={"team": 0, "cell_m": 10}, headers=seeded.headers
    )
    body = coarse.json()
    assert body["shape"] == [10, 7]
    assert body["cell_m"] == pytest.approx([10.5, 68.0 / 7])
    expected = np.zeros((10, 7), dtype=np.int64)
    expected[0, 2] = 1
    expected[1, 2] = 2
    expected[4, 3] = 1
    assert body["grid"] == expected.tolist()


async def test_heatmap_sql_matches_the_analyze_stage_histogram(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id, revision=3)
    rng = np.random.default_rng(11)
    n = 3000
    x = rng.uniform(-4.0, 109.0, n).astype(np.float32)
    y = rng.uniform(-3.0, 71.0, n).astype(np.float32)
    x[::97] = np.nan
    team = rng.integers(-1, 2, n).astype(np.int8)
    columns = {
        "frame": np.arange(n, dtype=np.uint32),
        "track_id": rng.integers(1, 30, n).astype(np.uint32),
        "team": team,
        "pitch_x": x,
        "pitch_y": y,
        "speed": np.ones(n, dtype=np.float32),
    }
    app.state.analytics.replace_slice("track_points", str(org.id), str(match_id), 3, 0, columns)
    for cell_m in (None, 2.5, 5.0):
        params: dict[str, Any] = {} if cell_m is None else {"cell_m": cell_m}
        cells = None if cell_m is None else (cell_m, cell_m)
        reference = (
            heatmap_grid(x, y, team) if cells is None else heatmap_grid(x, y, team, cell_m=cells)
        )
        for value in (0, 1):
            response = await client.get(
                f"/orgs/{org.id}/matches/{match_id}/analytics/heatmaps",
                params={"team": value, **params},
                headers=org.member(Role.analyst).headers,
            )
            assert response.json()["grid"] == reference[value].tolist(), (cell_m, value)


async def test_heatmap_png_is_cached_and_deterministic(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    first = await client.get(seeded.url("heatmaps/0.png"), headers=seeded.headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"] == "private, max-age=300"
    etag = first.headers["etag"]
    image = _decode(first.content)
    assert image.shape == (544, 840, 3)

    second = await client.get(seeded.url("heatmaps/0.png"), headers=seeded.headers)
    assert second.content == first.content
    assert second.headers["etag"] == etag

    unchanged = await client.get(
        seeded.url("heatmaps/0.png"), headers={**seeded.headers, "If-None-Match": etag}
    )
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    small = await client.get(
        seeded.url("heatmaps/1.png"),
        params={"width": 210, "cell_m": 5, "lines": False},
        headers=seeded.headers,
    )
    decoded = _decode(small.content)
    assert decoded.shape == (136, 210, 3)
    assert small.headers["etag"] != etag


async def test_heatmap_png_of_an_empty_match_renders(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id)
    url = f"/orgs/{org.id}/matches/{match_id}/analytics/heatmaps"
    headers = org.member(Role.analyst).headers
    grid = await client.get(url, params={"team": 1}, headers=headers)
    assert grid.json()["total"] == 0
    png = await client.get(f"{url}/1.png", params={"width": 105}, headers=headers)
    assert png.status_code == 200
    image = _decode(png.content)
    assert image.shape == (68, 105, 3)


async def test_players_sum_chunks_of_the_current_revision(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    response = await client.get(seeded.url("players"), headers=seeded.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fps"] == 50.0
    assert body["revision"] == 2
    assert body["players"] == [
        # 60000 frames at 50 fps = 20 min; 1100.5 + 1199.5 m; max(6.5, 8); 1 + 2 sprints.
        {"track_id": 1, "team": 0, "frames": 60000, "minutes_played": 20.0,
         "distance_m": 2300.0, "max_speed": 8.0, "sprints": 3},
        # Seen 24000 frames with team 1 and 6000 with team 0: team 1.
        {"track_id": 2, "team": 1, "frames": 30000, "minutes_played": 10.0,
         "distance_m": 1200.25, "max_speed": 7.75, "sprints": 2},
        {"track_id": 3, "team": -1, "frames": 30000, "minutes_played": 10.0,
         "distance_m": 3000.0, "max_speed": 11.0, "sprints": 0},
        {"track_id": 4, "team": 0, "frames": 15000, "minutes_played": 5.0,
         "distance_m": 400.0, "max_speed": 4.5, "sprints": 0},
    ]  # fmt: skip


PLAYER_ORDERS: list[tuple[dict[str, Any], list[int]]] = [
    ({"sort": "-distance_m"}, [3, 1, 2, 4]),
    ({"sort": "distance_m"}, [4, 2, 1, 3]),
    ({"sort": "-max_speed"}, [3, 1, 2, 4]),
    ({"sort": "max_speed"}, [4, 2, 1, 3]),
    ({"sort": "-distance_m", "team": 0}, [1, 4]),
    ({"team": -1}, [3]),
]


async def test_players_sort_and_filter(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    for params, order in PLAYER_ORDERS:
        response = await client.get(seeded.url("players"), params=params, headers=seeded.headers)
        assert [p["track_id"] for p in response.json()["players"]] == order, params


async def test_team_totals(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    seeded = await _seed(app, factory)
    response = await client.get(seeded.url("teams"), headers=seeded.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["teams"] == [
        # Tracks 1 and 4: 75000 frames = 1500 s = 25 min; 2700 m / 1500 s = 1.8 m/s.
        {"team": 0, "tracks": 2, "minutes_played": 25.0, "distance_m": 2700.0,
         "mean_speed": 1.8, "max_speed": 8.0, "sprints": 3,
         # 400 of the 700 frames one team alone had the ball (contested ones left out).
         "possession_frames": 400, "possession_share": 0.5714, "possession_minutes": []},
        # Track 2: 30000 frames = 600 s; 1200.25 m / 600 s = 2.0004 m/s.
        {"team": 1, "tracks": 1, "minutes_played": 10.0, "distance_m": 1200.25,
         "mean_speed": 2.0, "max_speed": 7.75, "sprints": 2,
         "possession_frames": 300, "possession_share": 0.4286, "possession_minutes": []},
    ]  # fmt: skip


async def test_possession_per_minute_comes_from_the_analyze_stage_minutes(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    analytics: AnalyticsStore = app.state.analytics

    def minutes(org: str, revision: int, rows: list[tuple[int, int, int, int]]) -> None:
        team, minute, possession, in_play = (np.array(c) for c in zip(*rows, strict=True))
        analytics.insert(
            "match_team_minutes",
            {
                "organization_id": np.array([org] * len(rows), object),
                "match_id": np.array([str(seeded.match_id)] * len(rows), object),
                "revision": np.full(len(rows), revision, np.uint32),
                "team": team.astype(np.int8),
                "minute": minute.astype(np.uint16),
                "possession_frames": possession.astype(np.uint32),
                "in_play_frames": in_play.astype(np.uint32),
            },
        )

    minutes(str(seeded.org.id), 2, [(0, 0, 900, 1400), (1, 0, 500, 1400), (0, 1, 300, 1500)])
    # Another organization's and an older revision's rows stay out.
    minutes(str(seeded.other.id), 2, [(0, 0, 1, 1)])
    minutes(str(seeded.org.id), 1, [(0, 5, 7, 7)])
    teams = (await client.get(seeded.url("teams"), headers=seeded.headers)).json()["teams"]
    assert teams[0]["possession_minutes"] == [
        {"minute": 0, "possession_frames": 900, "in_play_frames": 1400},
        {"minute": 1, "possession_frames": 300, "in_play_frames": 1500},
    ]
    assert teams[1]["possession_minutes"] == [
        {"minute": 0, "possession_frames": 500, "in_play_frames": 1400}
    ]


async def test_a_match_without_rows_gives_empty_stats(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id)
    base = f"/orgs/{org.id}/matches/{match_id}/analytics"
    headers = org.member(Role.analyst).headers
    assert (await client.get(f"{base}/players", headers=headers)).json()["players"] == []
    teams = (await client.get(f"{base}/teams", headers=headers)).json()["teams"]
    assert teams == [
        {"team": team, "tracks": 0, "minutes_played": 0.0, "distance_m": 0.0,
         "mean_speed": 0.0, "max_speed": 0.0, "sprints": 0,
         "possession_frames": 0, "possession_share": None, "possession_minutes": []}
        for team in (0, 1)
    ]  # fmt: skip
    ball = await client.get(f"{base}/ball", params={"start_s": 0, "end_s": 600}, headers=headers)
    assert ball.status_code == 200 and ball.json()["points"] == []


ENDPOINTS = [
    ("tracks", {"start_s": 0, "end_s": 10}),
    ("ball", {"start_s": 0, "end_s": 10}),
    ("heatmaps", {"team": 0}),
    ("heatmaps/0.png", {}),
    ("players", {}),
    ("teams", {}),
]


async def test_access_rules(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    seeded = await _seed(app, factory)
    other_match = await _match(app, seeded.other.id)
    not_ready = await _match(app, seeded.org.id, status=MatchStatus.processing)
    viewer = seeded.org.member(Role.viewer).headers
    outsider = seeded.other.member(Role.owner).headers
    for tail, params in ENDPOINTS:
        ok = await client.get(seeded.url(tail), params=params, headers=seeded.headers)
        assert ok.status_code == 200, (tail, ok.text)
        owner = await client.get(
            seeded.url(tail), params=params, headers=seeded.org.member(Role.owner).headers
        )
        assert owner.status_code == 200, tail
        _problem(await client.get(seeded.url(tail), params=params), 401)
        _problem(await client.get(seeded.url(tail), params=params, headers=viewer), 403)
        # Not a member of the path's organization: 404, like an organization that is not there.
        _problem(await client.get(seeded.url(tail), params=params, headers=outsider), 404)
        # Another organization's match under our own organization: 404, never its data.
        foreign = seeded.url(tail, match_id=other_match)
        body = _problem(await client.get(foreign, params=params, headers=seeded.headers), 404)
        assert body["detail"] == "Match not found."
        missing = seeded.url(tail, match_id=uuid.uuid4())
        _problem(await client.get(missing, params=params, headers=seeded.headers), 404)
        pending = seeded.url(tail, match_id=not_ready)
        body = _problem(await client.get(pending, params=params, headers=seeded.headers), 409)
        assert "not available yet" in body["detail"]


BAD_PARAMETERS: list[tuple[str, dict[str, Any]]] = [
    ("tracks", {"start_s": 10, "end_s": 10}),
    ("tracks", {"start_s": 10, "end_s": 5}),
    ("tracks", {"start_s": 0, "end_s": 600.5}),
    ("tracks", {"start_s": -1, "end_s": 5}),
    ("tracks", {"start_s": "nan", "end_s": 5}),
    ("tracks", {"end_s": 5}),
    ("tracks", {"start_s": 0, "end_s": 5, "team": 2}),
    ("tracks", {"start_s": 0, "end_s": 5, "track_id": -1}),
    ("ball", {"start_s": 10, "end_s": 10}),
    ("ball", {"start_s": 0, "end_s": 600.5}),
    ("ball", {"start_s": -1, "end_s": 5}),
    ("ball", {"start_s": 0, "end_s": "inf"}),
    ("ball", {"start_s": 0}),
    ("heatmaps", {}),
    ("heatmaps", {"team": -1}),
    ("heatmaps", {"team": 0, "cell_m": 3}),
    ("heatmaps", {"team": 0, "cell_m": "big"}),
    ("heatmaps/2.png", {}),
    ("heatmaps/0.png", {"width": 50}),
    ("heatmaps/0.png", {"width": 5000}),
    ("heatmaps/0.png", {"cell_m": 7}),
    ("players", {"sort": "speed"}),
    ("players", {"team": 5}),
]


async def test_bad_parameters_are_422_problems(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id)
    base = f"/orgs/{org.id}/matches/{match_id}/analytics"
    for tail, params in BAD_PARAMETERS:
        response = await client.get(
            f"{base}/{tail}", params=params, headers=org.member(Role.analyst).headers
        )
        assert response.status_code == 422, (tail, params, response.text)
        assert _problem(response, 422)["detail"]
    window = await client.get(
        f"{base}/tracks",
        params={"start_s": 0, "end_s": 601},
        headers=org.member(Role.analyst).headers,
    )
    assert window.json()["detail"] == "The time window is at most 600 s."
    cell = await client.get(
        f"{base}/heatmaps",
        params={"team": 0, "cell_m": 3},
        headers=org.member(Role.analyst).headers,
    )
    assert "cell_m must be one of 1, 2.5, 5, 10" in cell.text


async def test_openapi_documents_the_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    base = "/orgs/{org_id}/matches/{match_id}/analytics"
    for tail in ("tracks", "ball", "heatmaps", "heatmaps/{team}.png", "players", "teams"):
        operation = document["paths"][f"{base}/{tail}"]["get"]
        assert operation["summary"]
        for status in ("401", "403", "404", "409", "422"):
            assert status in operation["responses"], (tail, status)
    png = document["paths"][f"{base}/heatmaps/{{team}}.png"]["get"]
    assert "image/png" in png["responses"]["200"]["content"]
    assert document["components"]["schemas"]["TracksResponse"]["examples"]
    assert document["components"]["schemas"]["BallResponse"]["examples"]


async def test_an_unavailable_analytics_store_is_a_503_problem(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.analyst,))
    match_id = await _match(app, org.id)
    # A closed store refuses like an unreachable one (closing is idempotent for the lifespan).
    app.state.analytics.close()
    response = await client.get(
        f"/orgs/{org.id}/matches/{match_id}/analytics/players",
        headers=org.member(Role.analyst).headers,
    )
    body = _problem(response, 503)
    assert body["detail"] == "The analytics store is unavailable; try again shortly."


async def test_a_reprocess_in_progress_keeps_serving_the_published_revision(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    seeded = await _seed(app, factory)
    before = await client.get(seeded.url("players"), headers=seeded.headers)
    assert before.status_code == 200
    assert before.json()["revision"] == 2 and before.json()["players"]
    async with app.state.sessions() as session:
        row = await session.get(Match, seeded.match_id)
        assert row is not None
        row.revision, row.status = row.revision + 1, MatchStatus.processing
        session.add(row)
        await session.commit()
    during = await client.get(seeded.url("players"), headers=seeded.headers)
    assert during.status_code == 200, during.text
    assert during.json() == before.json()
