"""Organizations and their members.

Any authenticated user may create an organization and becomes its owner. Everything under
``/orgs/{org_id}`` goes through `OrgAccess`: a caller who is not a member gets 404, a member
whose role lacks the permission gets 403 (see `api.security.permissions`).

Owner rules, on top of the permission table: only an owner may grant the owner role or change
or remove an owner, and an organization always keeps at least one owner. They live in the pure
function `role_change_error` so the routes stay thin.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.service import RPCError

from api.catalog.purge import gather_stored_data, purge_stored_data, workflow_running
from api.deps import AnalyticsDep, DbSession, ObjectsDep, TemporalDep
from api.openapi import problem_responses
from api.paging import Offset
from api.routes.auth import Email
from api.security import CurrentUser
from api.security.permissions import ROLE_PERMISSIONS, Permission
from api.security.tenancy import CanManageMembers, CanManageOrganization, CanView, OrgMember
from polyvision.storage.metadata.models import (
    MAX_RETENTION_DAYS,
    Match,
    Membership,
    Organization,
    OrganizationPublic,
    Role,
    User,
)

router = APIRouter(prefix="/orgs", tags=["organizations"])

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
SLUG_TAKEN = "This slug is already taken."
LAST_OWNER = "An organization keeps at least one owner."
OWNER_ONLY = "Only an owner can grant the owner role or change or remove an owner."
MEMBER_NOT_FOUND = "Member not found."
NO_ACCOUNT = "No account with this email."
ALREADY_MEMBER = "This account is already a member."

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]


# --- request and response bodies ---------------------------------------------------------


class OrganizationCreateRequest(BaseModel):
    """A new organization; the caller becomes its owner."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "FC Riverside", "slug": "fc-riverside"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)


class OrganizationRenameRequest(BaseModel):
    """A new display name and/or retention; the slug never changes (URLs and object keys may
    hold it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "FC Riverside Women"}, {"retention_days": 30}],
        }
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    retention_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "Days a match's video, streams and analytics are kept after the match was created;"
            " a daily job removes them past it (the match row stays, status `expired`)."
        ),
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> OrganizationRenameRequest:
        if self.name is None and self.retention_days is None:
            raise ValueError("give a name, a retention_days, or both")
        return self


class MemberAddRequest(BaseModel):
    """An existing account to add, and its role."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "coach@example.com", "role": "analyst"}]}
    )

    email: Email
    role: Role = Role.viewer


class MemberRoleRequest(BaseModel):
    """A member's new role."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role


class OrganizationWithRole(OrganizationPublic):
    """An organization and the caller's role in it."""

    role: Role


class OrganizationDetail(OrganizationWithRole):
    """An organization, the caller's role and what that role allows."""

    permissions: list[Permission]


class MemberPublic(BaseModel):
    """A member of an organization."""

    user_id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    joined_at: datetime


# --- rules -------------------------------------------------------------------------------


def role_change_error(
    actor: Role, current: Role | None, new: Role | None, owners: int
) -> HTTPException | None:
    """Why a membership change is refused, or None when it is allowed.

    Args:
        actor: the role of the member making the change.
        current: the target's role now, or None when the target is being added.
        new: the target's role after the change, or None when the target is being removed.
        owners: how many owners the organization has now.
    """
    if Role.owner in (current, new) and actor is not Role.owner:
        return HTTPException(403, OWNER_ONLY)
    if current is Role.owner and new is not Role.owner and owners <= 1:
        return HTTPException(409, LAST_OWNER)
    return None


def permissions_of(role: Role) -> list[Permission]:
    """The permissions ``role`` holds, in the table's order."""
    return [permission for permission in Permission if permission in ROLE_PERMISSIONS[role]]


# --- queries -----------------------------------------------------------------------------


async def _member(
    session: DbSession, org_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Membership, User]:
    row = (
        await session.exec(
            select(Membership, User)
            .join(User, col(User.id) == col(Membership.user_id))
            .where(col(Membership.organization_id) == org_id, col(Membership.user_id) == user_id)
        )
    ).first()
    if row is None:
        raise HTTPException(404, MEMBER_NOT_FOUND)
    return row


