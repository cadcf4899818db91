"""The caller's access to one organization, resolved from the ``org_id`` path parameter.

Every tenant route is mounted under ``/orgs/{org_id}`` and depends on `require(permission)`.
An organization the caller is not a member of answers 404 exactly like one that does not exist
(never 403, never data); a member whose role lacks the permission gets 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from sqlmodel import col, select

from api.deps import DbSession
from api.security import CurrentUser
from api.security.permissions import Permission, allows
from polyvision.storage.metadata.models import Membership, Organization, Role, User

NOT_FOUND = "Organization not found."


@dataclass(frozen=True)
class OrgAccess:
    """The authenticated user, the organization of the path, and the user's role in it."""

    user: User
    organization: Organization
    role: Role

    @property
    def organization_id(self) -> uuid.UUID:
        return self.organization.id

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def not_found(what: str = NOT_FOUND) -> HTTPException:
    """The one answer for "absent" and "not yours"."""
    return HTTPException(404, what)


async def get_org_access(org_id: uuid.UUID, user: CurrentUser, session: DbSession) -> OrgAccess:
    row = (
        await session.exec(
            select(Organization, Membership)
            .join(Membership, col(Membership.organization_id) == col(Organization.id))
            .where(col(Organization.id) == org_id, col(Membership.user_id) == user.id)
        )
    ).first()
    if row is None:
        raise not_found()
    organization, membership = row
    return OrgAccess(user=user, organization=organization, role=membership.role)


OrgMember = Annotated[OrgAccess, Depends(get_org_access)]


def require(permission: Permission) -> Callable[[OrgAccess], Awaitable[OrgAccess]]:
    """A dependency: the caller's `OrgAccess`, or 404 (not a member) / 403 (role too low)."""

    async def dependency(access: OrgMember) -> OrgAccess:
        if not access.can(permission):
            raise HTTPException(
                403, f"Your role ({access.role.value}) does not allow {permission.value}."
            )
        return access

    dependency.__name__ = f"require_{permission.value}"
    return dependency


CanView = Annotated[OrgAccess, Depends(require(Permission.view))]
CanReadAnalytics = Annotated[OrgAccess, Depends(require(Permission.read_analytics))]
CanEditCatalog = Annotated[OrgAccess, Depends(require(Permission.edit_catalog))]
CanUpload = Annotated[OrgAccess, Depends(require(Permission.upload))]
CanReprocess = Annotated[OrgAccess, Depends(require(Permission.reprocess))]
CanAssignSides = Annotated[OrgAccess, Depends(require(Permission.assign_sides))]
CanManageDevices = Annotated[OrgAccess, Depends(require(Permission.manage_devices))]
CanManageMembers = Annotated[OrgAccess, Depends(require(Permission.manage_members))]
CanManageOrganization = Annotated[OrgAccess, Depends(require(Permission.manage_organization))]
