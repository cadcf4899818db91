"""Per-player figures of a processed match, with the analyst's identity corrections applied.

``GET /orgs/{org}/matches/{match}/analytics/player-figures`` reads the analyze stage's
``match_player_figures`` rows (and, on request, ``match_player_heatmaps``) of the match's
published revision, always bound to the path's organization, and serves them per player:
identities merged by an analyst are combined, and the roster player each is named after is
attached (`api.analytics.player_figures`). Like every analytics route it needs
``read_analytics``, answers 404 for another organization's match, 409 before the match is
published, and serves teams as the catalog's side settings say now.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, HTTPException, Query
from sqlmodel import col, select

from api.analytics.player_figures import (
    ZONES,
    FigureRow,
    PlayerFiguresResponse,
    RosterName,
    combine_figures,
    combine_heatmaps,
    player_figures,
)
from api.analytics.queries import SqlStatement, player_figures_query, player_heatmaps_query
from api.analytics.shaping import swap_team
from api.deps import AnalyticsDep, DbSession
from api.openapi import problem_responses
from api.routes.analytics import AnalysedMatch
from api.routes.roster import load_identity_map
from api.security.tenancy import CanReadAnalytics
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.analytics.base import AnalyticsUnavailableError
from polyvision.storage.metadata.models import RosterPlayer

router = APIRouter(prefix="/orgs/{org_id}", tags=["analytics"])

UNAVAILABLE = "The analytics store is unavailable; try again shortly."


async def _rows(analytics: AnalyticsStore, query: SqlStatement) -> list[dict[str, Any]]:
    sql, parameters = query
    try:
        table: pa.Table = await asyncio.to_thread(analytics.query_arrow, sql, parameters)
    except AnalyticsUnavailableError as error:
        raise HTTPException(503, UNAVAILABLE) from error
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _figure_row(row: dict[str, Any], swapped: bool) -> FigureRow:
    zones = tuple(float(row[name]) for name in ZONES)
    return FigureRow(
        identity_id=int(row["identity_id"]),
        team=swap_team(int(row["team"]), swapped),
        role=int(row["role"]),
        player=str(row["player"] or ""),
        track_ids=tuple(int(t) for t in row["track_ids"] or ()),
        seconds=float(row["seconds"]),
        distance_m=float(row["distance_m"]),
        top_speed=float(row["top_speed"]),
        zones=(zones[0], zones[1], zones[2], zones[3], zones[4]),
        sprints=int(row["sprints"]),
    )


@router.get(
    "/matches/{match_id}/analytics/player-figures",
    summary="Per-player figures, merges and roster names applied",
    response_model=PlayerFiguresResponse,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def get_player_figures(
    scope: AnalysedMatch,
    access: CanReadAnalytics,
    session: DbSession,
    analytics: AnalyticsDep,
    team: Annotated[
        int | None, Query(ge=0, le=1, description="Only this team's players (1 home, 0 away).")
    ] = None,
    heatmap: Annotated[
        bool, Query(description="Add each player's 1 m heatmap cells (a larger answer).")
    ] = False,
) -> PlayerFiguresResponse:
    """Each player's time, distance, top speed, time per speed zone and sprints over the
    match (and, with ``heatmap=true``, the cells visited), one entry per player: identities
    an analyst merged are combined, and the roster player each is named after attached."""
    match_id = uuid.UUID(scope.match_id)
    identity_map, named = await load_identity_map(
        session, access.organization_id, match_id, scope.revision
    )
    rows = [
        _figure_row(row, scope.teams_swapped)
        for row in await _rows(analytics, player_figures_query(scope))
    ]
    combined = combine_figures(rows, identity_map)
    if team is not None:
        combined = [c for c in combined if c.team == team]
    # Player ids the analyze stage stored but no assignment names: the organization's only.
    unknown = {c.player_id for c in combined if c.player_id is not None} - set(named)
    if unknown:
        found = await session.exec(
            select(RosterPlayer).where(
                col(RosterPlayer.organization_id) == access.organization_id,
                col(RosterPlayer.id).in_(unknown),
            )
        )
        named.update({p.id: p for p in found.all()})
    roster = {
        p.id: RosterName(id=p.id, team_id=p.team_id, name=p.name, shirt_number=p.shirt_number)
        for p in named.values()
    }
    cells: dict[int, list[tuple[int, int, int]]] = {}
    if heatmap:
        heat = await _rows(analytics, player_heatmaps_query(scope))
        cells = combine_heatmaps(
            [r["identity_id"] for r in heat],
            [r["cell_x"] for r in heat],
            [r["cell_y"] for r in heat],
            [r["frames"] for r in heat],
            identity_map,
        )
    return PlayerFiguresResponse(
        match_id=match_id,
        revision=scope.revision,
        players=[
            player_figures(c, roster, cells.get(c.identity_id, []) if heatmap else None)
            for c in combined
        ],
    )
