"""Per-player figures as a coach reads them: the analyze stage's rows, the analyst's
corrections applied.

The analyze stage writes one row per player identity (``match_player_figures``) and frames per
identity and 1 m cell (``match_player_heatmaps``). The analyst's merges and roster names
(`api.analytics.identity_map`) may since have joined identities: their rows are combined here
at read time, so the figures follow a correction at once, without reprocessing. Combined:
seconds, distance, time per speed zone, sprints and heatmap frames are summed; the top speed
is the highest; the team and role are those of the member seen longest; track ids are joined.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from api.analytics.identity_map import IdentityMap

ZONES = ("walk_s", "jog_s", "run_s", "high_s", "sprint_s")
"""Seconds per speed zone, slowest first (under 7, 7-14, 14-20, 20-25, over 25 km/h)."""


@dataclass(frozen=True)
class FigureRow:
    """One ``match_player_figures`` row (team: the served code)."""

    identity_id: int
    team: int
    role: int
    player: str
    track_ids: tuple[int, ...]
    seconds: float
    distance_m: float
    top_speed: float
    zones: tuple[float, float, float, float, float]
    sprints: int


@dataclass(frozen=True)
class CombinedFigures:
    """The figures of one served identity: its own row and those merged into it."""

    identity_id: int
    identity_ids: tuple[int, ...]
    team: int
    role: int
    player_id: uuid.UUID | None
    track_ids: tuple[int, ...]
    seconds: float
    distance_m: float
    top_speed: float
    zones: tuple[float, float, float, float, float]
    sprints: int


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _stored_player(text: str) -> uuid.UUID | None:
    """The roster player id the analyze stage wrote (its overrides), when it is one."""
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def combine_figures(rows: Iterable[FigureRow], identity_map: IdentityMap) -> list[CombinedFigures]:
    """The rows grouped by served identity and combined, by served identity id.

    The catalog's roster name wins; where it names nobody, a player id the analyze stage
    stored is kept (it applied the same corrections when it ran).
    """
    groups: dict[int, list[FigureRow]] = {}
    for row in rows:
        groups.setdefault(identity_map.resolve(row.identity_id), []).append(row)
    combined: list[CombinedFigures] = []
    for served, members in sorted(groups.items()):
        longest = max(members, key=lambda r: (_finite(r.seconds), -r.identity_id))
        player = identity_map.players.get(served)
        if player is None:
            stored = {_stored_player(r.player) for r in members} - {None}
            player = next(iter(stored)) if len(stored) == 1 else None
        speeds = [r.top_speed for r in members if math.isfinite(r.top_speed)]
        combined.append(
            CombinedFigures(
                identity_id=served,
                identity_ids=tuple(sorted(r.identity_id for r in members)),
                team=longest.team,
                role=longest.role,
                player_id=player,
                track_ids=tuple(sorted({t for r in members for t in r.track_ids})),
                seconds=sum(_finite(r.seconds) for r in members),
                distance_m=sum(_finite(r.distance_m) for r in members),
                top_speed=max(speeds) if speeds else math.nan,
                zones=(
                    sum(_finite(r.zones[0]) for r in members),
                    sum(_finite(r.zones[1]) for r in members),
                    sum(_finite(r.zones[2]) for r in members),
                    sum(_finite(r.zones[3]) for r in members),
                    sum(_finite(r.zones[4]) for r in members),
                ),
                sprints=sum(r.sprints for r in members),
            )
        )
    return combined


def combine_heatmaps(
    identity: Sequence[int],
    cell_x: Sequence[int],
    cell_y: Sequence[int],
    frames: Sequence[int],
    identity_map: IdentityMap,
) -> dict[int, list[tuple[int, int, int]]]:
    """Heatmap cells per served identity: the frames of merged identities summed per cell.

    Returns:
        Served identity to ``(cell_x, cell_y, frames)``, sorted by cell.
    """
    cells: dict[int, dict[tuple[int, int], int]] = {}
    for raw, x, y, n in zip(identity, cell_x, cell_y, frames, strict=True):
        grid = cells.setdefault(identity_map.resolve(int(raw)), {})
        key = (int(x), int(y))
        grid[key] = grid.get(key, 0) + int(n)
    return {
        served: [(x, y, n) for (x, y), n in sorted(grid.items())] for served, grid in cells.items()
    }


# --- answers -----------------------------------------------------------------------------


class RosterName(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    shirt_number: int | None


class ZoneSeconds(BaseModel):
    """Seconds per speed zone."""

    walk_s: float = Field(description="Under 7 km/h.")
    jog_s: float = Field(description="7 to 14 km/h.")
    run_s: float = Field(description="14 to 20 km/h.")
    high_s: float = Field(description="20 to 25 km/h.")
    sprint_s: float = Field(description="Over 25 km/h.")


class PlayerFigures(BaseModel):
    """One player's match: an identity with those merged into it."""

    identity_id: int = Field(description="The served identity (merges resolved).")
    identity_ids: list[int] = Field(description="The analytics identities combined here.")
    team: int = Field(description="1 home, 0 away.")
    role: int = Field(description="0 outfield, 1 goalkeeper, -1 unknown.")
    player: RosterName | None = Field(description="The roster player, where named.")
    track_ids: list[int]
    seconds: float = Field(description="Time covered by the path.")
    distance_m: float
    top_speed_mps: float | None = Field(description="Metres per second; null: none measured.")
    zones: ZoneSeconds
    sprints: int = Field(description="Runs over 25 km/h of at least 1 s.")
    heatmap: list[tuple[int, int, int]] | None = Field(
        default=None,
        description="With heatmap=true: (cell_x, cell_y, frames) of each visited 1 m cell.",
    )


class PlayerFiguresResponse(BaseModel):
    match_id: uuid.UUID
    revision: int
    players: list[PlayerFigures]


def player_figures(
    combined: CombinedFigures,
    roster: Mapping[uuid.UUID, RosterName],
    heatmap: list[tuple[int, int, int]] | None,
) -> PlayerFigures:
    """The answer for one served identity."""
    return PlayerFigures(
        identity_id=combined.identity_id,
        identity_ids=list(combined.identity_ids),
        team=combined.team,
        role=combined.role,
        player=roster.get(combined.player_id) if combined.player_id is not None else None,
        track_ids=list(combined.track_ids),
        seconds=combined.seconds,
        distance_m=combined.distance_m,
        top_speed_mps=combined.top_speed if math.isfinite(combined.top_speed) else None,
        zones=ZoneSeconds(**dict(zip(ZONES, combined.zones, strict=True))),
        sprints=combined.sprints,
        heatmap=heatmap,
    )
