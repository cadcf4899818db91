"""Matches of an organization: list (filters, search, keyset pages), create, read, edit, delete,
the side settings (which kit is home), and the assets a match's processing produced.

A team named in a match body must belong to the caller's organization; any other id is refused
with 422 "unknown team", whether it exists elsewhere or not, so the answer says nothing about
other tenants.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    field_validator,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.service import RPCError

from api.catalog import (
    InvalidCursor,
    MatchFilters,
    MatchRow,
    MatchSort,
    PageKey,
    decode_cursor,
    encode_cursor,
    load_match,
    match_listing,
    match_rows,
    search_terms,
)
from api.catalog.lookup import MATCH_NOT_FOUND
from api.catalog.matches import sort_value
from api.catalog.purge import gather_stored_data, purge_stored_data, workflow_running
from api.catalog.sides import HomeStartsLeft, KitColour, KitSettings, kits_problem
from api.deps import AnalyticsDep, DbSession, EngineDep, ObjectsDep, TemporalDep
from api.json_fields import TextDatetime
from api.openapi import problem_responses
from api.security.tenancy import CanAssignSides, CanEditCatalog, CanView, not_found
from polyvision.artifacts import match_prefix
from polyvision.storage.metadata.models import (
    Asset,
    AssetPublic,
    Match,
    MatchStatus,
    Team,
)

router = APIRouter(prefix="/orgs/{org_id}", tags=["catalog"])

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_MATCH_EXAMPLE: dict[str, JsonValue] = {
    "title": "FC Example vs. Sample United",
    "home_team_id": "0b9a4c3e-2f4e-4f61-9a53-3f1f4d1c2a10",
    "away_team_id": "5d0e8a7b-9c1d-4e2f-8a3b-6c7d8e9f0a1b",
    "venue": "Example Park",
    "kickoff_at": "2025-05-17T15:30:00Z",
    "home_kit_colour": "#c8102e",
    "away_kit_colour": "#1d428a",
}


# --- bodies and answers ------------------------------------------------------------------


class TeamRef(BaseModel):
    id: uuid.UUID
    name: str


class DeviceRef(BaseModel):
    id: uuid.UUID
    name: str


class MatchItem(BaseModel):
    """A match as the catalog shows it: ids with the names they stand for."""

    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    home_team: TeamRef | None
    away_team: TeamRef | None
    venue: str | None
    kickoff_at: datetime | None
    device: DeviceRef | None
    status: MatchStatus
    duration_s: float | None
    revision: int
    created_at: datetime
    updated_at: datetime
    home_kit_colour: str | None = Field(description="Home shirt colour, #rrggbb.")
    away_kit_colour: str | None = Field(description="Away shirt colour, #rrggbb.")
    home_starts_left: bool | None = Field(
        description="Whether home defends the goal at pitch x = 0 in the first minutes."
    )
    teams_swapped: bool = Field(
        description="The operator's override: home and away swapped after the kit colours or "
        "starting side decided (applied to the analytics without reprocessing)."
    )


class MatchPage(BaseModel):
    """One page of matches; pass ``next_cursor`` back as ``cursor`` for the next (None: done)."""

    items: list[MatchItem]
    next_cursor: str | None


class MatchCreateBody(KitSettings):
    """A match entered by hand (matches recorded by a device are created by their upload).

    The kit colours or the starting side say which of the two kits the tracker finds is home;
    without them kit 1 is home. The override, ``teams_swapped``, is for an operator afterwards
    (``PATCH .../sides``).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_MATCH_EXAMPLE]})

    title: str = Field(min_length=1, max_length=300)
    home_team_id: uuid.UUID | None = None
    away_team_id: uuid.UUID | None = None
    venue: str | None = Field(default=None, max_length=300)
    kickoff_at: TextDatetime | None = None


class MatchUpdateBody(BaseModel):
    """Fields to change; omitted fields stay, ``null`` clears (except the title)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"venue": "Example Park, pitch 2", "away_team_id": None}]}
    )

    title: str | None = Field(default=None, min_length=1, max_length=300)
    home_team_id: uuid.UUID | None = None
    away_team_id: uuid.UUID | None = None
    venue: str | None = Field(default=None, max_length=300)
    kickoff_at: TextDatetime | None = None

    @field_validator("title")
    @classmethod
    def _title_not_null(cls, value: str | None) -> str:
        # Runs only when the client sent a title: an explicit null is refused.
        if value is None:
            raise ValueError("a match keeps a title; omit the field to leave it as it is")
        return value


class MatchSidesBody(BaseModel):
    """Side settings to change; omitted fields stay, ``null`` clears (except the override)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"teams_swapped": True}, {"home_kit_colour": "#ffffff"}],
        }
    )

    home_kit_colour: KitColour | None = None
    away_kit_colour: KitColour | None = None
    home_starts_left: HomeStartsLeft = None
    teams_swapped: StrictBool | None = Field(
        default=None,
        description="Swap home and away, whatever the kit colours or starting side decide.",
    )

    @field_validator("teams_swapped")
    @classmethod
    def _override_not_null(cls, value: bool | None) -> bool:
        # Runs only when the client sent the field: an explicit null is refused.
        if value is None:
            raise ValueError("teams_swapped is true or false; omit it to leave it as it is")
        return value


