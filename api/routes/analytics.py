"""Analytics of a processed match: track points, the ball, heatmaps, per-player and per-team
stats (possession included).

Every route needs ``read_analytics`` and reads the match's published revision only, so rows
of an older run (or of a reprocess still writing) never mix in. A match of another
organization answers 404. A match with no published revision yet answers 409: its rows may be
partial, and "no data yet" must not look like "no movement". A published match with no rows
for the request (an empty window, a team never seen) answers 200 with empty results.

Teams are 1 home and 0 away (-1: unknown, referee or ball). The stored codes follow the side
settings the track stage was given; when an operator changed them since (kit colours,
starting side, the home/away override), the teams are swapped at read time
(`activities.track.sides.served_swap` against the revision's ``track/sides.json``), so the
analytics follow the catalog without reprocessing.

Queries are synchronous chDB/ClickHouse calls, so they run in a worker thread
(`asyncio.to_thread`) and never block the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import replace
from typing import Annotated, Any

import numpy as np
import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import AfterValidator

from activities.track.sides import SIDES_ARTIFACT, SidesRecord, served_swap
from api.analytics.grid import CELL_SIZES_M, GridSpec, grid_from_cells, grid_spec
from api.analytics.heatmap_png import DEFAULT_WIDTH_PX, MAX_WIDTH_PX, MIN_WIDTH_PX, heatmap_png
from api.analytics.models import (
    BallResponse,
    HeatmapResponse,
    PlayersResponse,
    PossessionMinute,
    TeamsResponse,
    TracksResponse,
)
from api.analytics.queries import (
    DEFAULT_FPS,
    Scope,
    SqlStatement,
    ball_query,
    frame_window,
    heatmap_query,
    player_stats_query,
    possession_minutes_query,
    possession_query,
    tracks_query,
    window_error,
)
from api.analytics.shaping import (
    Columns,
    FrameRate,
    PlayerSort,
    TrackTotals,
    ball_points,
    frame_rate,
    group_tracks,
    players,
    possession_frames,
    served_teams,
    swap_team,
    team_totals,
    track_totals,
)
from api.catalog import load_match
from api.catalog.sides import side_settings
from api.deps import AnalyticsDep, DbSession, ObjectsDep
from api.openapi import problem_responses
from api.security.tenancy import CanReadAnalytics
from polyvision.artifacts import artifact_key
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.analytics.base import AnalyticsUnavailableError
from polyvision.storage.objects import ObjectNotFound, ObjectStore

router = APIRouter(prefix="/orgs/{org_id}", tags=["analytics"])

log = structlog.get_logger(__name__)

NOT_READY = "Analytics are not available yet: the match has not finished processing."
#: Private: the image shows one tenant's data. Five minutes: a revision's rows do not change
#: once the match is ready, and a reprocess is picked up within that time.
PNG_CACHE_CONTROL = "private, max-age=300"

_ERRORS = problem_responses(401, 403, 404, 409, 422, 503)


def _allowed_cell(value: float | None) -> float | None:
    if value is not None and value not in CELL_SIZES_M:
        allowed = ", ".join(f"{size:g}" for size in CELL_SIZES_M)
        raise ValueError(f"cell_m must be one of {allowed}")
    return value


CellSize = Annotated[
    float | None,
    Query(
        description="Square cell size in metres: one of "
        + ", ".join(f"{size:g}" for size in CELL_SIZES_M)
        + ". The cells used are the nearest size that tiles the pitch (see cell_m in the"
        " answer). Omitted: the analysis stage's 20 x 16 grid of 5.25 x 4.25 m.",
        allow_inf_nan=False,
    ),
    AfterValidator(_allowed_cell),
]


async def _sides_record(objects: ObjectStore, scope: Scope) -> SidesRecord | None:
    """What the track stage decided for the revision; None where it recorded nothing (a
    revision tracked before sides were assigned) or nothing readable."""
    key = artifact_key(
        scope.organization_id, scope.match_id, scope.revision, "track", SIDES_ARTIFACT
    )
    try:
        return SidesRecord.from_json(await objects.get(key))
    except ObjectNotFound:
        return None
    except ValueError:
        # Served as if unrecorded (the override alone applies) rather than failing the route.
        log.warning("unreadable sides record", key=key, exc_info=True)
        return None


async def get_analysed_match(
    match_id: Annotated[uuid.UUID, Path(description="The match.")],
    access: CanReadAnalytics,
    session: DbSession,
    objects: ObjectsDep,
) -> Scope:
    """The match's published revision, when the match is the caller's and has one, and
    whether its teams are served swapped (the side settings changed since it was tracked)."""
    match = await load_match(session, access.organization_id, match_id)
    # The published revision: a reprocess in progress does not take the figures away.
    if match.published_revision is None:
        raise HTTPException(409, NOT_READY)
    scope = Scope(
        organization_id=str(match.organization_id),
        match_id=str(match.id),
        revision=match.published_revision,
    )
    swapped = served_swap(await _sides_record(objects, scope), side_settings(match))
    return replace(scope, teams_swapped=swapped)


AnalysedMatch = Annotated[Scope, Depends(get_analysed_match)]


async def _frame_rate(objects: ObjectStore, scope: Scope) -> FrameRate:
    key = artifact_key(
        scope.organization_id, scope.match_id, scope.revision, "index", "summary.json"
    )
    try:
        summary: bytes | None = await objects.get(key)
    except ObjectNotFound:
        summary = None
    return frame_rate(summary, DEFAULT_FPS)


async def _run(analytics: AnalyticsStore, query: SqlStatement) -> Columns:
    sql, parameters = query
    try:
        return await asyncio.to_thread(analytics.query_numpy, sql, parameters)
    except AnalyticsUnavailableError as error:
        raise HTTPException(
            503, "The analytics store is unavailable; try again shortly."
        ) from error


def _column(columns: Columns, name: str) -> np.ndarray[Any, Any]:
    # An empty result comes back without columns at all (chDB's empty Arrow answer).
    return columns.get(name, np.zeros(0, dtype=np.int64))


async def _grid(
    analytics: AnalyticsStore, scope: Scope, team: int, spec: GridSpec
) -> np.ndarray[Any, Any]:
    """The grid of served ``team`` (its stored code may be the other one)."""
    stored = swap_team(team, scope.teams_swapped)
    rows = await _run(analytics, heatmap_query(scope, stored, spec))
    return grid_from_cells(spec, _column(rows, "ix"), _column(rows, "iy"), _column(rows, "n"))


@router.get(
    "/matches/{match_id}/analytics/tracks",
    summary="Track points in a time window",
    response_model=TracksResponse,
    responses=_ERRORS,
)
async def get_tracks(
    scope: AnalysedMatch,
    objects: ObjectsDep,
    analytics: AnalyticsDep,
    start_s: Annotated[
        float, Query(ge=0, allow_inf_nan=False, description="Window start, seconds (inclusive).")
    ],
    end_s: Annotated[
        float,
        Query(
            gt=0,
            allow_inf_nan=False,
            description="Window end, seconds (exclusive); at most 600 s after start_s.",
        ),
    ],
    track_id: Annotated[
        int | None, Query(ge=0, le=2**32 - 1, description="Only this track.")
    ] = None,
    team: Annotated[
        int | None,
        Query(ge=-1, le=1, description="Only points of this team (1 home, 0 away, -1 unknown)."),
    ] = None,
) -> Response:
    """Positions and speeds of every track (or one track, or one team) between two times.

    Times are seconds from the start of the match: frames divided by the match's frame rate
    (from its summary; 25 fps is assumed, with a note, when the summary has none).
    """
    error = window_error(start_s, end_s)
    if error is not None:
        raise HTTPException(422, error)
    rate = await _frame_rate(objects, scope)
    first, end = frame_window(start_s, end_s, rate.fps)
    stored = None if team is None else swap_team(team, scope.teams_swapped)
    rows = await _run(analytics, tracks_query(scope, first, end, track_id=track_id, team=stored))
    rows = served_teams(rows, scope.teams_swapped)
    # Up to some 350,000 points: grouping and serializing take a second of CPU, so they run
    # off the event loop, and the body is written once here instead of being validated
    # again against response_model.
    body = await asyncio.to_thread(_tracks_json, scope, rate, start_s, end_s, rows)
    return Response(content=body, media_type="application/json")


def _tracks_json(
    scope: Scope, rate: FrameRate, start_s: float, end_s: float, rows: Columns
) -> bytes:
    document = TracksResponse(
        match_id=uuid.UUID(scope.match_id),
        revision=scope.revision,
        fps=rate.fps,
        note=rate.note,
        start_s=start_s,
        end_s=end_s,
        tracks=group_tracks(rows, rate.fps),
    )
    return document.model_dump_json().encode()


@router.get(
    "/matches/{match_id}/analytics/ball",
    summary="The ball in a time window",
    response_model=BallResponse,
    responses=_ERRORS,
)
async def get_ball(
    scope: AnalysedMatch,
    objects: ObjectsDep,
    analytics: AnalyticsDep,
    start_s: Annotated[
        float, Query(ge=0, allow_inf_nan=False, description="Window start, seconds (inclusive).")
    ],
    end_s: Annotated[
        float,
        Query(
            gt=0,
            allow_inf_nan=False,
            description="Window end, seconds (exclusive); at most 600 s after start_s.",
        ),
    ],
) -> Response:
    """Where the ball was, and how high, in each frame between two times where it is known.

    Times are seconds from the start of the match, as for the tracks. A match processed before
    the ball was tracked has no points.
    """
    error = window_error(start_s, end_s)
    if error is not None:
        raise HTTPException(422, error)
    rate = await _frame_rate(objects, scope)
    first, end = frame_window(start_s, end_s, rate.fps)
    rows = await _run(analytics, ball_query(scope, first, end))
    body = await asyncio.to_thread(_ball_json, scope, rate, start_s, end_s, rows)
    return Response(content=body, media_type="application/json")


def _ball_json(scope: Scope, rate: FrameRate, start_s: float, end_s: float, rows: Columns) -> bytes:
    document = BallResponse(
        match_id=uuid.UUID(scope.match_id),
        revision=scope.revision,
        fps=rate.fps,
        note=rate.note,
        start_s=start_s,
        end_s=end_s,
        points=ball_points(rows, rate.fps),
    )
    return document.model_dump_json().encode()


@router.get(
    "/matches/{match_id}/analytics/heatmaps",
    summary="A team's heatmap grid",
    response_model=HeatmapResponse,
    responses=_ERRORS,
)
async def get_heatmap(
    scope: AnalysedMatch,
    analytics: AnalyticsDep,
    team: Annotated[int, Query(ge=0, le=1, description="The team: 1 home, 0 away.")],
    cell_m: CellSize = None,
) -> HeatmapResponse:
    """How many of a team's track points fell in each pitch cell over the whole match."""
    spec = grid_spec(cell_m)
    grid = await _grid(analytics, scope, team, spec)
    return HeatmapResponse(
        match_id=uuid.UUID(scope.match_id),
        revision=scope.revision,
        team=team,
        pitch_m=spec.pitch_m,
        cell_m=spec.cell_m,
        shape=spec.shape,
        total=int(grid.sum()),
        grid=grid.tolist(),
    )


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    # Weak comparison (RFC 9110 section 13.1.2): a W/ prefix does not matter for a GET.
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


