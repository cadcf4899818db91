"""Query rows to response bodies: tracks grouped, player stats summed, team totals.

Figures are rounded where the measurement is coarser than the digits: positions to the
centimetre (the homography and detection jitter by tens of centimetres), times to the
millisecond, speeds to the centimetre per second, distances to the centimetre.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from api.analytics.models import PlayerStats, TeamStats, TrackSeries

BallPoint = tuple[float, float, float, float, bool, bool, float]
"""One ball point as served: ``t, x, y, z, observed, in_play, confidence``."""

#: The teams the teams endpoint reports (0 away, 1 home): -1 (unknown, referee, ball) is
#: not a team.
TEAMS = (0, 1)

Columns = Mapping[str, np.ndarray[Any, Any]]
"""Query result columns by name, as `AnalyticsStore.query_numpy` returns them."""


class PlayerSort(StrEnum):
    """Orders of the players list; a leading ``-`` sorts descending."""

    track_id = "track_id"
    distance_m = "distance_m"
    distance_m_desc = "-distance_m"
    max_speed = "max_speed"
    max_speed_desc = "-max_speed"


@dataclass(frozen=True)
class FrameRate:
    """The match's frame rate and, when it is assumed, why."""

    fps: float
    note: str | None = None


def frame_rate(summary: bytes | None, default: float) -> FrameRate:
    """The frame rate from a ``summary.json`` body, or ``default`` with a note.

    Args:
        summary: The index stage's ``summary.json`` bytes; None when there is none.
        default: Frame rate to assume without a usable summary.

    Returns:
        The frame rate.
    """
    fps: Any = None
    if summary is not None:
        try:
            body = json.loads(summary)
        except ValueError:
            body = None
        if isinstance(body, dict):
            fps = body.get("fps")
    usable = isinstance(fps, int | float) and not isinstance(fps, bool)
    if usable and math.isfinite(fps) and fps > 0:
        return FrameRate(fps=float(fps))
    return FrameRate(
        fps=default,
        note=f"The match summary gives no frame rate; {default:g} fps is assumed.",
    )


def swap_team(team: int, swapped: bool) -> int:
    """A team code with home and away swapped when ``swapped`` (-1 stays -1).

    Its own inverse: it turns a served team into the stored one and back.
    """
    return 1 - team if swapped and team in TEAMS else team


def served_teams(columns: Columns, swapped: bool) -> Columns:
    """Query rows with their ``team`` column as served: swapped when ``swapped`` (-1 stays).

    The stored codes follow the side settings the track stage was given; an operator's later
    change is applied here, at read time, so no reprocessing is needed.
    """
    if not swapped or "team" not in columns:
        return columns
    team = np.asarray(columns["team"])
    return {**columns, "team": np.where(np.isin(team, TEAMS), 1 - team, team).astype(team.dtype)}


def group_tracks(columns: Columns, fps: float) -> list[TrackSeries]:
    """Group track points per track, each track's points in frame order.

    Args:
        columns: ``track_id, team, frame, pitch_x, pitch_y, speed`` of each point.
        fps: Frame rate, to turn frames into seconds.

    Returns:
        One series per track, by track id. A track's team is the one most of its points in
        the window have (the lower team on a tie).
    """
    if len(columns.get("track_id", ())) == 0:
        return []
    track_id = np.asarray(columns["track_id"], dtype=np.int64)
    frame = np.asarray(columns["frame"], dtype=np.int64)
    order = np.lexsort((frame, track_id))
    track_id, frame = track_id[order], frame[order]
    team = np.asarray(columns["team"], dtype=np.int64)[order]
    x = np.asarray(columns["pitch_x"], dtype=np.float64)[order]
    y = np.asarray(columns["pitch_y"], dtype=np.float64)[order]
    speed = np.asarray(columns["speed"], dtype=np.float64)[order]
    # Rounded column-wise, then one tuple per point: per-point Python work is the cost here
    # (a 600 s window holds some 350,000 points).
    times = np.round(frame / fps, 3).tolist()
    xs = np.round(x, 2).tolist()
    ys = np.round(y, 2).tolist()
    speeds: list[float | None] = np.round(speed, 2).tolist()
    if not np.isfinite(speed).all():
        speeds = [s if math.isfinite(s) else None for s in np.round(speed, 2).tolist()]
    starts = np.flatnonzero(np.diff(track_id)) + 1
    series: list[TrackSeries] = []
    for block in np.split(np.arange(track_id.size), starts):
        values, counts = np.unique(team[block], return_counts=True)
        first, last = int(block[0]), int(block[-1]) + 1
        series.append(
            TrackSeries(
                track_id=int(track_id[first]),
                team=int(values[np.argmax(counts)]),
                points=list(
                    zip(
                        times[first:last],
                        xs[first:last],
                        ys[first:last],
                        speeds[first:last],
                        strict=True,
                    )
                ),
            )
        )
    return series


@dataclass
class TrackTotals:
    """One track's sums over the match, unrounded.

    Attributes:
        track_id: The track.
        team: The team it was seen with in most frames (the lower team on a tie).
        frames: Frames in which it was seen.
        distance_m: Metres covered.
        max_speed: Fastest speed, metres per second.
        sprints: Sprints started.
    """

    track_id: int
    team: int
    frames: int
    distance_m: float
    max_speed: float
    sprints: int