# --- helpers -----------------------------------------------------------------------------


def _match_root(organization_id: str, match_id: str) -> str:
    """The prefix holding every revision of a match (`match_prefix` without the revision)."""
    return match_prefix(organization_id, match_id, 0).removesuffix("/0") + "/"


def _item(row: MatchRow) -> MatchItem:
    match = row.match
    home = away = device = None
    if match.home_team_id is not None and row.home_team_name is not None:
        home = TeamRef(id=match.home_team_id, name=row.home_team_name)
    if match.away_team_id is not None and row.away_team_name is not None:
        away = TeamRef(id=match.away_team_id, name=row.away_team_name)
    if match.device_id is not None and row.device_name is not None:
        device = DeviceRef(id=match.device_id, name=row.device_name)
    return MatchItem(
        id=match.id,
        organization_id=match.organization_id,
        title=match.title,
        home_team=home,
        away_team=away,
        venue=match.venue,
        kickoff_at=match.kickoff_at,
        device=device,
        status=match.status,
        duration_s=match.duration_s,
        revision=match.revision,
        created_at=match.created_at,
        updated_at=match.updated_at,
        home_kit_colour=match.home_kit_colour,
        away_kit_colour=match.away_kit_colour,
        home_starts_left=match.home_starts_left,
        teams_swapped=match.teams_swapped,
    )


async def _load_item(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID
) -> MatchItem:
    # populate_existing: a match just written in this session is read back as stored (UTC
    # kickoff, server-set updated_at), not as the request gave it.
    statement = (
        match_rows(organization_id)
        .where(col(Match.id) == match_id)
        .execution_options(populate_existing=True)
    )
    found = (await session.exec(statement)).first()
    if found is None:
        raise not_found(MATCH_NOT_FOUND)
    match, home_name, away_name, device_name = found
    return _item(MatchRow(match, home_name, away_name, device_name))


async def _check_teams(
    session: AsyncSession,
    organization_id: uuid.UUID,
    home_team_id: uuid.UUID | None,
    away_team_id: uuid.UUID | None,
) -> None:
    """422 unless both teams (when given) are the organization's and not the same team."""
    if home_team_id is not None and home_team_id == away_team_id:
        raise HTTPException(422, "A match needs two different teams.")
    wanted = {team_id for team_id in (home_team_id, away_team_id) if team_id is not None}
    if not wanted:
        return
    found = set(
        (
            await session.exec(
                select(Team.id).where(
                    col(Team.organization_id) == organization_id, col(Team.id).in_(wanted)
                )
            )
        ).all()
    )
    missing = sorted(str(team_id) for team_id in wanted - found)
    if missing:
        raise HTTPException(422, f"Unknown team: {', '.join(missing)}.")


# --- routes ------------------------------------------------------------------------------


