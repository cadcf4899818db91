"""Devices: provisioning codes, registration of an edge box, the registry and revocation.

An operator (``manage_devices``) creates a one-time provisioning code and types it into the
edge box; the box calls ``POST /devices/register`` with the code, a name and its Ed25519 public
key, and from then on authenticates every request with a token signed by its private key
(`api.security.device_auth`). Revoking a device refuses its very next token.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from nacl.bindings import crypto_core_ed25519_is_valid_point
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select, update

from api.deps import DbSession
from api.openapi import problem_responses
from api.paging import Offset
from api.security.device_auth import CurrentDevice
from api.security.tenancy import CanManageDevices, not_found
from polyvision.device_tokens import b64url, b64url_decode
from polyvision.storage.metadata.models import (
    Device,
    DevicePublic,
    DeviceStatus,
    ProvisioningCode,
    ProvisioningCodePublic,
    utcnow,
)

router = APIRouter(tags=["devices"])

DEFAULT_CODE_TTL_S = 3600
MIN_CODE_TTL_S = 60
MAX_CODE_TTL_S = 7 * 24 * 3600
# 24 random bytes: 192 bits, far beyond guessing through an unauthenticated endpoint.
CODE_BYTES = 24
# One detail for unknown, used and expired codes: the answer must not tell them apart.
INVALID_CODE = "The provisioning code is invalid, expired or already used."
DEVICE_NOT_FOUND = "Device not found."


def hash_code(code: str) -> str:
    """The SHA-256 (hex) under which a provisioning code is stored.

    A plain hash is enough (no salt, no slow KDF): the code is 192 random bits, not a password.
    """
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def new_code() -> str:
    """A fresh one-time provisioning code (URL-safe text)."""
    return secrets.token_urlsafe(CODE_BYTES)


def parse_public_key(text: str) -> str:
    """Validate an Ed25519 public key given as 32 raw bytes in base64url without padding.

    Returns:
        ``text`` unchanged when valid.

    Raises:
        ValueError: not canonical base64url, not 32 bytes, or not a usable curve point.
    """
    try:
        raw = b64url_decode(text)
    except ValueError as exc:
        raise ValueError("public_key must be base64url without padding") from exc
    # The round trip refuses padding, stray characters and non-canonical trailing bits, so
    # one key has exactly one spelling and the unique column really means one device per key.
    if len(raw) != 32 or b64url(raw) != text:
        raise ValueError("public_key must be 32 raw bytes, base64url without padding")
    # Refuses non-canonical encodings and small-order points, for which a signature would
    # not bind the holder of a private key.
    if not crypto_core_ed25519_is_valid_point(raw):
        raise ValueError("public_key is not a valid Ed25519 public key")
    return text


class CodeState(StrEnum):
    """Where a provisioning code stands."""

    pending = "pending"
    used = "used"
    expired = "expired"


def code_state(code: ProvisioningCode, now: datetime) -> CodeState:
    """``used`` once a device registered with it, else ``expired`` past its expiry."""
    if code.used_at is not None:
        return CodeState.used
    if code.expires_at <= now:
        return CodeState.expired
    return CodeState.pending


# --- request and response bodies ---------------------------------------------------------


class ProvisioningCodeCreate(BaseModel):
    ttl_s: StrictInt = Field(default=DEFAULT_CODE_TTL_S, ge=MIN_CODE_TTL_S, le=MAX_CODE_TTL_S)

    model_config = ConfigDict(json_schema_extra={"examples": [{"ttl_s": 3600}]})


class ProvisioningCodeIssued(BaseModel):
    """A new code; ``code`` is shown here once and never again."""

    id: uuid.UUID
    code: str
    expires_at: datetime


class ProvisioningCodeListed(ProvisioningCodePublic):
    state: CodeState


PublicKey = Annotated[str, Field(min_length=43, max_length=43), AfterValidator(parse_public_key)]


class DeviceRegister(BaseModel):
    code: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    public_key: PublicKey

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "q9Zx3Lw0bY7uTq2mF1sVd8kN4pR6eH5c",
                    "name": "Pitch 1 camera rig",
                    "public_key": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                }
            ]
        }
    )


class DeviceRegistered(BaseModel):
    device_id: uuid.UUID
    organization_id: uuid.UUID
    name: str


class DeviceRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "North stand rig"}]})


# --- provisioning ------------------------------------------------------------------------


@router.post(
    "/orgs/{org_id}/devices/provisioning-codes",
    status_code=201,
    response_model=ProvisioningCodeIssued,
    summary="Create a one-time provisioning code",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_provisioning_code(
    body: ProvisioningCodeCreate, access: CanManageDevices, session: DbSession
) -> ProvisioningCodeIssued:
    """A code an edge box registers with, once, before ``ttl_s`` runs out."""
    code = new_code()
    row = ProvisioningCode(
        organization_id=access.organization_id,
        code_hash=hash_code(code),
        expires_at=utcnow() + timedelta(seconds=body.ttl_s),
    )
    session.add(row)
    await session.commit()
    return ProvisioningCodeIssued(id=row.id, code=code, expires_at=row.expires_at)


@router.get(
    "/orgs/{org_id}/devices/provisioning-codes",
    response_model=list[ProvisioningCodeListed],
    summary="List provisioning codes (never the codes themselves)",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_provisioning_codes(
    access: CanManageDevices,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[ProvisioningCodeListed]:
    """The organization's codes, newest first, each pending, used or expired."""
    rows = await session.exec(
        select(ProvisioningCode)
        .where(col(ProvisioningCode.organization_id) == access.organization_id)
        .order_by(col(ProvisioningCode.created_at).desc(), col(ProvisioningCode.id))
        .limit(limit)
        .offset(offset)
    )
    now = utcnow()
    return [
        ProvisioningCodeListed.model_validate(row, update={"state": code_state(row, now)})
        for row in rows.all()
    ]


