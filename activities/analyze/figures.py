"""The figures a coach reads, for a whole match: per player, per team, and the match's events.

`match_figures` is pure: the analyze activity calls it on the whole match's track points and
ball once the per-chunk work is done, and `bench.analytics_accuracy` calls it on a synthetic
match to score it. The steps:

1. tracks become identities (`identities.link_identities`, with the analyst's overrides);
2. each identity's path is cleaned and smoothed (`movement.trajectory`), and the players'
   distance, top speed, speed zones, sprints and 1 m heatmaps read from it;
3. the smoothed paths and the ball give possession, passes and the other events
   (`control.ball_control`);
4. the outfield players' paths give each team's shape per minute (`shape.team_shapes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from activities.analyze.control import (
    NOBODY,
    PASS,
    POSSESSION_CHANGE,
    BallControl,
    ControlSettings,
    MatchEvent,
    ball_control,
)
from activities.analyze.identities import Identities, IdentityOverrides, link_identities
from activities.analyze.movement import (
    HEATMAP_CELL_M,
    ZONE_NAMES,
    ZONE_UPPER_KMH,
    MovementFigures,
    MovementSettings,
    cell_index,
    grid_shape,
    movement_figures,
    trajectory,
)
from activities.analyze.shape import TeamShape, team_shapes
from activities.track.ball_track import BallTrack
from polyvision.geometry.pitch import PITCH_M
from polyvision.roles import ROLE_GOALKEEPER

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

FIGURES_VERSION = 1


@dataclass(frozen=True)
class PlayerFigures:
    """One player's match.

    Attributes:
        identity: The identity (its smallest track id).
        team: 0 or 1.
        role: Role code (`polyvision.roles`).
        player: The roster player the analyst named, if any.
        tracks: The tracks that make the identity.
        movement: Distance, speeds, zones and sprints.
    """

    identity: int
    team: int
    role: int
    player: str | None
    tracks: tuple[int, ...]
    movement: MovementFigures


@dataclass(frozen=True)
class TeamMinute:
    """One team's minute: possession and shape.

    Attributes:
        team: 0 or 1.
        minute: Minute of the match, 0 from its first frame.
        in_play_frames: Frames of the minute with the ball in play.
        possession_frames: Of those, the frames this team had the ball.
        shape: The team's mean shape, None when it was not measured this minute.
    """

    team: int
    minute: int
    in_play_frames: int
    possession_frames: int
    shape: TeamShape | None


@dataclass(frozen=True)
class PlayerCells:
    """One identity's point counts per 1 m cell and minute (sparse): the heatmap table's rows."""

    identity: I64
    team: I64
    minute: I64
    cell_x: I64
    cell_y: I64
    frames: I64


@dataclass
class MatchFigures:
    """Everything `match_figures` found.

    Attributes:
        fps: Frames per second.
        first_frame: The match's first frame (minute 0 starts there).
        players: Per player identity, by identity.
        team_minutes: Per team and minute with play or a shape.
        events: Passes, possession changes, out of play and restarts, in time order.
        cells: Per player, minute and 1 m cell, the frames spent there.
        control: The ball's story (possession per frame, controls).
    """

    fps: float
    first_frame: int
    players: list[PlayerFigures]
    team_minutes: list[TeamMinute]
    events: list[MatchEvent]
    cells: PlayerCells
    control: BallControl | None = None
    identities: Identities | None = field(default=None, repr=False)

    def possession_share(self) -> dict[int, float]:
        """Each team's share of the frames either team had the ball (NaN without any)."""
        frames = {
            t: sum(m.possession_frames for m in self.team_minutes if m.team == t) for t in (0, 1)
        }
        total = frames[0] + frames[1]
        return {t: frames[t] / total if total else float("nan") for t in (0, 1)}

    def passes(self) -> dict[int, dict[str, int]]:
        """Per team, passes attempted and completed."""
        out = {t: {"attempted": 0, "completed": 0} for t in (0, 1)}
        for event in self.events:
            if event.kind == PASS and event.team in out:
                out[event.team]["attempted"] += 1
                out[event.team]["completed"] += int(event.completed)
        return out

    def team_heatmap(self, team: int) -> I64:
        """The team's players' frames per 1 m cell, ``[ix, iy]``."""
        nx, ny = grid_shape(HEATMAP_CELL_M)
        mine = self.cells.team == team
        flat = self.cells.cell_x[mine] * ny + self.cells.cell_y[mine]
        grid = np.bincount(flat, weights=self.cells.frames[mine], minlength=nx * ny)
        return grid.reshape(nx, ny).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        """The ``figures.json`` summary: per player, per team, and the events."""
        shares = self.possession_share()
        passes = self.passes()
        changes = {t: 0 for t in (0, 1)}
        for event in self.events:
            if event.kind == POSSESSION_CHANGE and event.team in changes:
                changes[event.team] += 1
        return {
            "version": FIGURES_VERSION,
            "fps": self.fps,
            "first_frame": self.first_frame,
            "pitch_m": list(PITCH_M),
            "heatmap_cell_m": HEATMAP_CELL_M,
            "speed_zones_kmh": {"names": list(ZONE_NAMES), "upper": list(ZONE_UPPER_KMH)},
            "players": [
                {
                    "identity": p.identity,
                    "team": p.team,
                    "role": p.role,
                    "player": p.player,
                    "tracks": list(p.tracks),
                    "seconds": round(p.movement.seconds, 2),
                    "distance_m": round(p.movement.distance_m, 1),
                    "top_speed_kmh": round(p.movement.top_speed_mps * 3.6, 1),
                    "zone_seconds": dict(
                        zip(ZONE_NAMES, (round(v, 2) for v in p.movement.zone_seconds), strict=True)
                    ),
                    "sprints": p.movement.sprints,
                }
                for p in self.players
            ],
            "teams": {
                str(t): {
                    "possession_share": None if np.isnan(shares[t]) else round(shares[t], 4),
                    "passes": passes[t],
                    "possession_changes_won": changes[t],
                    "distance_m": round(
                        sum(p.movement.distance_m for p in self.players if p.team == t), 1
                    ),
                    "minutes": [
                        {
                            "minute": m.minute,
                            "in_play_frames": m.in_play_frames,
                            "possession_frames": m.possession_frames,
                            **(_shape_json(m.shape) if m.shape is not None else {}),
                        }
                        for m in self.team_minutes
                        if m.team == t
                    ],
                }
                for t in (0, 1)
            },
            "events": [
                {
                    "frame": e.frame,
                    "kind": e.kind,
                    "team": e.team,
                    "from": e.from_identity,
                    "to": e.to_identity,
                    "xy": [_round(v) for v in e.xy],
                    "to_xy": [_round(v) for v in e.to_xy],
                    "completed": e.completed,
                }
                for e in self.events
            ],
        }


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 2)


