"""Organizations, members and devices created straight in the metadata store for API tests.

Routers under test are reached through HTTP; only the setup around them is written directly,
with the same models the API uses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI
from nacl.signing import SigningKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from polyvision.device_tokens import mint_device_token, public_key_text
from polyvision.storage.metadata.models import (
    Device,
    Membership,
    Organization,
    Role,
    User,
    utcnow,
)


@dataclass(frozen=True)
class TestMember:
    __test__ = False  # a fixture type, not a test class

    user_id: uuid.UUID
    email: str
    role: Role
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass(frozen=True)
class TestDevice:
    __test__ = False  # a fixture type, not a test class

    id: uuid.UUID
    organization_id: uuid.UUID
    signing_key: SigningKey

    def token(self) -> str:
        """A fresh single-use token."""
        return mint_device_token(self.signing_key, self.id)

    @property
    def headers(self) -> dict[str, str]:
        """Headers with a fresh token: every access to this property mints a new one."""
        return {"Authorization": f"Bearer {self.token()}"}


@dataclass
class TestOrg:
    __test__ = False  # a fixture type, not a test class

    id: uuid.UUID
    slug: str
    members: dict[Role, TestMember] = field(default_factory=dict)

    def member(self, role: Role) -> TestMember:
        return self.members[role]


class Factory:
    """Creates tenants for one test against the app's own database and key ring."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._sessions: async_sessionmaker[AsyncSession] = app.state.sessions

    async def user(self, email: str | None = None, *, verified: bool = True) -> User:
        """An account that cannot log in; ``verified``: its email address is verified."""
        user = User(
            email=email or f"user-{uuid.uuid4().hex[:10]}@example.com",
            password_hash="not-a-login-account",
            email_verified_at=utcnow() if verified else None,
        )
        async with self._sessions() as session:
            session.add(user)
            await session.commit()
            await session.refresh(user)
        return user

    def access_token(self, user_id: uuid.UUID) -> str:
        token: str = self._app.state.auth.access.issue(user_id)
        return token

    async def org(self, roles: tuple[Role, ...] = tuple(Role)) -> TestOrg:
        """An organization with one member per role in ``roles``."""
        slug = f"org-{uuid.uuid4().hex[:10]}"
        organization = Organization(name=slug.title(), slug=slug)
        async with self._sessions() as session:
            session.add(organization)
            await session.commit()
        result = TestOrg(id=organization.id, slug=slug)
        for role in roles:
            user = await self.user()
            await self.add_member(organization.id, user.id, role)
            result.members[role] = TestMember(
                user_id=user.id,
                email=user.email,
                role=role,
                access_token=self.access_token(user.id),
            )
        return result

    async def add_member(self, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
        async with self._sessions() as session:
            session.add(Membership(user_id=user_id, organization_id=org_id, role=role))
            await session.commit()

    async def device(self, org_id: uuid.UUID, name: str = "edge-box") -> TestDevice:
        """A provisioned, active device with a fresh key pair."""
        key = SigningKey.generate()
        device = Device(organization_id=org_id, name=name, public_key=public_key_text(key))
        async with self._sessions() as session:
            session.add(device)
            await session.commit()
        return TestDevice(id=device.id, organization_id=org_id, signing_key=key)