@router.get(
    "/matches",
    response_model=MatchPage,
    summary="List and search matches",
    responses=problem_responses(401, 404, 422),
)
async def list_matches(
    access: CanView,
    session: DbSession,
    engine: EngineDep,
    status_: Annotated[
        list[MatchStatus] | None,
        Query(alias="status", description="Keep these statuses (repeat for several)."),
    ] = None,
    team_id: Annotated[uuid.UUID | None, Query(description="The team plays, home or away.")] = None,
    device_id: Annotated[uuid.UUID | None, Query(description="Recorded by this device.")] = None,
    kickoff_from: Annotated[
        TextDatetime | None, Query(description="Kickoff at or after this time (inclusive).")
    ] = None,
    kickoff_to: Annotated[
        TextDatetime | None, Query(description="Kickoff before this time (exclusive).")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Search words; each must start a word of the title, venue or a "
            "team's name (case-insensitive), found through the full-text index.",
        ),
    ] = None,
    sort: Annotated[
        MatchSort | None,
        Query(
            description="Order; `-` is descending. Ties are broken by id. `relevance`: the "
            "search's relevance (a term in the title counts 3, in a team's name 2, in the "
            "venue 1), then the newest kickoff. Default: `relevance` with `q`, else "
            "`-kickoff_at`."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="`next_cursor` of the previous page.")
    ] = None,
) -> MatchPage:
    """The organization's matches, filtered, searched and sorted, one page at a time."""
    filters = MatchFilters(
        statuses=tuple(status_ or ()),
        team_id=team_id,
        device_id=device_id,
        kickoff_from=kickoff_from,
        kickoff_to=kickoff_to,
        terms=tuple(search_terms(q)),
    )
    if sort is None:
        sort = MatchSort.relevance if filters.terms else MatchSort.kickoff_desc
    fingerprint = filters.fingerprint(sort)
    after: PageKey | None = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor, sort=sort.value, fingerprint=fingerprint)
        except InvalidCursor as exc:
            raise HTTPException(422, str(exc)) from exc
    statement = match_listing(
        access.organization_id,
        filters,
        sort,
        after=after,
        limit=limit,
        dialect=engine.dialect.name,
    )
    found = list((await session.exec(statement)).all())
    rows = [MatchRow(match, home, away, device) for match, home, away, device, _ in found]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last, rank = rows[-1].match, int(found[limit - 1][4])
        next_cursor = encode_cursor(
            PageKey(
                sort.value,
                sort_value(last, sort),
                last.id,
                fingerprint,
                rank=rank if sort is MatchSort.relevance else None,
            )
        )
    return MatchPage(items=[_item(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/matches",
    status_code=status.HTTP_201_CREATED,
    response_model=MatchItem,
    summary="Create a match by hand",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_match(
    body: MatchCreateBody, access: CanEditCatalog, session: DbSession
) -> MatchItem:
    """A new match in status ``created``; its teams must be the organization's."""
    await _check_teams(session, access.organization_id, body.home_team_id, body.away_team_id)
    match = Match(organization_id=access.organization_id, **body.model_dump())
    session.add(match)
    await session.commit()
    return await _load_item(session, access.organization_id, match.id)


@router.get(
    "/matches/{match_id}",
    response_model=MatchItem,
    summary="Get a match",
    responses=problem_responses(401, 404),
)
async def get_match(match_id: uuid.UUID, access: CanView, session: DbSession) -> MatchItem:
    """One match of the organization."""
    return await _load_item(session, access.organization_id, match_id)


@router.patch(
    "/matches/{match_id}",
    response_model=MatchItem,
    summary="Edit a match",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_match(
    match_id: uuid.UUID, body: MatchUpdateBody, access: CanEditCatalog, session: DbSession
) -> MatchItem:
    """Change a match's title, teams, venue or kickoff (processing state is not editable)."""
    match = await load_match(session, access.organization_id, match_id)
    changes = body.model_dump(exclude_unset=True)
    home = changes.get("home_team_id", match.home_team_id)
    away = changes.get("away_team_id", match.away_team_id)
    await _check_teams(session, access.organization_id, home, away)
    for name, value in changes.items():
        setattr(match, name, value)
    session.add(match)
    await session.commit()
    return await _load_item(session, access.organization_id, match.id)


@router.patch(
    "/matches/{match_id}/sides",
    response_model=MatchItem,
    summary="Set which kit is home, or swap home and away",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_sides(
    match_id: uuid.UUID, body: MatchSidesBody, access: CanAssignSides, session: DbSession
) -> MatchItem:
    """Change a match's kit colours, starting side or home/away override (owners and admins).

    A processed match needs no reprocessing: its analytics follow the new settings at once
    (the track stage's recorded kits are matched to them again when read). A run in progress
    uses the settings it started with, and its analytics too follow the new ones once served.
    422 when the two kits would share a colour.
    """
    match = await load_match(session, access.organization_id, match_id)
    changes = body.model_dump(exclude_unset=True)
    problem = kits_problem(
        changes.get("home_kit_colour", match.home_kit_colour),
        changes.get("away_kit_colour", match.away_kit_colour),
    )
    if problem is not None:
        raise HTTPException(422, problem)
    for name, value in changes.items():
        setattr(match, name, value)
    session.add(match)
    await session.commit()
    log.info("match sides set", match_id=str(match_id), **changes)
    return await _load_item(session, access.organization_id, match.id)


@router.delete(
    "/matches/{match_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a match and its outputs",
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def delete_match(
    match_id: uuid.UUID,
    access: CanEditCatalog,
    session: DbSession,
    objects: ObjectsDep,
    analytics: AnalyticsDep,
    client: TemporalDep,
) -> Response:
    """Remove a match, its assets, uploads, stored objects and analytics rows.

    Refused (409) while its workflow runs, as Temporal sees it (a cancel that was only asked
    for counts as running): no worker may write outputs for a match that no longer exists.
    Open uploads of the match are aborted.
    """
    match = await load_match(session, access.organization_id, match_id)
    try:
        running = await workflow_running(client, match)
    except RPCError as exc:
        raise HTTPException(503, "The processing service is unavailable; try again.") from exc
    if running:
        raise HTTPException(
            409, "The match is being processed; cancel the processing and wait until it stops."
        )
    data = await gather_stored_data(
        session,
        access.organization_id,
        [match],
        [_match_root(str(match.organization_id), str(match.id))],
    )
    await session.delete(match)
    await session.commit()
    removed = await purge_stored_data(objects, analytics, data)
    log.info("match deleted", match_id=str(match_id), objects=removed)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/matches/{match_id}/assets",
    response_model=list[AssetPublic],
    summary="List a match's assets",
    responses=problem_responses(401, 404),
)
async def list_assets(match_id: uuid.UUID, access: CanView, session: DbSession) -> list[Asset]:
    """The files processing produced for the match (streams, panorama, heatmaps, ...)."""
    match = await load_match(session, access.organization_id, match_id)
    assets = await session.exec(
        select(Asset)
        .where(
            col(Asset.organization_id) == access.organization_id, col(Asset.match_id) == match.id
        )
        .order_by(col(Asset.kind), col(Asset.object_key))
    )
    return list(assets.all())