async def _owner_count(session: DbSession, org_id: uuid.UUID) -> int:
    # FOR UPDATE (PostgreSQL) locks the owner rows until commit, so two owners demoting each
    # other at once cannot both see "two owners". SQLite ignores it but serialises writers.
    owners = await session.exec(
        select(Membership.id)
        .where(col(Membership.organization_id) == org_id, col(Membership.role) == Role.owner)
        .with_for_update()
    )
    return len(owners.all())


async def _check_change(
    session: DbSession, org_id: uuid.UUID, actor: Role, current: Role | None, new: Role | None
) -> None:
    owners = await _owner_count(session, org_id) if current is Role.owner else 0
    error = role_change_error(actor, current, new, owners)
    if error is not None:
        raise error


def _member_public(membership: Membership, user: User) -> MemberPublic:
    return MemberPublic(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        joined_at=membership.created_at,
    )


# --- organizations -----------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationPublic,
    summary="Create an organization (the caller becomes its owner)",
    responses=problem_responses(401, 409, 422),
)
async def create_organization(
    body: OrganizationCreateRequest, user: CurrentUser, session: DbSession
) -> Organization:
    """Create an organization with the caller as its only owner."""
    taken = await session.exec(select(Organization.id).where(col(Organization.slug) == body.slug))
    if taken.first() is not None:
        raise HTTPException(409, SLUG_TAKEN)
    organization = Organization(name=body.name, slug=body.slug)
    session.add(organization)
    try:
        # Flushed on its own: the membership's foreign key needs the row, and only this
        # insert can hit the unique slug.
        await session.flush()
    except IntegrityError as exc:  # lost a race for the slug
        await session.rollback()
        raise HTTPException(409, SLUG_TAKEN) from exc
    session.add(Membership(user_id=user.id, organization_id=organization.id, role=Role.owner))
    await session.commit()
    return organization


@router.get(
    "",
    response_model=list[OrganizationWithRole],
    summary="List the caller's organizations",
    responses=problem_responses(401, 422),
)
async def list_organizations(
    user: CurrentUser, session: DbSession, limit: Limit = 50, offset: Offset = 0
) -> list[OrganizationWithRole]:
    """The organizations the caller belongs to, with the caller's role, ordered by name."""
    rows = await session.exec(
        select(Organization, Membership.role)
        .join(Membership, col(Membership.organization_id) == col(Organization.id))
        .where(col(Membership.user_id) == user.id)
        # id breaks ties between equal names so pages never overlap.
        .order_by(col(Organization.name), col(Organization.id))
        .limit(limit)
        .offset(offset)
    )
    return [
        OrganizationWithRole.model_validate(organization, update={"role": role})
        for organization, role in rows.all()
    ]


@router.get(
    "/{org_id}",
    response_model=OrganizationDetail,
    summary="Get an organization with the caller's role and permissions",
    responses=problem_responses(401, 404, 422),
)
async def get_organization(access: CanView) -> OrganizationDetail:
    """The organization, the caller's role and the permissions that role holds."""
    return OrganizationDetail.model_validate(
        access.organization,
        update={"role": access.role, "permissions": permissions_of(access.role)},
    )


@router.patch(
    "/{org_id}",
    response_model=OrganizationPublic,
    summary="Rename an organization or change its retention",
    responses=problem_responses(401, 403, 404, 422),
)
async def rename_organization(
    body: OrganizationRenameRequest, access: CanManageOrganization, session: DbSession
) -> Organization:
    """Change the organization's display name and/or its retention (owners only)."""
    organization = access.organization
    if body.name is not None:
        organization.name = body.name
    if body.retention_days is not None:
        organization.retention_days = body.retention_days
    session.add(organization)
    await session.commit()
    return organization


