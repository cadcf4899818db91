"""Who has the ball: per frame, the team of the players at the ball; summed per chunk.

A frame counts when the ball is reported (visible and in play) and low enough to be played at
the feet (below `BALL_LOW_M`): a ball in the air belongs to nobody yet. In such a frame the
players within `REACH_M` of the ball (ground distance) decide: players of one team only, that
team has it; players of both teams, it is contested; nobody, nobody has it. The players are the
track points of the frame with a team (0 or 1) that are not referees (a role of -1, not
assigned, counts: rows tracked before roles have no role).

The per-chunk counts go to ``team_possession`` (one row per code with frames) and the API sums
them over the match: a team's possession share is its frames over both teams' frames.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from activities.track.ball_track import BallTrack
from polyvision.roles import ROLE_REFEREE

#: The ball higher than this (metres, its centre) is in the air: nobody's yet.
BALL_LOW_M = 1.5
#: A player within this ground distance (metres) of the ball can play it.
REACH_M = 1.5
#: Codes of the frames no single team had: both teams within reach, or nobody.
CONTESTED = -1
NOBODY = -2
#: Every code a frame can get, in the order the rows are written.
CODES = (0, 1, CONTESTED, NOBODY)

#: ``team_possession`` columns written by the analyze stage (the slice keys come from
#: replace_slice).
TEAM_POSSESSION_SCHEMA = pa.schema([("team", pa.int8()), ("frames", pa.uint32())])


def possession_per_frame(
    ball: BallTrack,
    frame: npt.ArrayLike,
    team: npt.ArrayLike,
    role: npt.ArrayLike | None,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    low_m: float = BALL_LOW_M,
    reach_m: float = REACH_M,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Who has the ball in each frame where it is reported and low.

    Args:
        ball: The ball over (at least) the frames of the points.
        frame: Frame of each track point.
        team: Team code of each point (0, 1; -1 unknown, referee or ball).
        role: Role code of each point (`polyvision.roles`); None: all unknown.
        x: Pitch x of each point, metres (NaN: unknown, never within reach).
        y: Pitch y of each point, metres.
        low_m: Highest ball (centre above the grass) that a player can have.
        reach_m: Ground distance within which a player has the ball.

    Returns:
        The frames that count, ascending, and for each: 0 or 1 (that team has it),
        `CONTESTED` or `NOBODY`.
    """
    height = np.nan_to_num(ball.z, nan=0.0)  # a visible ball without a height is on the grass
    counts = ball.reported & (height < low_m) & np.isfinite(ball.xy).all(axis=1)
    frames = ball.frame[counts].astype(np.int64)
    ball_xy = ball.xy[counts]
    point_frame = np.asarray(frame, dtype=np.int64)
    point_team = np.asarray(team, dtype=np.int64)
    point_role = (
        np.full(point_frame.shape, -1, np.int64)
        if role is None
        else np.asarray(role, dtype=np.int64)
    )
    px = np.asarray(x, dtype=np.float64)
    py = np.asarray(y, dtype=np.float64)
    at = np.clip(np.searchsorted(frames, point_frame), 0, max(len(frames) - 1, 0))
    same_frame = frames[at] == point_frame if len(frames) else np.zeros(len(at), np.bool_)
    player = np.isin(point_team, (0, 1)) & (point_role != ROLE_REFEREE)
    candidate = same_frame & player
    within = np.zeros(len(point_frame), np.bool_)
    if candidate.any():
        idx = at[candidate]
        with np.errstate(invalid="ignore"):
            distance = np.hypot(px[candidate] - ball_xy[idx, 0], py[candidate] - ball_xy[idx, 1])
        within[candidate] = distance <= reach_m
    near = [np.zeros(len(frames), np.bool_) for _ in (0, 1)]
    for side in (0, 1):
        near[side][at[within & (point_team == side)]] = True
    owner = np.full(len(frames), NOBODY, np.int8)
    owner[near[0] & ~near[1]] = 0
    owner[near[1] & ~near[0]] = 1
    owner[near[0] & near[1]] = CONTESTED
    return frames, owner


def possession_counts(owner: npt.ArrayLike) -> dict[int, int]:
    """Frames per code (`CODES`) of `possession_per_frame`'s owners; codes without frames left
    out."""
    values = np.asarray(owner, dtype=np.int64)
    counts = {code: int(np.count_nonzero(values == code)) for code in CODES}
    return {code: n for code, n in counts.items() if n}


def team_possession_table(counts: Mapping[int, int]) -> pa.Table:
    """The ``team_possession`` rows of one chunk: one per code with frames, in `CODES` order."""
    codes = [code for code in CODES if counts.get(code, 0)]
    return pa.table(
        {
            "team": pa.array(codes, pa.int8()),
            "frames": pa.array([counts[code] for code in codes], pa.uint32()),
        },
        schema=TEAM_POSSESSION_SCHEMA,
    )


def chunk_possession(ball: BallTrack, points: pa.Table) -> pa.Table:
    """The ``team_possession`` rows of one chunk from its ball and its ``track_points`` rows
    (``frame, team, role, pitch_x, pitch_y``, as `activities.analyze.rows.track_points_table`
    makes them)."""
    _, owner = possession_per_frame(
        ball,
        points.column("frame").to_numpy(),
        points.column("team").to_numpy(),
        points.column("role").to_numpy() if "role" in points.column_names else None,
        points.column("pitch_x").to_numpy(),
        points.column("pitch_y").to_numpy(),
    )
    return team_possession_table(possession_counts(owner))