@router.get(
    "/matches/{match_id}/analytics/heatmaps/{team}.png",
    summary="A team's heatmap as a PNG image",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The heatmap image."},
        304: {"description": "The image has not changed (If-None-Match)."},
        **_ERRORS,
    },
)
async def get_heatmap_png(
    request: Request,
    scope: AnalysedMatch,
    analytics: AnalyticsDep,
    team: Annotated[int, Path(ge=0, le=1, description="The team: 1 home, 0 away.")],
    cell_m: CellSize = None,
    width: Annotated[
        int,
        Query(
            ge=MIN_WIDTH_PX,
            le=MAX_WIDTH_PX,
            description="Image width in pixels; the height follows the pitch (105 x 68).",
        ),
    ] = DEFAULT_WIDTH_PX,
    lines: Annotated[bool, Query(description="Draw the pitch markings.")] = True,
) -> Response:
    """The heatmap grid coloured by point count (scaled to the busiest cell)."""
    spec = grid_spec(cell_m)
    grid = await _grid(analytics, scope, team, spec)
    # cv2 releases the GIL while it draws and encodes; the thread keeps the loop free.
    body = await asyncio.to_thread(heatmap_png, grid, spec.pitch_m, width, lines=lines)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"Cache-Control": PNG_CACHE_CONTROL, "ETag": etag}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="image/png", headers=headers)


