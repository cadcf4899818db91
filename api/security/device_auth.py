"""Authenticate an edge box by its short-lived EdDSA token (format: `polyvision.device_tokens`).

Verification takes the key from our device registry only (``kid`` must be a registered device
id; ``jwk``/``jku``/``x5u``/``x5c`` headers are refused), accepts EdDSA only, requires every
claim, bounds the lifetime to five minutes and the clock skew to 30 seconds, and records the
``jti`` until the token expires: a replayed token is refused, on every API replica, because
the jti is the primary key of ``device_token_uses``. A revoked device is refused at once: its
row is read on every request.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, HTTPException, Request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import DbSession
from polyvision.device_tokens import (
    ALGORITHM,
    AUDIENCE,
    CLOCK_SKEW_S,
    MAX_LIFETIME_S,
    TOKEN_TYPE,
    b64url_decode,
)
from polyvision.storage.metadata.models import Device, DeviceStatus, DeviceTokenUse

REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti"]
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
INVALID = "The device token is invalid, expired or already used."


class InvalidDeviceToken(Exception):
    """The token is malformed, not signed by a registered active device, or replayed."""


@dataclass(frozen=True)
class DeviceClaims:
    device_id: uuid.UUID
    jti: str
    expires_at: int


def is_device_token(token: str) -> bool:
    """Whether ``token`` claims to be a device token (by its header; nothing is verified)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False
    return header.get("typ") == TOKEN_TYPE


def _device_id_from_header(token: str) -> uuid.UUID:
    try:
        header: dict[str, Any] = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidDeviceToken("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidDeviceToken("algorithm not allowed")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidDeviceToken("not a device token")
    if FORBIDDEN_HEADERS & header.keys():
        raise InvalidDeviceToken("key-carrying headers are not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidDeviceToken("missing kid")
    try:
        return uuid.UUID(kid)
    except ValueError as exc:
        raise InvalidDeviceToken("unknown kid") from exc


def public_key_of(device: Device) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64url_decode(device.public_key))


def verify_signature_and_claims(
    token: str, device: Device, *, audience: str = AUDIENCE, now: float | None = None
) -> DeviceClaims:
    """Check signature and claims of a token whose ``kid`` named ``device`` (no replay check)."""
    current = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token,
            key=public_key_of(device),
            algorithms=[ALGORITHM],
            audience=audience,
            leeway=CLOCK_SKEW_S,
            # exp, nbf and iat are checked below against `current`, one clock for all three.
            options={
                "require": REQUIRED_CLAIMS,
                "verify_iat": False,
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidDeviceToken(str(exc)) from exc
    if claims["sub"] != str(device.id) or claims["iss"] != str(device.id):
        raise InvalidDeviceToken("subject is not the signing device")
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise InvalidDeviceToken("iat and exp must be numbers")
    if iat > current + CLOCK_SKEW_S:
        raise InvalidDeviceToken("issued in the future")
    if exp < current - CLOCK_SKEW_S:
        raise InvalidDeviceToken("expired")
    nbf = claims.get("nbf", iat)
    if not isinstance(nbf, int | float) or nbf > current + CLOCK_SKEW_S:
        raise InvalidDeviceToken("not yet valid")
    if exp - iat > MAX_LIFETIME_S:
        raise InvalidDeviceToken(f"lifetime over {MAX_LIFETIME_S} s")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise InvalidDeviceToken("jti must be a string of 8 to 64 characters")
    return DeviceClaims(device_id=device.id, jti=jti, expires_at=int(exp))


async def authenticate_device(
    session: AsyncSession, token: str, *, now: float | None = None
) -> Device:
    """The active device that signed ``token``; its ``jti`` is spent (committed) on success.

    Raises:
        InvalidDeviceToken: for every failure (the caller answers one generic 401).
    """
    device_id = _device_id_from_header(token)
    device = await session.get(Device, device_id)
    if device is None or device.status is not DeviceStatus.active:
        raise InvalidDeviceToken("unknown or revoked device")
    claims = verify_signature_and_claims(token, device, now=now)
    current = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    # Expired uses of this device are no longer needed to detect replays.
    await session.exec(
        delete(DeviceTokenUse).where(
            col(DeviceTokenUse.device_id) == device.id, col(DeviceTokenUse.expires_at) < current
        )
    )
    expires = datetime.fromtimestamp(claims.expires_at + CLOCK_SKEW_S, UTC)
    session.add(
        DeviceTokenUse(jti=f"{device.id}:{claims.jti}", device_id=device.id, expires_at=expires)
    )
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise InvalidDeviceToken("token already used") from exc
    await session.refresh(device)
    return device


def device_unauthorized(detail: str = INVALID) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def get_current_device(request: Request, session: DbSession) -> Device:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(
            401, "Device authentication required.", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return await authenticate_device(session, token)
    except InvalidDeviceToken as exc:
        raise device_unauthorized() from exc


CurrentDevice = Annotated[Device, Depends(get_current_device)]
