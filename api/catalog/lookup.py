"""Loading one team or match of an organization: absent and "another tenant's" are one 404."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from api.security.tenancy import not_found
from polyvision.storage.metadata.models import Match, Team

MATCH_NOT_FOUND = "Match not found."
TEAM_NOT_FOUND = "Team not found."


def match_in_org(organization_id: uuid.UUID, match_id: uuid.UUID) -> SelectOfScalar[Match]:
    """The match ``match_id`` if it belongs to ``organization_id``."""
    return select(Match).where(
        col(Match.id) == match_id, col(Match.organization_id) == organization_id
    )


async def load_match(
    session: AsyncSession, organization_id: uuid.UUID, match_id: uuid.UUID
) -> Match:
    """The organization's match, or HTTP 404 (also for another organization's match)."""
    match = (await session.exec(match_in_org(organization_id, match_id))).first()
    if match is None:
        raise not_found(MATCH_NOT_FOUND)
    return match


async def load_team(session: AsyncSession, organization_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    """The organization's team, or HTTP 404 (also for another organization's team)."""
    team = (
        await session.exec(
            select(Team).where(
                col(Team.id) == team_id, col(Team.organization_id) == organization_id
            )
        )
    ).first()
    if team is None:
        raise not_found(TEAM_NOT_FOUND)
    return team