@router.post(
    "/devices/register",
    status_code=201,
    response_model=DeviceRegistered,
    summary="Register an edge box with a provisioning code",
    responses=problem_responses(401, 409, 422),
)
async def register_device(body: DeviceRegister, session: DbSession) -> DeviceRegistered:
    """Consume the code and record the device's public key in the code's organization.

    No user authentication: the code is the credential. Unknown, used and expired codes get
    the same 401.
    """
    now = utcnow()
    # One conditional UPDATE consumes the code: of two concurrent registrations with the same
    # code the database lets exactly one match the row (the other sees used_at set, or waits
    # for the write lock and then does). No read precedes it in this transaction, so SQLite
    # takes the write lock at this statement instead of failing on a stale snapshot.
    consumed = await session.exec(
        update(ProvisioningCode)
        .where(
            col(ProvisioningCode.code_hash) == hash_code(body.code),
            col(ProvisioningCode.used_at).is_(None),
            col(ProvisioningCode.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(ProvisioningCode.id), col(ProvisioningCode.organization_id))
    )
    row = consumed.first()
    if row is None:
        await session.rollback()
        raise HTTPException(401, INVALID_CODE, headers={"WWW-Authenticate": "ProvisioningCode"})
    code_id, organization_id = row
    device = Device(organization_id=organization_id, name=body.name, public_key=body.public_key)
    session.add(device)
    try:
        await session.flush()
    except IntegrityError as exc:
        # The unique public key; the rollback also gives the code back for a retry.
        await session.rollback()
        raise HTTPException(409, "This public key is already registered.") from exc
    await session.exec(
        update(ProvisioningCode)
        .where(col(ProvisioningCode.id) == code_id)
        .values(device_id=device.id)
    )
    await session.commit()
    return DeviceRegistered(device_id=device.id, organization_id=organization_id, name=device.name)


@router.get(
    "/devices/me",
    response_model=DevicePublic,
    summary="The calling device's own registry entry",
    responses=problem_responses(401),
)
async def read_own_device(device: CurrentDevice) -> Device:
    """What the API knows about the device whose token signed this request."""
    return device


# --- registry ----------------------------------------------------------------------------


async def _org_device(
    session: DbSession, organization_id: uuid.UUID, device_id: uuid.UUID
) -> Device:
    device = (
        await session.exec(
            select(Device).where(
                col(Device.id) == device_id, col(Device.organization_id) == organization_id
            )
        )
    ).first()
    if device is None:
        raise not_found(DEVICE_NOT_FOUND)
    return device


@router.get(
    "/orgs/{org_id}/devices",
    response_model=list[DevicePublic],
    summary="List the organization's devices",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_devices(
    access: CanManageDevices,
    session: DbSession,
    status: DeviceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[Device]:
    """Devices by provisioning time, newest first; ``status`` filters active or revoked."""
    query = select(Device).where(col(Device.organization_id) == access.organization_id)
    if status is not None:
        query = query.where(col(Device.status) == status)
    query = query.order_by(col(Device.provisioned_at).desc(), col(Device.id))
    rows = await session.exec(query.limit(limit).offset(offset))
    return list(rows.all())


@router.get(
    "/orgs/{org_id}/devices/{device_id}",
    response_model=DevicePublic,
    summary="Read one device",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_device(device_id: uuid.UUID, access: CanManageDevices, session: DbSession) -> Device:
    """One device of the organization; another organization's device is 404."""
    return await _org_device(session, access.organization_id, device_id)


@router.patch(
    "/orgs/{org_id}/devices/{device_id}",
    response_model=DevicePublic,
    summary="Rename a device",
    responses=problem_responses(401, 403, 404, 422),
)
async def rename_device(
    device_id: uuid.UUID, body: DeviceRename, access: CanManageDevices, session: DbSession
) -> Device:
    """Change the display name; the key and status stay as they are."""
    device = await _org_device(session, access.organization_id, device_id)
    device.name = body.name
    session.add(device)
    await session.commit()
    return device


@router.post(
    "/orgs/{org_id}/devices/{device_id}/revoke",
    response_model=DevicePublic,
    summary="Revoke a device",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_device(
    device_id: uuid.UUID, access: CanManageDevices, session: DbSession
) -> Device:
    """Refuse every further token of the device; revoking again changes nothing.

    Token verification reads the device row on each request, so the next request fails.
    """
    device = await _org_device(session, access.organization_id, device_id)
    if device.status is not DeviceStatus.revoked:
        device.status = DeviceStatus.revoked
        device.revoked_at = utcnow()
        session.add(device)
        await session.commit()
    return device
