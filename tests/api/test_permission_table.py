"""One test per cell of the permission table: every role against every permission.

Each permission is exercised through one representative endpoint. A role that holds the
permission gets that endpoint's success answer (or, for reprocess on a match that never
started, the 409 that comes after the permission check); a role that does not gets 403; a
member of another organization gets 404 whatever their role there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.security import permissions as permissions_module
from api.security.permissions import ROLE_PERMISSIONS, Permission
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from tests.api.factories import Factory, TestOrg
from tests.api.test_uploads import open_body

# The table as the product promises it, written out here rather than read from the code under
# test: granting a permission by mistake in `api.security.permissions` fails these tests.
EXPECTED: dict[Role, set[str]] = {
    Role.owner: {
        "view",
        "read_analytics",
        "edit_catalog",
        "upload",
        "reprocess",
        "assign_sides",
        "manage_devices",
        "manage_members",
        "manage_organization",
    },
    Role.admin: {
        "view",
        "read_analytics",
        "edit_catalog",
        "upload",
        "reprocess",
        "assign_sides",
        "manage_devices",
        "manage_members",
    },
    Role.analyst: {"view", "read_analytics", "edit_catalog", "upload"},
    Role.viewer: {"view"},
}


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # formatted with org and match
    allowed_status: int
    body: dict[str, Any] | None = None


def _probe(permission: Permission) -> Probe:
    unique = uuid.uuid4().hex[:8]
    return {
        Permission.view: Probe("GET", "/orgs/{org}/matches", 200),
        Permission.read_analytics: Probe(
            "GET", "/orgs/{org}/matches/{match}/analytics/players", 200
        ),
        Permission.edit_catalog: Probe("POST", "/orgs/{org}/teams", 201, {"name": f"T {unique}"}),
        Permission.upload: Probe(
            "POST", "/orgs/{org}/uploads", 201, open_body(b"left" * 10, b"right" * 10)
        ),
        # The match never started: past the permission check the answer is 409.
        Permission.reprocess: Probe("POST", "/orgs/{org}/matches/{match}/processing/cancel", 409),
        Permission.assign_sides: Probe(
            "PATCH", "/orgs/{org}/matches/{match}/sides", 200, {"teams_swapped": True}
        ),
        Permission.manage_devices: Probe(
            "POST", "/orgs/{org}/devices/provisioning-codes", 201, {"ttl_s": 600}
        ),
        Permission.manage_members: Probe("GET", "/orgs/{org}/members", 200),
        Permission.manage_organization: Probe(
            "PATCH", "/orgs/{org}", 200, {"name": f"Renamed {unique}"}
        ),
    }[permission]


def test_the_documented_table_is_the_enforced_table() -> None:
    """The table in `api.security.permissions`' docstring says what the code enforces."""
    assert permissions_module.__doc__ is not None
    documented: dict[Role, set[str]] = {role: set() for role in Role}
    rows = [line for line in permissions_module.__doc__.splitlines() if line.startswith("| ")]
    header, *body = rows
    roles = [Role(cell.strip()) for cell in header.strip("|").split("|")[1:]]
    for row in body:
        first, *marks = (cell.strip() for cell in row.strip("|").split("|"))
        for role, mark in zip(roles, marks, strict=True):
            if mark == "x":
                documented[role].add(first.split()[0])
    enforced = {
        role: {permission.value for permission in granted}
        for role, granted in ROLE_PERMISSIONS.items()
    }
    assert documented == enforced == EXPECTED


async def _ready_match(app: FastAPI, org: TestOrg) -> uuid.UUID:
    match = Match(
        organization_id=org.id,
        title="Probe match",
        status=MatchStatus.ready,
        revision=1,
        published_revision=1,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    return match.id


async def _call(
    client: httpx.AsyncClient,
    probe: Probe,
    org: uuid.UUID,
    match: uuid.UUID,
    headers: dict[str, str],
) -> httpx.Response:
    path = probe.path.format(org=org, match=match)
    return await client.request(probe.method, path, json=probe.body, headers=headers)


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
async def test_permission_table_cell(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    role: Role,
    permission: Permission,
) -> None:
    org = await factory.org(roles=(role,))
    match = await _ready_match(app, org)
    probe = _probe(permission)
    response = await _call(client, probe, org.id, match, org.member(role).headers)
    if permission.value in EXPECTED[role]:
        assert response.status_code == probe.allowed_status, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert permission.value in response.json()["detail"]


@pytest.mark.parametrize("permission", list(Permission))
async def test_an_owner_elsewhere_gets_404(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, permission: Permission
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _ready_match(app, org)
    intruder = await factory.org(roles=(Role.owner,))
    probe = _probe(permission)
    response = await _call(client, probe, org.id, match, intruder.member(Role.owner).headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