@router.delete(
    "/{org_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an organization and everything it owns",
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def delete_organization(
    access: CanManageOrganization,
    session: DbSession,
    objects: ObjectsDep,
    analytics: AnalyticsDep,
    client: TemporalDep,
) -> None:
    """Delete the organization and all it owns: rows (the database cascades to members,
    devices, matches and uploads), stored objects under ``orgs/{org}/`` and analytics rows.

    Refused (409) while any of its matches is being processed: cancel those first.
    """
    organization_id = access.organization_id
    matches = list(
        (
            await session.exec(select(Match).where(col(Match.organization_id) == organization_id))
        ).all()
    )
    try:
        running = [match.title for match in matches if await workflow_running(client, match)]
    except RPCError as exc:
        raise HTTPException(503, "The processing service is unavailable; try again.") from exc
    if running:
        raise HTTPException(
            409, f"{len(running)} match(es) are being processed; cancel them first: {running[:5]}"
        )
    data = await gather_stored_data(session, organization_id, matches, [f"orgs/{organization_id}/"])
    await session.delete(access.organization)
    await session.commit()
    await purge_stored_data(objects, analytics, data)


# --- members -----------------------------------------------------------------------------


@router.get(
    "/{org_id}/members",
    response_model=list[MemberPublic],
    summary="List an organization's members",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_members(
    access: CanManageMembers, session: DbSession, limit: Limit = 100, offset: Offset = 0
) -> list[MemberPublic]:
    """The members with their email, name and role, ordered by email."""
    rows = await session.exec(
        select(Membership, User)
        .join(User, col(User.id) == col(Membership.user_id))
        .where(col(Membership.organization_id) == access.organization_id)
        .order_by(col(User.email))
        .limit(limit)
        .offset(offset)
    )
    return [_member_public(membership, user) for membership, user in rows.all()]


@router.post(
    "/{org_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberPublic,
    summary="Add an existing account as a member",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_member(
    body: MemberAddRequest, access: CanManageMembers, session: DbSession
) -> MemberPublic:
    """Add the account with ``email``; only an owner may add another owner.

    The account must have verified its address: otherwise whoever registered the address
    first (not necessarily its owner) would receive the membership.
    """
    await _check_change(session, access.organization_id, access.role, None, body.role)
    user = (await session.exec(select(User).where(col(User.email) == body.email))).first()
    if user is None:
        raise HTTPException(404, NO_ACCOUNT)
    if user.email_verified_at is None:
        raise HTTPException(409, "This account has not verified its email address yet.")
    existing = await session.exec(
        select(Membership.id).where(
            col(Membership.organization_id) == access.organization_id,
            col(Membership.user_id) == user.id,
        )
    )
    if existing.first() is not None:
        raise HTTPException(409, ALREADY_MEMBER)
    membership = Membership(user_id=user.id, organization_id=access.organization_id, role=body.role)
    session.add(membership)
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent request added the same account
        await session.rollback()
        raise HTTPException(409, ALREADY_MEMBER) from exc
    return _member_public(membership, user)


@router.patch(
    "/{org_id}/members/{user_id}",
    response_model=MemberPublic,
    summary="Change a member's role",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_member_role(
    user_id: uuid.UUID, body: MemberRoleRequest, access: CanManageMembers, session: DbSession
) -> MemberPublic:
    """Set a member's role; owner changes are for owners, and the last owner stays owner."""
    membership, user = await _member(session, access.organization_id, user_id)
    await _check_change(session, access.organization_id, access.role, membership.role, body.role)
    membership.role = body.role
    session.add(membership)
    await session.commit()
    return _member_public(membership, user)


@router.delete(
    "/{org_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member, or leave the organization",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def remove_member(user_id: uuid.UUID, access: OrgMember, session: DbSession) -> None:
    """Remove a member (manage_members), or remove yourself (any member: leaving)."""
    # Checked before looking the target up, so a member without the permission learns
    # nothing about who else belongs to the organization.
    if user_id != access.user.id and not access.can(Permission.manage_members):
        raise HTTPException(
            403, f"Your role ({access.role.value}) does not allow {Permission.manage_members}."
        )
    membership, _ = await _member(session, access.organization_id, user_id)
    await _check_change(session, access.organization_id, access.role, membership.role, None)
    await session.delete(membership)
    await session.commit()
