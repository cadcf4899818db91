"""Teams of an organization: list, create, read, rename, delete.

A team's name is unique in its organization (409 on a clash). Deleting a team keeps its
matches: their home or away team becomes empty (the foreign key is ON DELETE SET NULL).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.catalog import load_team
from api.deps import DbSession
from api.openapi import problem_responses
from api.security.tenancy import CanEditCatalog, CanView
from polyvision.storage.metadata.models import Team, TeamPublic

router = APIRouter(prefix="/orgs/{org_id}", tags=["catalog"])

NAME_TAKEN = "A team with this name already exists in the organization."


class TeamCreateBody(BaseModel):
    """A new team."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "FC Example"}]})

    name: str = Field(min_length=1, max_length=200)


class TeamUpdateBody(BaseModel):
    """Fields to change; omitted fields stay as they are."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "FC Example United"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)


def _name_taken() -> HTTPException:
    return HTTPException(409, NAME_TAKEN)


async def _name_exists(
    session: AsyncSession, organization_id: uuid.UUID, name: str, *, besides: uuid.UUID | None
) -> bool:
    statement = select(Team.id).where(
        col(Team.organization_id) == organization_id, col(Team.name) == name
    )
    if besides is not None:
        statement = statement.where(col(Team.id) != besides)
    return (await session.exec(statement)).first() is not None


async def _commit_team(session: AsyncSession, team: Team) -> Team:
    session.add(team)
    try:
        await session.commit()
    except IntegrityError as exc:
        # Two requests with the same name at once: the unique constraint decides.
        await session.rollback()
        raise _name_taken() from exc
    await session.refresh(team)
    return team


@router.get(
    "/teams",
    response_model=list[TeamPublic],
    summary="List the organization's teams",
    responses=problem_responses(401, 404),
)
async def list_teams(access: CanView, session: DbSession) -> list[Team]:
    """Every team of the organization, by name."""
    teams = await session.exec(
        select(Team)
        .where(col(Team.organization_id) == access.organization_id)
        .order_by(col(Team.name), col(Team.id))
    )
    return list(teams.all())


@router.post(
    "/teams",
    status_code=status.HTTP_201_CREATED,
    response_model=TeamPublic,
    summary="Create a team",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_team(body: TeamCreateBody, access: CanEditCatalog, session: DbSession) -> Team:
    """A new team; its name must be new in the organization."""
    if await _name_exists(session, access.organization_id, body.name, besides=None):
        raise _name_taken()
    return await _commit_team(session, Team(organization_id=access.organization_id, name=body.name))


@router.get(
    "/teams/{team_id}",
    response_model=TeamPublic,
    summary="Get a team",
    responses=problem_responses(401, 404),
)
async def get_team(team_id: uuid.UUID, access: CanView, session: DbSession) -> Team:
    """One team of the organization."""
    return await load_team(session, access.organization_id, team_id)


@router.patch(
    "/teams/{team_id}",
    response_model=TeamPublic,
    summary="Rename a team",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_team(
    team_id: uuid.UUID, body: TeamUpdateBody, access: CanEditCatalog, session: DbSession
) -> Team:
    """Change a team's fields; a name already used by another team is refused."""
    team = await load_team(session, access.organization_id, team_id)
    if body.name is None or body.name == team.name:
        return team
    if await _name_exists(session, access.organization_id, body.name, besides=team.id):
        raise _name_taken()
    team.name = body.name
    return await _commit_team(session, team)


@router.delete(
    "/teams/{team_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a team",
    responses=problem_responses(401, 403, 404),
)
async def delete_team(team_id: uuid.UUID, access: CanEditCatalog, session: DbSession) -> Response:
    """Remove a team; its matches stay, without it."""
    team = await load_team(session, access.organization_id, team_id)
    await session.delete(team)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
