"""Device provisioning, the registry and revocation, through HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nacl.signing import SigningKey
from sqlmodel import col, select, update

from api.routes.devices import INVALID_CODE, hash_code
from polyvision.device_tokens import b64url, mint_device_token, public_key_text
from polyvision.storage.metadata.models import Device, ProvisioningCode, Role, utcnow
from tests.api import factories
from tests.api.factories import Factory

PROBLEM = "application/problem+json"


async def create_code(client: httpx.AsyncClient, org: factories.TestOrg, ttl_s: int = 3600) -> str:
    response = await client.post(
        f"/orgs/{org.id}/devices/provisioning-codes",
        json={"ttl_s": ttl_s},
        headers=org.member(Role.admin).headers,
    )
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


async def register(
    client: httpx.AsyncClient, code: str, key: SigningKey, name: str = "rig"
) -> httpx.Response:
    return await client.post(
        "/devices/register",
        json={"code": code, "name": name, "public_key": public_key_text(key)},
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- provisioning ------------------------------------------------------------------------


async def test_provisioning_flow(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner, Role.admin))
    created = await client.post(
        f"/orgs/{org.id}/devices/provisioning-codes",
        json={"ttl_s": 600},
        headers=org.member(Role.admin).headers,
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    assert len(issued["code"]) >= 32

    key = SigningKey.generate()
    registered = await register(client, issued["code"], key, name="Pitch 1 rig")
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["organization_id"] == str(org.id)
    assert body["name"] == "Pitch 1 rig"
    device_id = body["device_id"]

    me = await client.get(
        "/devices/me", headers={"Authorization": f"Bearer {mint_device_token(key, device_id)}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["id"] == device_id
    assert me.json()["status"] == "active"
    assert me.json()["public_key"] == public_key_text(key)

    # The list shows the code as used by this device, never the code itself.
    listed = await client.get(
        f"/orgs/{org.id}/devices/provisioning-codes", headers=org.member(Role.owner).headers
    )
    assert listed.status_code == 200
    [entry] = listed.json()
    assert entry["id"] == issued["id"]
    assert entry["state"] == "used"
    assert entry["device_id"] == device_id
    assert "code" not in entry and "code_hash" not in entry
    assert issued["code"] not in listed.text

    devices = await client.get(f"/orgs/{org.id}/devices", headers=org.member(Role.owner).headers)
    assert [device["id"] for device in devices.json()] == [device_id]


async def test_only_the_hash_of_a_code_is_stored(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org)
    async with app.state.sessions() as session:
        row = (await session.exec(select(ProvisioningCode))).one()
    assert row.code_hash == hash_code(code)
    assert code not in row.model_dump().values()


async def test_code_states_in_the_list(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    await create_code(client, org)
    await create_code(client, org)
    async with app.state.sessions() as session:
        first = (await session.exec(select(ProvisioningCode).limit(1))).one()
        await session.exec(
            update(ProvisioningCode)
            .where(col(ProvisioningCode.id) == first.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    listed = await client.get(
        f"/orgs/{org.id}/devices/provisioning-codes", headers=org.member(Role.admin).headers
    )
    states = {entry["id"]: entry["state"] for entry in listed.json()}
    assert states.pop(str(first.id)) == "expired"
    assert list(states.values()) == ["pending"]


@pytest.mark.parametrize("ttl_s", [59, 604801, "soon"])
async def test_code_ttl_is_bounded(
    client: httpx.AsyncClient, factory: Factory, ttl_s: object
) -> None:
    org = await factory.org(roles=(Role.admin,))
    response = await client.post(
        f"/orgs/{org.id}/devices/provisioning-codes",
        json={"ttl_s": ttl_s},
        headers=org.member(Role.admin).headers,
    )
    assert_problem(response, 422)


async def test_code_is_one_time(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org)
    assert (await register(client, code, SigningKey.generate())).status_code == 201
    second = await register(client, code, SigningKey.generate())
    body = assert_problem(second, 401)
    assert body["detail"] == INVALID_CODE
    assert "WWW-Authenticate" in second.headers


async def test_expired_code_is_refused(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org, ttl_s=60)
    async with app.state.sessions() as session:
        await session.exec(
            update(ProvisioningCode)
            .where(col(ProvisioningCode.code_hash) == hash_code(code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    body = assert_problem(await register(client, code, SigningKey.generate()), 401)
    assert body["detail"] == INVALID_CODE


async def test_wrong_code_gets_the_same_answer(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org)
    for wrong in (code[:-1] + ("A" if code[-1] != "A" else "B"), "nope", code.upper()):
        body = assert_problem(await register(client, wrong, SigningKey.generate()), 401)
        assert body["detail"] == INVALID_CODE
    # The wrong attempts did not burn the real code.
    assert (await register(client, code, SigningKey.generate())).status_code == 201


async def test_concurrent_registrations_with_one_code(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org)
    responses = await asyncio.gather(
        *(register(client, code, SigningKey.generate(), name=f"rig-{i}") for i in range(4))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 401, 401, 401], [r.text for r in responses]
    async with app.state.sessions() as session:
        devices = (await session.exec(select(Device))).all()
    assert len(devices) == 1


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "not-base64!",
        b64url(bytes(31)),  # 42 characters
        b64url(bytes(33)),  # 44 characters
        b64url(bytes(SigningKey.generate().verify_key)) + "=",  # padded
        b64url(bytes(32)),  # the identity point: small order, signs for anyone
        b64url(bytes([1]) + bytes(31)),  # small order point (0, 1)
        "A" * 42 + "B",  # non-canonical trailing bits of a 32-byte value
        "+" * 43,  # standard base64 alphabet, not base64url
    ],
)
async def test_invalid_public_key_is_422(
    client: httpx.AsyncClient, factory: Factory, public_key: str
) -> None:
    org = await factory.org(roles=(Role.admin,))
    code = await create_code(client, org)
    response = await client.post(
        "/devices/register", json={"code": code, "name": "rig", "public_key": public_key}
    )
    assert_problem(response, 422)
    # Validation runs before the code is consumed.
    assert (await register(client, code, SigningKey.generate())).status_code == 201


async def test_duplicate_public_key_is_409(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    other = await factory.org(roles=(Role.admin,))
    key = SigningKey.generate()
    assert (await register(client, await create_code(client, org), key)).status_code == 201
    code = await create_code(client, other)
    assert_problem(await register(client, code, key), 409)
    # The refused registration gave the code back.
    assert (await register(client, code, SigningKey.generate())).status_code == 201


# --- permissions and tenancy -------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.viewer, Role.analyst])
async def test_members_below_admin_cannot_manage_devices(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    org = await factory.org(roles=(role,))
    device = await factory.device(org.id)
    headers = org.member(role).headers
    base = f"/orgs/{org.id}/devices"
    attempts = [
        client.post(f"{base}/provisioning-codes", json={}, headers=headers),
        client.get(f"{base}/provisioning-codes", headers=headers),
        client.get(base, headers=headers),
        client.get(f"{base}/{device.id}", headers=headers),
        client.patch(f"{base}/{device.id}", json={"name": "x"}, headers=headers),
        client.post(f"{base}/{device.id}/revoke", headers=headers),
    ]
    for response in await asyncio.gather(*attempts):
        assert_problem(response, 403)


async def test_user_authentication_is_required(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    response = await client.post(f"/orgs/{org.id}/devices/provisioning-codes", json={})
    assert_problem(response, 401)


async def test_another_organizations_devices_are_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    mine = await factory.org(roles=(Role.owner,))
    theirs = await factory.org(roles=(Role.owner,))
    their_device = await factory.device(theirs.id)
    headers = mine.member(Role.owner).headers
    # Through my organization's path: their device does not exist for me.
    base = f"/orgs/{mine.id}/devices/{their_device.id}"
    for response in (
        await client.get(base, headers=headers),
        await client.patch(base, json={"name": "mine now"}, headers=headers),
        await client.post(f"{base}/revoke", headers=headers),
    ):
        assert assert_problem(response, 404)["detail"] == "Device not found."
    # Through their organization's path: I am not a member, so the organization is absent.
    for response in (
        await client.get(f"/orgs/{theirs.id}/devices", headers=headers),
        await client.get(f"/orgs/{theirs.id}/devices/{their_device.id}", headers=headers),
        await client.post(f"/orgs/{theirs.id}/devices/provisioning-codes", headers=headers),
    ):
        assert_problem(response, 404)
    # Nothing changed: their device still works and keeps its name.
    me = await client.get("/devices/me", headers=their_device.headers)
    assert me.status_code == 200
    assert me.json()["name"] == "edge-box"
    # And their device is not in my list.
    listed = await client.get(f"/orgs/{mine.id}/devices", headers=headers)
    assert listed.json() == []


async def test_unknown_device_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    response = await client.get(
        f"/orgs/{org.id}/devices/{uuid.uuid4()}", headers=org.member(Role.admin).headers
    )
    assert_problem(response, 404)


# --- registry ----------------------------------------------------------------------------


async def test_rename_and_read(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    device = await factory.device(org.id, name="old")
    headers = org.member(Role.admin).headers
    url = f"/orgs/{org.id}/devices/{device.id}"
    renamed = await client.patch(url, json={"name": "North stand rig"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "North stand rig"
    read = await client.get(url, headers=headers)
    assert read.json()["name"] == "North stand rig"
    assert_problem(await client.patch(url, json={"name": ""}, headers=headers), 422)


async def test_list_filters_by_status(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    kept = await factory.device(org.id, name="kept")
    gone = await factory.device(org.id, name="gone")
    headers = org.member(Role.admin).headers
    revoked = await client.post(f"/orgs/{org.id}/devices/{gone.id}/revoke", headers=headers)
    assert revoked.status_code == 200

    async def ids(query: str) -> set[str]:
        response = await client.get(f"/orgs/{org.id}/devices{query}", headers=headers)
        assert response.status_code == 200, response.text
        return {device["id"] for device in response.json()}

    assert await ids("") == {str(kept.id), str(gone.id)}
    assert await ids("?status=active") == {str(kept.id)}
    assert await ids("?status=revoked") == {str(gone.id)}
    assert_problem(await client.get(f"/orgs/{org.id}/devices?status=lost", headers=headers), 422)


async def test_revoke_refuses_the_next_token(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    device = await factory.device(org.id)
    assert (await client.get("/devices/me", headers=device.headers)).status_code == 200
    headers = org.member(Role.admin).headers
    url = f"/orgs/{org.id}/devices/{device.id}/revoke"

    first = await client.post(url, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "revoked"
    assert first.json()["revoked_at"] is not None

    refused = await client.get("/devices/me", headers=device.headers)
    assert_problem(refused, 401)
    assert "WWW-Authenticate" in refused.headers

    # Revoking again is harmless and keeps the original time.
    second = await client.post(url, headers=headers)
    assert second.status_code == 200
    assert second.json() == first.json()