async def _track_totals(analytics: AnalyticsStore, scope: Scope) -> list[TrackTotals]:
    rows = await _run(analytics, player_stats_query(scope))
    return track_totals(served_teams(rows, scope.teams_swapped))


@router.get(
    "/matches/{match_id}/analytics/players",
    summary="Per-player statistics",
    response_model=PlayersResponse,
    responses=_ERRORS,
)
async def get_players(
    scope: AnalysedMatch,
    objects: ObjectsDep,
    analytics: AnalyticsDep,
    sort: Annotated[
        PlayerSort, Query(description="Order; a leading '-' sorts descending.")
    ] = PlayerSort.track_id,
    team: Annotated[
        int | None,
        Query(ge=-1, le=1, description="Only tracks of this team (1 home, 0 away, -1 unknown)."),
    ] = None,
) -> PlayersResponse:
    """Each track's frames, minutes played, distance, top speed and sprints over the match.

    A track is what the tracker followed: a player whose track was lost and picked up again
    appears as two tracks. Team -1 holds referees, the ball and unassigned tracks.
    """
    rate = await _frame_rate(objects, scope)
    totals = await _track_totals(analytics, scope)
    if team is not None:
        totals = [t for t in totals if t.team == team]
    return PlayersResponse(
        match_id=uuid.UUID(scope.match_id),
        revision=scope.revision,
        fps=rate.fps,
        note=rate.note,
        players=players(totals, rate.fps, sort),
    )


