"""The shared fixtures work: a member's token authenticates, a device token verifies once."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from api.security.device_auth import InvalidDeviceToken, authenticate_device
from polyvision.storage.metadata.models import Role
from tests.api.factories import Factory


async def test_device_token_is_accepted_once(app: FastAPI, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    token = device.token()
    async with app.state.sessions() as session:
        assert (await authenticate_device(session, token)).id == device.id
    async with app.state.sessions() as session:
        with pytest.raises(InvalidDeviceToken, match="already used"):
            await authenticate_device(session, token)
