"""Team rosters, and the analyst's corrections of a match's tracked identities.

A team's roster is its players (a name, an optional shirt number unique in the team):
members who may edit the catalog (owners, admins, analysts) write it, every member reads it.

The analytics follow players as identities (integer ids, per match and revision: the analyze
stage's joined tracks). An analyst names an identity after a roster player of one of the
match's teams, and merges two identities that are one person (``source`` becomes ``target``).
Both are stored in the catalog with who made them and when, and the per-player figures
(`api.routes.player_figures`) apply them at read time through
`api.analytics.identity_map`. A merge that would close a cycle, or leave one merged group with
two players, is refused with 409 before it is stored. Reading them needs ``read_analytics``;
writing them ``edit_catalog``. Without a ``revision``, the match's published revision is meant
(409 while it has none).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.analytics.identity_map import (
    IdentityConflictError,
    IdentityCycleError,
    IdentityMap,
    build_identity_map,
)
from api.catalog import load_team, match_in_org
from api.catalog.lookup import MATCH_NOT_FOUND
from api.deps import DbSession
from api.openapi import problem_responses
from api.security.tenancy import CanEditCatalog, CanReadAnalytics, CanView, not_found
from polyvision.storage.metadata.models import (
    IdentityAssignment,
    IdentityMerge,
    Match,
    RosterPlayer,
    RosterPlayerPublic,
    utcnow,
)

router = APIRouter(prefix="/orgs/{org_id}", tags=["roster"])

log = structlog.get_logger(__name__)

PLAYER_NOT_FOUND = "Player not found."
NUMBER_TAKEN = "Another player of the team already wears this shirt number."
NOT_READY = "The match has no published revision yet: name the revision."
MAX_IDENTITY = 2**32 - 1

IdentityId = Annotated[
    int, Path(ge=0, le=MAX_IDENTITY, description="A tracked identity of the match revision.")
]
RevisionQuery = Annotated[
    int | None,
    Query(ge=1, description="The match revision; omitted: the published revision."),
]


# --- bodies and answers ------------------------------------------------------------------


class RosterPlayerCreateBody(BaseModel):
    """A new player on the team's roster."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Alex Example", "shirt_number": 9}]}
    )

    name: str = Field(min_length=1, max_length=200)
    shirt_number: StrictInt | None = Field(default=None, ge=0, le=999)


class RosterPlayerUpdateBody(BaseModel):
    """Fields to change; omitted fields stay, ``null`` clears the shirt number."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"shirt_number": 10}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    shirt_number: StrictInt | None = Field(default=None, ge=0, le=999)

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        # Runs only when the client sent a name: an explicit null is refused.
        if value is None:
            raise ValueError("a player keeps a name; omit the field to leave it as it is")
        return value


class PlayerRef(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    shirt_number: int | None


class AssignBody(BaseModel):
    """The roster player an identity is."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"player_id": "0b9a4c3e-2f4e-4f61-9a53-3f1f4d1c2a10"}]}
    )

    player_id: uuid.UUID
    revision: StrictInt | None = Field(
        default=None, ge=1, description="Omitted: the published one."
    )


class MergeBody(BaseModel):
    """The identity this one becomes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"into": 7}]})

    into: StrictInt = Field(ge=0, le=MAX_IDENTITY)
    revision: StrictInt | None = Field(
        default=None, ge=1, description="Omitted: the published one."
    )


class AssignmentItem(BaseModel):
    identity_id: int
    revision: int
    player: PlayerRef
    assigned_by: uuid.UUID | None
    assigned_at: datetime


class MergeItem(BaseModel):
    source_identity_id: int
    target_identity_id: int
    revision: int
    merged_by: uuid.UUID | None
    merged_at: datetime


class ServedIdentity(BaseModel):
    """Where one identity named by the corrections ends up."""

    identity_id: int
    served_as: int = Field(description="The identity its figures are served under.")
    player_id: uuid.UUID | None


class IdentitiesResponse(BaseModel):
    """A match revision's corrections, and what they resolve to."""

    match_id: uuid.UUID
    revision: int
    merges: list[MergeItem]
    assignments: list[AssignmentItem]
    resolved: list[ServedIdentity]