@router.get(
    "/matches/{match_id}/analytics/teams",
    summary="Per-team totals",
    response_model=TeamsResponse,
    responses=_ERRORS,
)
async def get_teams(
    scope: AnalysedMatch, objects: ObjectsDep, analytics: AnalyticsDep
) -> TeamsResponse:
    """Tracks, time on the pitch, distance, mean and top speed, sprints and possession of teams
    0 (away) and 1 (home).

    Possession counts the frames where the ball is seen, in play and low and only one team's
    players are within reach of it; the share leaves contested frames and frames nobody had
    the ball out. A match processed before the ball was tracked has no share (null).
    """
    rate = await _frame_rate(objects, scope)
    totals = await _track_totals(analytics, scope)
    possession = await _run(analytics, possession_query(scope))
    minutes = served_teams(
        await _run(analytics, possession_minutes_query(scope)), scope.teams_swapped
    )
    teams = team_totals(
        totals, rate.fps, possession_frames(served_teams(possession, scope.teams_swapped))
    )
    for team in teams:
        team.possession_minutes = possession_per_minute(minutes, team.team)
    return TeamsResponse(
        match_id=uuid.UUID(scope.match_id),
        revision=scope.revision,
        fps=rate.fps,
        note=rate.note,
        teams=teams,
    )


def possession_per_minute(minutes: Columns, team: int) -> list[PossessionMinute]:
    """One team's rows of `possession_minutes_query` (its columns, teams as served)."""
    if len(minutes.get("team", ())) == 0:  # chDB answers an empty result without columns
        return []
    mine = np.asarray(minutes["team"]) == team
    return [
        PossessionMinute(minute=int(m), possession_frames=int(p), in_play_frames=int(i))
        for m, p, i in zip(
            np.asarray(minutes["minute"])[mine],
            np.asarray(minutes["possession_frames"])[mine],
            np.asarray(minutes["in_play_frames"])[mine],
            strict=True,
        )
    ]