def track_totals(columns: Columns) -> list[TrackTotals]:
    """Per-track sums from per-(track, team) sums of ``player_stats``.

    Args:
        columns: ``track_id, team, frames, distance_m, max_speed, sprints`` rows, one per
            track and team (`api.analytics.queries.player_stats_query`).

    Returns:
        One entry per track, by track id.
    """
    rows = zip(
        np.asarray(columns.get("track_id", ()), dtype=np.int64).tolist(),
        np.asarray(columns.get("team", ()), dtype=np.int64).tolist(),
        np.asarray(columns.get("frames", ()), dtype=np.int64).tolist(),
        np.asarray(columns.get("distance_m", ()), dtype=np.float64).tolist(),
        np.asarray(columns.get("max_speed", ()), dtype=np.float64).tolist(),
        np.asarray(columns.get("sprints", ()), dtype=np.int64).tolist(),
        strict=True,
    )
    by_track: dict[int, list[tuple[int, int, float, float, int]]] = {}
    for track, team, frames, distance, max_speed, sprints in rows:
        by_track.setdefault(track, []).append((team, frames, distance, max_speed, sprints))
    totals: list[TrackTotals] = []
    for track in sorted(by_track):
        parts = by_track[track]
        # Most frames first, then the lower team: the same team whatever the row order.
        team = min(parts, key=lambda part: (-part[1], part[0]))[0]
        totals.append(
            TrackTotals(
                track_id=track,
                team=team,
                frames=sum(part[1] for part in parts),
                distance_m=math.fsum(part[2] for part in parts),
                max_speed=max(part[3] for part in parts),
                sprints=sum(part[4] for part in parts),
            )
        )
    return totals


def players(totals: list[TrackTotals], fps: float, order: PlayerSort) -> list[PlayerStats]:
    """The players list: each track's figures, rounded, in the requested order.

    Args:
        totals: Per-track sums (`track_totals`).
        fps: Frame rate, for the minutes played.
        order: Sort key; ties keep track id order.

    Returns:
        One entry per track.
    """
    key = order.value.lstrip("-")
    # sorted is stable, so equal values stay in track id order in both directions.
    ordered = sorted(totals, key=lambda t: t.track_id)
    if key != "track_id":
        ordered = sorted(
            ordered, key=lambda t: float(getattr(t, key)), reverse=order.value.startswith("-")
        )
    return [
        PlayerStats(
            track_id=t.track_id,
            team=t.team,
            frames=t.frames,
            minutes_played=round(t.frames / fps / 60.0, 2),
            distance_m=round(t.distance_m, 2),
            max_speed=round(t.max_speed, 2),
            sprints=t.sprints,
        )
        for t in ordered
    ]


def ball_points(columns: Columns, fps: float) -> list[BallPoint]:
    """The ball's rows (`api.analytics.queries.ball_query`) as served points, in frame order.

    Args:
        columns: ``frame, pitch_x, pitch_y, height_m, observed, in_play, confidence`` rows.
        fps: Frame rate, to turn frames into seconds.
    """
    if len(columns.get("frame", ())) == 0:
        return []
    frame = np.asarray(columns["frame"], dtype=np.int64)
    order = np.argsort(frame, kind="stable")
    height = np.asarray(columns["height_m"], dtype=np.float64)[order]
    return list(
        zip(
            np.round(frame[order] / fps, 3).tolist(),
            np.round(np.asarray(columns["pitch_x"], dtype=np.float64)[order], 2).tolist(),
            np.round(np.asarray(columns["pitch_y"], dtype=np.float64)[order], 2).tolist(),
            # A visible ball without a height is on the grass.
            np.round(np.nan_to_num(height, nan=0.0), 2).tolist(),
            (np.asarray(columns["observed"])[order] != 0).tolist(),
            (np.asarray(columns["in_play"])[order] != 0).tolist(),
            np.round(np.asarray(columns["confidence"], dtype=np.float64)[order], 3).tolist(),
            strict=True,
        )
    )


def possession_frames(columns: Columns) -> dict[int, int]:
    """Frames per team code from ``team, frames`` rows (`api.analytics.queries.possession_query`,
    teams as served)."""
    frames: dict[int, int] = {}
    for team, count in zip(
        np.asarray(columns.get("team", ()), dtype=np.int64).tolist(),
        np.asarray(columns.get("frames", ()), dtype=np.int64).tolist(),
        strict=True,
    ):
        frames[team] = frames.get(team, 0) + count
    return frames


def team_totals(
    totals: list[TrackTotals], fps: float, possession: Mapping[int, int] | None = None
) -> list[TeamStats]:
    """Totals of teams 0 and 1 over the tracks assigned to each (see `track_totals`).

    Args:
        totals: Per-track sums.
        fps: Frame rate, for the time on the pitch.
        possession: Frames each team code had the ball (`possession_frames`); None or no
            frames for either team: no possession share.

    Returns:
        Teams 0 and 1, in that order; zeros for a team without tracks.
    """
    had = {team: int((possession or {}).get(team, 0)) for team in TEAMS}
    both = sum(had.values())
    teams: list[TeamStats] = []
    for team in TEAMS:
        mine = [t for t in totals if t.team == team]
        seconds = sum(t.frames for t in mine) / fps
        distance = math.fsum(t.distance_m for t in mine)
        teams.append(
            TeamStats(
                team=team,
                tracks=len(mine),
                minutes_played=round(seconds / 60.0, 2),
                distance_m=round(distance, 2),
                mean_speed=round(distance / seconds, 2) if seconds > 0 else 0.0,
                max_speed=round(max((t.max_speed for t in mine), default=0.0), 2),
                sprints=sum(t.sprints for t in mine),
                possession_frames=had[team],
                possession_share=round(had[team] / both, 4) if both else None,
            )
        )
    return teams