# --- roster ------------------------------------------------------------------------------


async def _load_player(
    session: AsyncSession, organization_id: uuid.UUID, team_id: uuid.UUID, player_id: uuid.UUID
) -> RosterPlayer:
    player = (
        await session.exec(
            select(RosterPlayer).where(
                col(RosterPlayer.id) == player_id,
                col(RosterPlayer.team_id) == team_id,
                col(RosterPlayer.organization_id) == organization_id,
            )
        )
    ).first()
    if player is None:
        raise not_found(PLAYER_NOT_FOUND)
    return player


async def _number_taken(
    session: AsyncSession, team_id: uuid.UUID, number: int | None, *, besides: uuid.UUID | None
) -> bool:
    if number is None:
        return False
    statement = select(RosterPlayer.id).where(
        col(RosterPlayer.team_id) == team_id, col(RosterPlayer.shirt_number) == number
    )
    if besides is not None:
        statement = statement.where(col(RosterPlayer.id) != besides)
    return (await session.exec(statement)).first() is not None


async def _commit_player(session: AsyncSession, player: RosterPlayer) -> RosterPlayer:
    session.add(player)
    try:
        await session.commit()
    except IntegrityError as exc:
        # Two requests with the same number at once: the unique constraint decides.
        await session.rollback()
        raise HTTPException(409, NUMBER_TAKEN) from exc
    await session.refresh(player)
    return player


@router.get(
    "/teams/{team_id}/players",
    response_model=list[RosterPlayerPublic],
    summary="List a team's roster",
    responses=problem_responses(401, 404),
)
async def list_players(
    team_id: uuid.UUID, access: CanView, session: DbSession
) -> list[RosterPlayer]:
    """The team's players, by shirt number (players without one last), then name."""
    team = await load_team(session, access.organization_id, team_id)
    players = await session.exec(
        select(RosterPlayer)
        .where(
            col(RosterPlayer.organization_id) == access.organization_id,
            col(RosterPlayer.team_id) == team.id,
        )
        .order_by(
            col(RosterPlayer.shirt_number).asc().nulls_last(),
            col(RosterPlayer.name),
            col(RosterPlayer.id),
        )
    )
    return list(players.all())


