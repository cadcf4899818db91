"""Who has the ball, frame by frame, from hand-placed players and a hand-placed ball."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from activities.analyze.possession import (
    CONTESTED,
    NOBODY,
    TEAM_POSSESSION_SCHEMA,
    chunk_possession,
    possession_counts,
    possession_per_frame,
    team_possession_table,
)
from activities.analyze.rows import track_points_table
from activities.track.ball_track import BallTrack
from polyvision.roles import ROLE_GOALKEEPER, ROLE_PLAYER, ROLE_REFEREE, ROLE_UNKNOWN


def _ball(
    xy: list[tuple[float, float]],
    z: list[float] | None = None,
    in_play: list[bool] | None = None,
    visible: list[bool] | None = None,
    first_frame: int = 100,
) -> BallTrack:
    n = len(xy)
    return BallTrack(
        frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        xy=np.array(xy, np.float64),
        z=np.array(z if z is not None else [0.11] * n),
        visible=np.array(visible if visible is not None else [True] * n),
        observed=np.ones(n, np.bool_),
        in_play=np.array(in_play if in_play is not None else [True] * n),
        confidence=np.full(n, 0.9),
    )


# Frame -> [(team, role, x, y)] around a ball at (50, 30).
PLAYERS: dict[int, list[tuple[int, int, float, float]]] = {
    100: [(0, ROLE_PLAYER, 51.0, 30.0), (1, ROLE_PLAYER, 53.0, 30.0)],  # team 0 at the ball
    101: [(0, ROLE_PLAYER, 51.2, 30.0), (1, ROLE_GOALKEEPER, 49.0, 30.5)],  # both: contested
    102: [(0, ROLE_PLAYER, 52.0, 30.0), (-1, ROLE_REFEREE, 50.2, 30.0)],  # only the referee
    103: [(1, ROLE_REFEREE, 50.0, 30.5), (1, ROLE_UNKNOWN, 50.0, 31.4)],  # no role yet: counts
    104: [(0, ROLE_PLAYER, 50.0, 30.0)],  # ball in the air: not counted
    105: [(0, ROLE_PLAYER, 50.0, 30.0)],  # out of play: not counted
    106: [(0, ROLE_PLAYER, 50.0, 30.0)],  # not visible: not counted
    107: [(0, ROLE_PLAYER, float("nan"), float("nan"))],  # position unknown: nobody
    108: [(1, ROLE_PLAYER, 50.0, 31.5)],  # exactly at reach
}


def _points() -> tuple[list[int], list[int], list[int], list[float], list[float]]:
    rows = [(f, *p) for f, players in PLAYERS.items() for p in players]
    frame, team, role, x, y = (list(c) for c in zip(*rows, strict=True))
    return frame, team, role, x, y


def _match_ball() -> BallTrack:
    n = len(PLAYERS)
    z = [0.11] * n
    z[4] = 2.0
    in_play = [True] * n
    in_play[5] = False
    visible = [True] * n
    visible[6] = False
    return _ball([(50.0, 30.0)] * n, z=z, in_play=in_play, visible=visible)


def test_the_players_within_reach_decide_who_has_the_ball() -> None:
    frame, team, role, x, y = _points()
    frames, owner = possession_per_frame(_match_ball(), frame, team, role, x, y)
    assert frames.tolist() == [100, 101, 102, 103, 107, 108]
    assert owner.tolist() == [0, CONTESTED, NOBODY, 1, NOBODY, 1]
    assert possession_counts(owner) == {0: 1, 1: 2, CONTESTED: 1, NOBODY: 2}


def test_without_roles_every_team_point_is_a_player_and_frames_without_points_count() -> None:
    ball = _ball([(50.0, 30.0), (10.0, 10.0)])
    frames, owner = possession_per_frame(ball, [100], [1], None, [50.5], [30.0])
    # Frame 101 has no track points at all: the ball is free.
    assert frames.tolist() == [100, 101] and owner.tolist() == [1, NOBODY]


def test_no_ball_means_no_frames() -> None:
    frames, owner = possession_per_frame(
        BallTrack.not_seen(0, 5), [0, 1], [0, 1], None, [1.0, 2.0], [1.0, 2.0]
    )
    assert frames.size == 0 and owner.size == 0
    assert possession_counts(owner) == {}


def test_chunk_rows_have_the_table_schema() -> None:
    frame, team, role, x, y = _points()
    points = track_points_table(frame, np.arange(len(frame)), team, x, y, np.zeros(len(x)), role)
    table = chunk_possession(_match_ball(), points)
    assert table.schema.equals(TEAM_POSSESSION_SCHEMA)
    assert table.to_pydict() == {"team": [0, 1, CONTESTED, NOBODY], "frames": [1, 2, 1, 2]}
    empty = team_possession_table({})
    assert empty.num_rows == 0 and empty.schema.equals(TEAM_POSSESSION_SCHEMA)
    assert isinstance(empty, pa.Table)
