"""SQL text and parameters of the analytics reads.

Every statement is scoped by organization, match and revision (the leading columns of each
table's ORDER BY, so the primary index skips other tenants and revisions), and every value
travels as a ``{name:Type}`` parameter: optional filters change which conditions the text
holds, never the values in it. The same SQL runs on chDB and ClickHouse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from api.analytics.grid import GridSpec

#: Longest time window the tracks (and ball) endpoint serves: 600 s of 23 tracks at 25 fps is
#: about 350,000 points, already a large JSON body.
MAX_WINDOW_S = 600.0

#: Frame rate assumed when the match summary does not give one.
DEFAULT_FPS = 25.0

_SCOPE = (
    "organization_id = {organization_id:String} AND match_id = {match_id:String}"
    " AND revision = {revision:UInt32}"
)


@dataclass(frozen=True)
class Scope:
    """One revision of one match of one organization: what every query filters on.

    Attributes:
        organization_id: The catalog organization id as the pipeline writes it (str(uuid)).
        match_id: The catalog match id (str(uuid)).
        revision: The match's current processing revision.
        teams_swapped: Whether the teams served are the stored codes swapped (0 for 1 and 1
            for 0): the match's side settings changed after this revision was tracked
            (`activities.track.sides.served_swap`). The queries take stored codes.
    """

    organization_id: str
    match_id: str
    revision: int
    teams_swapped: bool = False

    def parameters(self) -> dict[str, Any]:
        """The scope's values for the ``_SCOPE`` placeholders."""
        return {
            "organization_id": self.organization_id,
            "match_id": self.match_id,
            "revision": self.revision,
        }


SqlStatement = tuple[str, dict[str, Any]]
"""SQL text and its parameters."""


def window_error(start_s: float, end_s: float) -> str | None:
    """Why a tracks time window is refused, or None when it is acceptable."""
    if not start_s < end_s:
        return "start_s must be before end_s."
    if end_s - start_s > MAX_WINDOW_S:
        return f"The time window is at most {MAX_WINDOW_S:g} s."
    return None


def frame_window(start_s: float, end_s: float, fps: float) -> tuple[int, int]:
    """The frames ``[first, end)`` whose times ``frame / fps`` lie in ``[start_s, end_s)``.

    Args:
        start_s: Window start in seconds (inclusive).
        end_s: Window end in seconds (exclusive).
        fps: Frame rate.

    Returns:
        First frame and the frame after the last one.
    """
    # The epsilon keeps a product like 0.1 * 30 = 3.0000000000000004 on frame 3, not 4.
    first = max(0, math.ceil(start_s * fps - 1e-9))
    end = max(first, math.ceil(end_s * fps - 1e-9))
    return first, end


def tracks_query(
    scope: Scope,
    first_frame: int,
    end_frame: int,
    track_id: int | None = None,
    team: int | None = None,
) -> SqlStatement:
    """Track points of frames ``[first_frame, end_frame)``, ordered by track then frame.

    Points without pitch coordinates are left out: there is nothing to draw for them.

    Args:
        scope: The match revision.
        first_frame: First frame (inclusive).
        end_frame: End frame (exclusive).
        track_id: Only this track when given.
        team: Only points of this team (-1, 0 or 1) when given.

    Returns:
        SQL selecting ``track_id, team, frame, pitch_x, pitch_y, speed``.
    """
    conditions = [
        _SCOPE,
        "frame >= {first_frame:UInt32}",
        "frame < {end_frame:UInt32}",
        "isFinite(pitch_x)",
        "isFinite(pitch_y)",
    ]
    parameters = {**scope.parameters(), "first_frame": first_frame, "end_frame": end_frame}
    if track_id is not None:
        conditions.append("track_id = {track_id:UInt32}")
        parameters["track_id"] = track_id
    if team is not None:
        conditions.append("team = {team:Int8}")
        parameters["team"] = team
    sql = (
        "SELECT track_id, team, frame, pitch_x, pitch_y, speed FROM track_points"
        f" WHERE {' AND '.join(conditions)} ORDER BY track_id, frame"
    )
    return sql, parameters


def ball_query(scope: Scope, first_frame: int, end_frame: int) -> SqlStatement:
    """The ball in frames ``[first_frame, end_frame)`` where the tracker reports a position
    (visible; in play or not), ordered by frame.

    Returns:
        SQL selecting ``frame, pitch_x, pitch_y, height_m, observed, in_play, confidence``.
    """
    sql = (
        "SELECT frame, pitch_x, pitch_y, height_m, observed, in_play, confidence"
        f" FROM ball_points WHERE {_SCOPE}"
        " AND frame >= {first_frame:UInt32} AND frame < {end_frame:UInt32}"
        " AND visible = 1 AND isFinite(pitch_x) AND isFinite(pitch_y)"
        " ORDER BY frame"
    )
    parameters = {**scope.parameters(), "first_frame": first_frame, "end_frame": end_frame}
    return sql, parameters