@router.post(
    "/teams/{team_id}/players",
    status_code=status.HTTP_201_CREATED,
    response_model=RosterPlayerPublic,
    summary="Add a player to a team's roster",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_player(
    team_id: uuid.UUID, body: RosterPlayerCreateBody, access: CanEditCatalog, session: DbSession
) -> RosterPlayer:
    """A new roster player; a shirt number already worn in the team is refused (409)."""
    team = await load_team(session, access.organization_id, team_id)
    if await _number_taken(session, team.id, body.shirt_number, besides=None):
        raise HTTPException(409, NUMBER_TAKEN)
    player = RosterPlayer(
        organization_id=access.organization_id,
        team_id=team.id,
        name=body.name,
        shirt_number=body.shirt_number,
        created_by=access.user.id,
    )
    return await _commit_player(session, player)


@router.get(
    "/teams/{team_id}/players/{player_id}",
    response_model=RosterPlayerPublic,
    summary="Get a roster player",
    responses=problem_responses(401, 404),
)
async def get_player(
    team_id: uuid.UUID, player_id: uuid.UUID, access: CanView, session: DbSession
) -> RosterPlayer:
    """One player of the team's roster."""
    return await _load_player(session, access.organization_id, team_id, player_id)


@router.patch(
    "/teams/{team_id}/players/{player_id}",
    response_model=RosterPlayerPublic,
    summary="Edit a roster player",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_player(
    team_id: uuid.UUID,
    player_id: uuid.UUID,
    body: RosterPlayerUpdateBody,
    access: CanEditCatalog,
    session: DbSession,
) -> RosterPlayer:
    """Change a player's name or shirt number."""
    player = await _load_player(session, access.organization_id, team_id, player_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        return player
    number = changes.get("shirt_number", player.shirt_number)
    if await _number_taken(session, player.team_id, number, besides=player.id):
        raise HTTPException(409, NUMBER_TAKEN)
    for name, value in changes.items():
        setattr(player, name, value)
    return await _commit_player(session, player)


@router.delete(
    "/teams/{team_id}/players/{player_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a player from a team's roster",
    responses=problem_responses(401, 403, 404),
)
async def delete_player(
    team_id: uuid.UUID, player_id: uuid.UUID, access: CanEditCatalog, session: DbSession
) -> Response:
    """Remove a player; identities named after the player lose the name."""
    player = await _load_player(session, access.organization_id, team_id, player_id)
    await session.delete(player)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- identities --------------------------------------------------------------------------


async def _lock_match(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID
) -> Match:
    """The organization's match, its row locked (PostgreSQL) so that two corrections of one
    match are checked one after the other; 404 otherwise."""
    statement = match_in_org(organization_id, match_id).with_for_update()
    match = (await session.exec(statement)).first()
    if match is None:
        raise not_found(MATCH_NOT_FOUND)
    return match


def _revision(match: Match, requested: int | None) -> int:
    if requested is None:
        if match.published_revision is None:
            raise HTTPException(409, NOT_READY)
        return match.published_revision
    if requested > match.revision:
        raise HTTPException(422, f"The match has no revision {requested}.")
    return requested


async def _merges(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID, revision: int
) -> list[IdentityMerge]:
    rows = await session.exec(
        select(IdentityMerge)
        .where(
            col(IdentityMerge.organization_id) == organization_id,
            col(IdentityMerge.match_id) == match_id,
            col(IdentityMerge.revision) == revision,
        )
        .order_by(col(IdentityMerge.source_identity_id))
    )
    return list(rows.all())


async def _assignments(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID, revision: int
) -> list[tuple[IdentityAssignment, RosterPlayer]]:
    rows = await session.exec(
        select(IdentityAssignment, RosterPlayer)
        .join(RosterPlayer, col(RosterPlayer.id) == col(IdentityAssignment.player_id))
        .where(
            col(IdentityAssignment.organization_id) == organization_id,
            col(IdentityAssignment.match_id) == match_id,
            col(IdentityAssignment.revision) == revision,
        )
        .order_by(col(IdentityAssignment.identity_id))
    )
    return [(assignment, player) for assignment, player in rows.all()]


async def load_identity_map(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID, revision: int
) -> tuple[IdentityMap, dict[uuid.UUID, RosterPlayer]]:
    """The match revision's corrections resolved, and the roster players they name.

    Stored corrections were checked when written; should two concurrent writes still have
    closed a cycle, the map is built without the merges rather than failing every read.
    """
    merges = [
        (m.source_identity_id, m.target_identity_id)
        for m in await _merges(session, organization_id, match_id, revision)
    ]
    assigned = await _assignments(session, organization_id, match_id, revision)
    by_identity = {a.identity_id: a.player_id for a, _ in assigned}
    players = {p.id: p for _, p in assigned}
    try:
        return build_identity_map(merges, by_identity), players
    except (IdentityCycleError, IdentityConflictError, ValueError):
        log.warning("inconsistent identity corrections", match_id=str(match_id))
        return build_identity_map([], {}), players


def _check(merges: list[tuple[int, int]], assignments: dict[int, uuid.UUID]) -> None:
    """409 when the corrections cannot stand together."""
    try:
        build_identity_map(merges, assignments)
    except (IdentityCycleError, IdentityConflictError) as error:
        raise HTTPException(409, str(error)) from error


def _player_ref(player: RosterPlayer) -> PlayerRef:
    return PlayerRef(
        id=player.id, team_id=player.team_id, name=player.name, shirt_number=player.shirt_number
    )


@router.get(
    "/matches/{match_id}/identities",
    response_model=IdentitiesResponse,
    summary="A match's identity merges and roster names",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def get_identities(
    match_id: uuid.UUID,
    access: CanReadAnalytics,
    session: DbSession,
    revision: RevisionQuery = None,
) -> IdentitiesResponse:
    """The merges and roster names of a match revision, and the identity each named identity
    is served under."""
    match = (await session.exec(match_in_org(access.organization_id, match_id))).first()
    if match is None:
        raise not_found(MATCH_NOT_FOUND)
    chosen = _revision(match, revision)
    merges = await _merges(session, access.organization_id, match.id, chosen)
    assigned = await _assignments(session, access.organization_id, match.id, chosen)
    identity_map, _ = await load_identity_map(session, access.organization_id, match.id, chosen)
    named = {m.source_identity_id for m in merges} | {m.target_identity_id for m in merges}
    named |= {a.identity_id for a, _ in assigned}
    return IdentitiesResponse(
        match_id=match.id,
        revision=chosen,
        merges=[
            MergeItem(
                source_identity_id=m.source_identity_id,
                target_identity_id=m.target_identity_id,
                revision=m.revision,
                merged_by=m.merged_by,
                merged_at=m.merged_at,
            )
            for m in merges
        ],
        assignments=[
            AssignmentItem(
                identity_id=a.identity_id,
                revision=a.revision,
                player=_player_ref(p),
                assigned_by=a.assigned_by,
                assigned_at=a.assigned_at,
            )
            for a, p in assigned
        ],
        resolved=[
            ServedIdentity(
                identity_id=identity,
                served_as=identity_map.resolve(identity),
                player_id=identity_map.player(identity),
            )
            for identity in sorted(named)
        ],
    )


@router.put(
    "/matches/{match_id}/identities/{identity_id}/player",
    response_model=AssignmentItem,
    summary="Name an identity after a roster player",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def assign_player(
    match_id: uuid.UUID,
    identity_id: IdentityId,
    body: AssignBody,
    access: CanEditCatalog,
    session: DbSession,
) -> AssignmentItem:
    """Say which roster player an identity is (replacing an earlier name).

    The player must be on the roster of one of the match's teams (422 otherwise, or when the
    player is unknown). 409 when the identity's merged group already is another player.
    """
    match = await _lock_match(session, access.organization_id, match_id)
    revision = _revision(match, body.revision)
    player = (
        await session.exec(
            select(RosterPlayer).where(
                col(RosterPlayer.id) == body.player_id,
                col(RosterPlayer.organization_id) == access.organization_id,
            )
        )
    ).first()
    if player is None:
        raise HTTPException(422, f"Unknown roster player: {body.player_id}.")
    teams = {t for t in (match.home_team_id, match.away_team_id) if t is not None}
    if teams and player.team_id not in teams:
        raise HTTPException(422, "The player is on neither of the match's teams.")
    merges = await _merges(session, access.organization_id, match.id, revision)
    assigned = await _assignments(session, access.organization_id, match.id, revision)
    by_identity = {a.identity_id: a.player_id for a, _ in assigned}
    by_identity[identity_id] = player.id
    _check([(m.source_identity_id, m.target_identity_id) for m in merges], by_identity)
    existing = next((a for a, _ in assigned if a.identity_id == identity_id), None)
    assignment = existing or IdentityAssignment(
        organization_id=access.organization_id,
        match_id=match.id,
        revision=revision,
        identity_id=identity_id,
        player_id=player.id,
    )
    assignment.player_id = player.id
    assignment.assigned_by = access.user.id
    assignment.assigned_at = utcnow()
    session.add(assignment)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise HTTPException(409, "The identity was named meanwhile; try again.") from exc
    log.info(
        "identity named", match_id=str(match.id), identity_id=identity_id, player=str(player.id)
    )
    return AssignmentItem(
        identity_id=identity_id,
        revision=revision,
        player=_player_ref(player),
        assigned_by=assignment.assigned_by,
        assigned_at=assignment.assigned_at,
    )


@router.delete(
    "/matches/{match_id}/identities/{identity_id}/player",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an identity's roster name",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def unassign_player(
    match_id: uuid.UUID,
    identity_id: IdentityId,
    access: CanEditCatalog,
    session: DbSession,
    revision: RevisionQuery = None,
) -> Response:
    """Forget which player an identity is (404 when it was named after nobody)."""
    match = await _lock_match(session, access.organization_id, match_id)
    chosen = _revision(match, revision)
    assigned = await _assignments(session, access.organization_id, match.id, chosen)
    existing = next((a for a, _ in assigned if a.identity_id == identity_id), None)
    if existing is None:
        raise not_found("The identity is not named after a player.")
    await session.delete(existing)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/matches/{match_id}/identities/{identity_id}/merge",
    status_code=status.HTTP_201_CREATED,
    response_model=MergeItem,
    summary="Merge an identity into another",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def merge_identity(
    match_id: uuid.UUID,
    identity_id: IdentityId,
    body: MergeBody,
    access: CanEditCatalog,
    session: DbSession,
) -> MergeItem:
    """Say that an identity is the same person as another: its figures count as the other's.

    409 when the identity is already merged (remove that merge first), when the merge would
    close a cycle, or when the two would be two different roster players; 422 for itself.
    """
    if body.into == identity_id:
        raise HTTPException(422, "An identity cannot be merged into itself.")
    match = await _lock_match(session, access.organization_id, match_id)
    revision = _revision(match, body.revision)
    merges = await _merges(session, access.organization_id, match.id, revision)
    current = next((m for m in merges if m.source_identity_id == identity_id), None)
    if current is not None:
        raise HTTPException(
            409,
            f"Identity {identity_id} is already merged into {current.target_identity_id};"
            " remove that merge first.",
        )
    assigned = await _assignments(session, access.organization_id, match.id, revision)
    pairs = [(m.source_identity_id, m.target_identity_id) for m in merges]
    _check([*pairs, (identity_id, body.into)], {a.identity_id: a.player_id for a, _ in assigned})
    merge = IdentityMerge(
        organization_id=access.organization_id,
        match_id=match.id,
        revision=revision,
        source_identity_id=identity_id,
        target_identity_id=body.into,
        merged_by=access.user.id,
    )
    session.add(merge)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise HTTPException(409, f"Identity {identity_id} was merged meanwhile.") from exc
    log.info("identities merged", match_id=str(match.id), source=identity_id, target=body.into)
    return MergeItem(
        source_identity_id=identity_id,
        target_identity_id=body.into,
        revision=revision,
        merged_by=merge.merged_by,
        merged_at=merge.merged_at,
    )


@router.delete(
    "/matches/{match_id}/identities/{identity_id}/merge",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Undo an identity's merge",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def unmerge_identity(
    match_id: uuid.UUID,
    identity_id: IdentityId,
    access: CanEditCatalog,
    session: DbSession,
    revision: RevisionQuery = None,
) -> Response:
    """Split an identity from the one it was merged into (404 when it was not merged).

    A roster name stays with the identity it was given to.
    """
    match = await _lock_match(session, access.organization_id, match_id)
    chosen = _revision(match, revision)
    merges = await _merges(session, access.organization_id, match.id, chosen)
    current = next((m for m in merges if m.source_identity_id == identity_id), None)
    if current is None:
        raise not_found("The identity is not merged into another.")
    await session.delete(current)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
