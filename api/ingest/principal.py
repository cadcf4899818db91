"""Who is uploading: an edge box (device token) or a member with the `upload` permission."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import col, select

from api.deps import DbSession
from api.security import get_auth, get_current_user, unauthorized
from api.security.device_auth import (
    InvalidDeviceToken,
    authenticate_device,
    bearer_token,
    device_unauthorized,
    is_device_token,
)
from api.security.permissions import Permission, allows
from api.security.tenancy import not_found
from polyvision.storage.metadata.models import Device, Membership, User

SESSION_NOT_FOUND = "Upload session not found."


@dataclass(frozen=True)
class Uploader:
    """The authenticated caller of an upload route: exactly one of `device` and `user`."""

    device: Device | None = None
    user: User | None = None

    @property
    def source_name(self) -> str | None:
        """What a default match title names as the recording's source."""
        if self.device is not None:
            return self.device.name
        return self.user.full_name if self.user is not None else None


async def get_uploader(request: Request, session: DbSession) -> Uploader:
    """Resolve the bearer token: a device token (by its header) or a user access token.

    Raises:
        HTTPException: 401 for a missing, invalid, expired or replayed token.
    """
    token = bearer_token(request)
    if token is None:
        raise unauthorized("Authentication required.", error=None)
    if is_device_token(token):
        try:
            return Uploader(device=await authenticate_device(session, token))
        except InvalidDeviceToken as exc:
            raise device_unauthorized() from exc
    return Uploader(user=await get_current_user(request, get_auth(request), session))


CurrentUploader = Annotated[Uploader, Depends(get_uploader)]


async def authorize(uploader: Uploader, organization_id: uuid.UUID, session: DbSession) -> None:
    """Allow the uploader to act on a session of `organization_id`.

    A device acts for its own organization; a user must be a member holding `upload`.

    Raises:
        HTTPException: 404 outside the caller's organization (the same answer as a missing
            session), 403 for a member whose role does not allow uploads.
    """
    if uploader.device is not None:
        if uploader.device.organization_id != organization_id:
            raise not_found(SESSION_NOT_FOUND)
        return
    assert uploader.user is not None
    membership = (
        await session.exec(
            select(Membership).where(
                col(Membership.organization_id) == organization_id,
                col(Membership.user_id) == uploader.user.id,
            )
        )
    ).first()
    if membership is None:
        raise not_found(SESSION_NOT_FOUND)
    if not allows(membership.role, Permission.upload):
        raise HTTPException(
            403, f"Your role ({membership.role.value}) does not allow {Permission.upload.value}."
        )
