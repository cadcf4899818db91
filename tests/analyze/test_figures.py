"""The match figures end to end on a small scripted match, their rows and the store's
per-revision replacement with its materialized views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from activities.analyze.figure_rows import (
    EVENTS_SCHEMA,
    PLAYER_CELLS_SCHEMA,
    PLAYER_FIGURES_SCHEMA,
    TEAM_MINUTES_SCHEMA,
    events_table,
    player_cells_table,
    player_figures_table,
    team_minutes_table,
    write_figures,
)
from activities.analyze.figures import MatchFigures, match_figures
from activities.analyze.identities import IdentityOverrides
from activities.track.ball_track import BallTrack
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store

FPS = 25.0
FRAMES = 1500  # one minute


def _points() -> dict[str, np.ndarray]:
    """Team 0: track 1 jogs at 3 m/s along y = 20 (lost for 2 s mid-way, back as track 8);
    track 2 stands at (40, 40); five more of team 0 and six of team 1 stand in lines.
    A referee (team -1, role 2) stands in the centre."""
    rows = []
    for f in range(FRAMES):
        if not 700 <= f < 750:
            rows.append((f, 1 if f < 700 else 8, 0, 0, 10.0 + 3.0 * f / FPS, 20.0))
        rows.append((f, 2, 0, 0, 40.0, 40.0))
        for k in range(5):
            rows.append((f, 10 + k, 0, 0, 30.0, 10.0 + 10.0 * k))
        for k in range(6):
            rows.append((f, 20 + k, 1, 0, 70.5, 10.5 + 10.0 * k))
        rows.append((f, 30, -1, 2, 52.5, 34.0))
    frame, track, team, role, x, y = (np.asarray(c) for c in zip(*rows, strict=True))
    return {
        "frame": frame,
        "track_id": track,
        "team": team,
        "role": role,
        "pitch_x": x,
        "pitch_y": y,
    }


def _ball(points: dict[str, np.ndarray]) -> BallTrack:
    """At runner 1's feet for the first 10 s, then passed to player 2, kept until the end."""
    xy = np.zeros((FRAMES, 2))
    f = np.arange(FRAMES)
    xy[:, 0] = 10.3 + 3.0 * f / FPS
    xy[:, 1] = 20.0
    flight = (f >= 250) & (f < 275)
    start = np.array([10.3 + 3.0 * 250 / FPS, 20.0])
    xy[flight] = start + np.outer((f[flight] - 250) / 25.0, np.array([40.0, 40.0]) - start)
    xy[f >= 275] = (40.3, 40.0)
    visible = np.ones(FRAMES, np.bool_)
    return BallTrack(
        f.astype(np.int64), xy, np.full(FRAMES, 0.11), visible, visible, visible, np.ones(FRAMES)
    )


def test_players_possession_passes_and_shape() -> None:
    points = _points()
    figures = match_figures(points, _ball(points), FPS, 0)
    by_id = {p.identity: p for p in figures.players}
    assert sorted(by_id) == [1, 2, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25]  # no referee
    runner = by_id[1]
    assert runner.tracks == (1, 8)  # joined across the 2 s gap
    assert runner.movement.distance_m == pytest.approx(3.0 * (FRAMES - 1) / FPS, rel=0.01)
    assert runner.movement.top_speed_mps == pytest.approx(3.0, abs=0.1)
    assert by_id[2].movement.distance_m == pytest.approx(0.0, abs=1e-6)
    assert figures.possession_share() == {0: pytest.approx(1.0), 1: pytest.approx(0.0)}
    assert figures.passes()[0] == {"attempted": 1, "completed": 1}
    minute = [m for m in figures.team_minutes if m.team == 0]
    assert len(minute) == 1 and minute[0].in_play_frames == FRAMES
    assert minute[0].shape is not None and minute[0].shape.samples == 300
    assert figures.team_heatmap(1).sum() == 6 * FRAMES
    assert figures.team_heatmap(1)[70, 10] == FRAMES
    summary = figures.to_json()
    assert summary["teams"]["0"]["passes"] == {"attempted": 1, "completed": 1}
    assert [p["identity"] for p in summary["players"]][:2] == [1, 2]


def test_overrides_change_the_figures() -> None:
    points = _points()
    overrides = IdentityOverrides(merges=[(10, 11)], roster={2: "keeper-of-the-ball"})
    figures = match_figures(points, _ball(points), FPS, 0, overrides)
    by_id = {p.identity: p for p in figures.players}
    assert 11 not in by_id and by_id[10].tracks == (10, 11)
    assert by_id[2].player == "keeper-of-the-ball"


def test_no_points_no_figures() -> None:
    empty = {k: np.zeros(0) for k in ("frame", "track_id", "team", "pitch_x", "pitch_y")}
    figures = match_figures(empty, BallTrack.not_seen(0, 0), FPS)
    assert figures.players == [] and figures.events == []
    assert player_cells_table(figures).num_rows == 0


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


def _figures() -> MatchFigures:
    points = _points()
    return match_figures(points, _ball(points), FPS, 0)


def test_rows_have_the_tables_schemas() -> None:
    figures = _figures()
    assert player_figures_table(figures).schema.equals(PLAYER_FIGURES_SCHEMA)
    assert team_minutes_table(figures).schema.equals(TEAM_MINUTES_SCHEMA)
    assert events_table(figures).schema.equals(EVENTS_SCHEMA)
    assert player_cells_table(figures).schema.equals(PLAYER_CELLS_SCHEMA)


def test_written_twice_one_copy_and_the_views_follow(analytics: AnalyticsStore) -> None:
    figures = _figures()
    for _ in range(2):
        written = write_figures(analytics, "o1", "m1", 1, figures)
    assert written["match_player_figures"] == 13
    scope = "WHERE organization_id = 'o1' AND match_id = 'm1' AND revision = 1"
    players = analytics.query_numpy(
        f"SELECT identity_id, track_ids FROM match_player_figures {scope}"
    )
    assert len(players["identity_id"]) == 13
    heat = analytics.query_numpy(
        f"SELECT team, sum(frames) AS frames FROM match_team_heatmaps {scope} "
        "GROUP BY team ORDER BY team"
    )
    assert heat["frames"].tolist() == [figures.team_heatmap(0).sum(), 6 * FRAMES]
    runner = analytics.query_numpy(
        f"SELECT sum(frames) AS frames FROM match_player_heatmaps {scope} AND identity_id = 1"
    )
    assert int(runner["frames"][0]) == FRAMES
    passes = analytics.query_numpy(
        "SELECT sum(events) AS n, sum(completed) AS done FROM match_event_minutes "
        f"{scope} AND kind = 'pass'"
    )
    assert (int(passes["n"][0]), int(passes["done"][0])) == (1, 1)
    analytics.delete_match("o1", "m1")
    for table in (
        "match_player_figures",
        "match_player_cells",
        "match_team_heatmaps",
        "match_event_minutes",
    ):
        assert int(analytics.query_numpy(f"SELECT count() AS n FROM {table}")["n"][0]) == 0