def possession_query(scope: Scope) -> SqlStatement:
    """The per-chunk ``team_possession`` rows summed per team code (0, 1; -1 contested, -2
    nobody), stored codes.

    Returns:
        SQL selecting ``team, frames``.
    """
    sql = (
        "SELECT team, sum(frames) AS frames"
        f" FROM team_possession WHERE {_SCOPE}"
        " GROUP BY team ORDER BY team"
    )
    return sql, scope.parameters()


def possession_minutes_query(scope: Scope) -> SqlStatement:
    """Each team's possession per minute of the match (the analyze stage's
    ``match_team_minutes``), stored team codes.

    Returns:
        SQL selecting ``team, minute, possession_frames, in_play_frames``.
    """
    sql = (
        "SELECT team, minute, possession_frames, in_play_frames"
        f" FROM match_team_minutes WHERE {_SCOPE} AND team IN (0, 1)"
        " ORDER BY team, minute"
    )
    return sql, scope.parameters()


def heatmap_query(scope: Scope, team: int, spec: GridSpec) -> SqlStatement:
    """Point counts per grid cell for one team, as ``ix, iy, n`` rows.

    The cell of a point is ``floor(clamp(x, 0, length) * nx / length)``, with the far edge
    folded into the last cell: the binning of `activities.analyze.metrics.heatmap_grid`
    (points off the pitch count in the nearest edge cell; NaN points are left out).

    Args:
        scope: The match revision.
        team: The team (0 or 1; -1 for unknown, referees and the ball).
        spec: The grid.

    Returns:
        SQL selecting ``ix, iy, n`` for the non-empty cells.
    """
    sql = (
        "SELECT"
        " least(toUInt32(floor(least(greatest(toFloat64(pitch_x), 0), {length:Float64})"
        " * {nx:UInt32} / {length:Float64})), {nx:UInt32} - 1) AS ix,"
        " least(toUInt32(floor(least(greatest(toFloat64(pitch_y), 0), {width:Float64})"
        " * {ny:UInt32} / {width:Float64})), {ny:UInt32} - 1) AS iy,"
        " count() AS n"
        " FROM track_points"
        f" WHERE {_SCOPE} AND team = {{team:Int8}} AND isFinite(pitch_x) AND isFinite(pitch_y)"
        " GROUP BY ix, iy ORDER BY ix, iy"
    )
    parameters = {
        **scope.parameters(),
        "team": team,
        "length": spec.pitch_m[0],
        "width": spec.pitch_m[1],
        "nx": spec.shape[0],
        "ny": spec.shape[1],
    }
    return sql, parameters


def player_stats_query(scope: Scope) -> SqlStatement:
    """The per-chunk ``player_stats`` rows summed per (track, team).

    A track's team is decided per chunk, so one track may appear under two teams; the rows
    stay split by team here and `api.analytics.shaping.players` picks the team the track was
    seen with in most frames.

    Returns:
        SQL selecting ``track_id, team, frames, distance_m, max_speed, sprints``.
    """
    sql = (
        "SELECT track_id, team, sum(frames) AS frames, sum(toFloat64(distance_m)) AS distance_m,"
        " max(max_speed) AS max_speed, sum(sprints) AS sprints"
        f" FROM player_stats WHERE {_SCOPE}"
        " GROUP BY track_id, team ORDER BY track_id, team"
    )
    return sql, scope.parameters()


def player_figures_query(scope: Scope) -> SqlStatement:
    """The match-wide figures of each player identity (``match_player_figures``, migration
    0005), stored team codes, by identity.

    Returns:
        SQL selecting ``identity_id, team, role, player, track_ids, seconds, distance_m,
        top_speed, walk_s, jog_s, run_s, high_s, sprint_s, sprints``.
    """
    sql = (
        "SELECT identity_id, team, role, player, track_ids, seconds, distance_m, top_speed,"
        " walk_s, jog_s, run_s, high_s, sprint_s, sprints"
        f" FROM match_player_figures WHERE {_SCOPE} ORDER BY identity_id"
    )
    return sql, scope.parameters()


def player_heatmaps_query(scope: Scope) -> SqlStatement:
    """Frames per player identity and 1 m cell over the whole match
    (``match_player_heatmaps``: a summing table, so summed here).

    Returns:
        SQL selecting ``identity_id, cell_x, cell_y, frames`` for the visited cells.
    """
    sql = (
        "SELECT identity_id, cell_x, cell_y, sum(frames) AS frames"
        f" FROM match_player_heatmaps WHERE {_SCOPE}"
        " GROUP BY identity_id, cell_x, cell_y ORDER BY identity_id, cell_x, cell_y"
    )
    return sql, scope.parameters()
