"""Exporting tracks from the analytics store: team and role codes become the truth's names.

Runs on an embedded chDB store with the packaged migrations, so it also checks that
``0003_track_role`` applies on top of the earlier schema and fills old rows with -1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from activities.track.ball_points import ball_points_table
from activities.track.ball_track import BallTrack
from evaluation.export import export_ball, export_tracks, track_names
from polyvision.roles import (
    ROLE_GOALKEEPER,
    ROLE_NAMES,
    ROLE_PLAYER,
    ROLE_REFEREE,
    ROLE_UNKNOWN,
    TEAM_AWAY,
    TEAM_HOME,
    TEAM_NAMES,
    TEAM_UNKNOWN,
    role_code,
    role_name,
    team_code,
    team_name,
)
from polyvision.storage.analytics import (
    AnalyticsStore,
    apply_migrations,
    load_migrations,
    open_analytics_store,
)

ORG, MATCH = "org", "match"


@pytest.fixture
def bare_store(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        yield store


def points(team: list[int], role: list[int] | None = None) -> dict[str, np.ndarray]:
    """``track_points`` rows of one frame, tracks 1..n at x = 1..n; no role column if None."""
    n = len(team)
    rows = {
        "organization_id": np.full(n, ORG, dtype=object),
        "match_id": np.full(n, MATCH, dtype=object),
        "revision": np.ones(n, np.uint32),
        "chunk": np.zeros(n, np.uint32),
        "frame": np.zeros(n, np.uint32),
        "track_id": np.arange(1, n + 1, dtype=np.uint32),
        "team": np.array(team, np.int8),
        "pitch_x": np.arange(1, n + 1, dtype=np.float32),
        "pitch_y": np.full(n, 34.0, np.float32),
        "speed": np.zeros(n, np.float32),
    }
    if role is not None:
        rows["role"] = np.array(role, np.int8)
    return rows


def test_roles_module_codes_and_names():
    assert (TEAM_UNKNOWN, TEAM_AWAY, TEAM_HOME) == (-1, 0, 1)
    assert (ROLE_UNKNOWN, ROLE_PLAYER, ROLE_GOALKEEPER, ROLE_REFEREE) == (-1, 0, 1, 2)
    assert TEAM_NAMES == {0: "away", 1: "home"}
    assert ROLE_NAMES == {0: "outfield", 1: "goalkeeper", 2: "referee"}
    for code in (-1, 0, 1, 7):
        assert team_code(team_name(code)) == (code if code in TEAM_NAMES else -1)
    for code in (-1, 0, 1, 2, 7):
        assert role_code(role_name(code)) == (code if code in ROLE_NAMES else -1)
    assert (team_code("referee"), role_code("ball")) == (-1, -1)


def test_track_names_name_a_referee_track_referee_whatever_its_team():
    teams, roles = track_names(
        np.array([1, 0, -1, 0, 1, 5], np.int8), np.array([0, 1, 2, 2, -1, 0], np.int8)
    )
    assert teams.tolist() == ["home", "away", "referee", "referee", "home", "unknown"]
    assert roles.tolist() == ["outfield", "goalkeeper", "referee", "referee", "unknown", "outfield"]


def test_export_reads_team_and_role(bare_store: AnalyticsStore):
    apply_migrations(bare_store)
    bare_store.insert(
        "track_points",
        points([TEAM_HOME, TEAM_AWAY, TEAM_UNKNOWN, TEAM_HOME], [0, 1, 2, ROLE_UNKNOWN]),
    )
    tracks = export_tracks(bare_store, ORG, MATCH, 1)
    assert tracks.track_id.tolist() == [1, 2, 3, 4]
    assert tracks.team.tolist() == ["home", "away", "referee", "home"]
    assert tracks.role is not None
    assert tracks.role.tolist() == ["outfield", "goalkeeper", "referee", "unknown"]
    assert tracks.position[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_role_defaults_to_unknown_for_writers_without_it(bare_store: AnalyticsStore):
    apply_migrations(bare_store)
    bare_store.insert("track_points", points([TEAM_HOME, TEAM_AWAY]))
    tracks = export_tracks(bare_store, ORG, MATCH, 1)
    assert tracks.role is not None
    assert tracks.role.tolist() == ["unknown", "unknown"]
    assert tracks.team.tolist() == ["home", "away"]


def test_role_migration_fills_existing_rows(bare_store: AnalyticsStore):
    migrations = load_migrations()
    role = next(m for m in migrations if m.name == "track_role")
    before = [m for m in migrations if m.version < role.version]
    apply_migrations(bare_store, before)
    bare_store.insert("track_points", points([TEAM_AWAY]))

    assert apply_migrations(bare_store, [*before, role]) == [role]

    rows = bare_store.query_numpy("SELECT role FROM track_points")
    assert rows["role"].tolist() == [-1]
    # Re-running the statements (a half-applied migration retried) is harmless.
    for statement in role.statements():
        bare_store.execute(statement)
    tracks = export_tracks(bare_store, ORG, MATCH, 1)
    assert tracks.role is not None and tracks.role.tolist() == ["unknown"]


def test_export_ball_reads_ball_points(bare_store: AnalyticsStore) -> None:
    apply_migrations(bare_store)
    assert export_ball(bare_store, ORG, MATCH, 1) is None  # processed before the ball
    track = BallTrack(
        frame=np.arange(4, dtype=np.int64),
        xy=np.array([[50.0, 30.0], [np.nan, np.nan], [52.0, 31.0], [106.0, 31.0]]),
        z=np.array([0.11, np.nan, 2.5, 0.11]),
        visible=np.array([True, False, True, True]),
        observed=np.array([True, False, False, True]),
        in_play=np.array([True, False, True, False]),
        confidence=np.array([0.9, 0.0, 0.4, 0.8]),
    )
    bare_store.replace_slice("ball_points", ORG, MATCH, 1, 0, ball_points_table(track))
    bare_store.replace_slice("ball_points", "other-org", MATCH, 1, 0, ball_points_table(track))

    ball = export_ball(bare_store, ORG, MATCH, 1)

    assert ball is not None
    assert ball.frame.tolist() == [0, 1, 2, 3]
    assert ball.visible.tolist() == [True, False, True, True]
    assert ball.in_play.tolist() == [True, False, True, False]
    assert ball.reported.tolist() == [True, False, True, False]
    np.testing.assert_allclose(ball.position[2], [52.0, 31.0, 2.5])
    assert np.isnan(ball.position[1]).all()