def _shape_json(shape: TeamShape) -> dict[str, float]:
    return {
        "centroid_x": round(shape.centroid_x, 2),
        "centroid_y": round(shape.centroid_y, 2),
        "width_m": round(shape.width_m, 2),
        "depth_m": round(shape.depth_m, 2),
        "compactness_m": round(shape.compactness_m, 2),
        "hull_area_m2": round(shape.hull_area_m2, 1),
    }


def match_figures(
    points: Mapping[str, npt.ArrayLike],
    ball: BallTrack,
    fps: float,
    first_frame: int | None = None,
    overrides: IdentityOverrides | None = None,
    *,
    movement: MovementSettings | None = None,
    control: ControlSettings | None = None,
) -> MatchFigures:
    """The whole match's figures (see the module docstring).

    Args:
        points: ``frame``, ``track_id``, ``team``, ``pitch_x``, ``pitch_y`` and optionally
            ``role`` arrays, one entry per track point (the ``track_points`` columns).
        ball: The ball at every frame of the match (empty: no possession or events).
        fps: Frames per second.
        first_frame: The match's first frame; the first point's when None.
        overrides: The analyst's identity merges and roster.
        movement: Path cleaning and smoothing settings.
        control: Possession settings.
    """
    frame = np.asarray(points["frame"], np.int64)
    track_id = np.asarray(points["track_id"], np.int64)
    team = np.asarray(points["team"], np.int64)
    role = np.asarray(points["role"], np.int64) if "role" in points else None
    x = np.asarray(points["pitch_x"], np.float64)
    y = np.asarray(points["pitch_y"], np.float64)
    start = int(frame.min()) if first_frame is None and frame.size else int(first_frame or 0)
    minute_frames = 60.0 * fps
    empty_cells = PlayerCells(*(np.zeros(0, np.int64) for _ in range(6)))
    if frame.size == 0:
        return MatchFigures(fps, start, [], [], [], empty_cells)
    identities = link_identities(frame, track_id, team, role, x, y, fps, overrides)
    ident = identities.point_identity
    order = np.lexsort((frame, ident))
    bounds = np.flatnonzero(np.diff(ident[order])) + 1
    players: list[PlayerFigures] = []
    smooth: dict[str, list[npt.NDArray[Any]]] = {
        k: [] for k in ("frame", "id", "team", "gk", "x", "y")
    }
    cells: dict[str, list[I64]] = {k: [] for k in ("identity", "team", "minute", "x", "y", "n")}
    nx, ny = grid_shape(HEATMAP_CELL_M)
    for block in np.split(order, bounds):
        owner = int(ident[block[0]])
        if not identities.is_player(owner):
            continue
        path = trajectory(frame[block], x[block], y[block], fps, movement)
        if len(path.frame) == 0:
            continue
        side = identities.team[owner]
        keeper = identities.role.get(owner) == ROLE_GOALKEEPER
        players.append(
            PlayerFigures(
                identity=owner,
                team=side,
                role=identities.role.get(owner, -1),
                player=identities.player.get(owner),
                tracks=identities.tracks_of(owner),
                movement=movement_figures(path, fps),
            )
        )
        n = len(path.frame)
        smooth["frame"].append(path.frame)
        smooth["id"].append(np.full(n, owner, np.int64))
        smooth["team"].append(np.full(n, side, np.int64))
        smooth["gk"].append(np.full(n, keeper, np.bool_))
        smooth["x"].append(path.xy[:, 0])
        smooth["y"].append(path.xy[:, 1])
        ix, iy = cell_index(path.xy, HEATMAP_CELL_M)
        minute = ((path.frame - start) // minute_frames).astype(np.int64)
        key = (minute * nx + ix) * ny + iy
        unique, counts = np.unique(key, return_counts=True)
        cells["identity"].append(np.full(unique.size, owner, np.int64))
        cells["team"].append(np.full(unique.size, side, np.int64))
        cells["minute"].append(unique // (nx * ny))
        cells["x"].append((unique // ny) % nx)
        cells["y"].append(unique % ny)
        cells["n"].append(counts.astype(np.int64))
    players.sort(key=lambda p: p.identity)

    def cat(name: str, dtype: type) -> npt.NDArray[Any]:
        parts = smooth[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    p_frame, p_id, p_team = cat("frame", np.int64), cat("id", np.int64), cat("team", np.int64)
    p_gk, p_x, p_y = cat("gk", np.bool_), cat("x", np.float64), cat("y", np.float64)
    story = ball_control(ball, p_frame, p_id, p_team, p_x, p_y, fps, control) if len(ball) else None
    shapes = team_shapes(p_frame[~p_gk], p_team[~p_gk], p_x[~p_gk], p_y[~p_gk], fps, start)
    team_minutes = _team_minutes(story, shapes, fps, start)
    cell_parts = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in cells.items()}
    return MatchFigures(
        fps=fps,
        first_frame=start,
        players=players,
        team_minutes=team_minutes,
        events=story.events if story is not None else [],
        cells=PlayerCells(
            cell_parts["identity"],
            cell_parts["team"],
            cell_parts["minute"],
            cell_parts["x"],
            cell_parts["y"],
            cell_parts["n"],
        ),
        control=story,
        identities=identities,
    )


def _team_minutes(
    story: BallControl | None, shapes: list[TeamShape], fps: float, start: int
) -> list[TeamMinute]:
    in_play: dict[int, int] = {}
    held: dict[tuple[int, int], int] = {}
    if story is not None and len(story.frame):
        minute = ((story.frame - start) // (60.0 * fps)).astype(np.int64)
        for m, n in zip(*np.unique(minute[story.in_play], return_counts=True), strict=True):
            in_play[int(m)] = int(n)
        for side in (0, 1):
            mine = story.possession == side
            for m, n in zip(*np.unique(minute[mine], return_counts=True), strict=True):
                held[(side, int(m))] = int(n)
    by_key = {(s.team, s.minute): s for s in shapes}
    minutes = sorted(set(in_play) | {m for _, m in by_key})
    out = []
    for side in (0, 1):
        for m in minutes:
            shape = by_key.get((side, m))
            if m not in in_play and shape is None:
                continue
            out.append(TeamMinute(side, m, in_play.get(m, 0), held.get((side, m), 0), shape))
    return out


__all__ = [
    "NOBODY",
    "MatchFigures",
    "PlayerCells",
    "PlayerFigures",
    "TeamMinute",
    "match_figures",
]
