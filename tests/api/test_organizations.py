"""Organizations and memberships through HTTP: ownership, roles, tenancy and the owner rules."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select
from temporalio.client import Client

from api.problems import PROBLEM_MEDIA_TYPE
from api.routes.organizations import role_change_error
from polyvision.storage.metadata.models import (
    Device,
    Match,
    MatchStatus,
    Membership,
    Organization,
    Role,
    Upload,
)
from polyvision.storage.objects import UploadNotFound
from tests.api.factories import Factory
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput

if TYPE_CHECKING:
    # Imported for annotations only: pytest would try to collect a module-level `Test…` class.
    from tests.api.factories import TestOrg

LAST_OWNER = "An organization keeps at least one owner."
OWNER_ONLY = "Only an owner can grant the owner role or change or remove an owner."
ALL_PERMISSIONS = [
    "view",
    "read_analytics",
    "edit_catalog",
    "upload",
    "reprocess",
    "assign_sides",
    "manage_devices",
    "manage_members",
    "manage_organization",
]


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail


async def user_headers(
    factory: Factory, email: str | None = None
) -> tuple[uuid.UUID, dict[str, str]]:
    user = await factory.user(email)
    return user.id, {"Authorization": f"Bearer {factory.access_token(user.id)}"}


async def create_org(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, slug: str | None = None
) -> dict[str, Any]:
    slug = slug or f"org-{uuid.uuid4().hex[:10]}"
    response = await client.post("/orgs", json={"name": name, "slug": slug}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def role_of(client: httpx.AsyncClient, org: TestOrg, user_id: uuid.UUID) -> str:
    response = await client.get(f"/orgs/{org.id}/members", headers=org.member(Role.owner).headers)
    assert response.status_code == 200
    roles = {member["user_id"]: member["role"] for member in response.json()}
    return roles[str(user_id)]


# --- creating and listing ----------------------------------------------------------------


async def test_creator_becomes_owner(client: httpx.AsyncClient, factory: Factory) -> None:
    user_id, headers = await user_headers(factory)
    created = await create_org(client, headers, "FC Riverside", "fc-riverside")
    assert created["name"] == "FC Riverside"
    assert created["slug"] == "fc-riverside"
    assert set(created) == {"id", "name", "slug", "created_at", "retention_days"}
    assert created["retention_days"] == 90

    detail = await client.get(f"/orgs/{created['id']}", headers=headers)
    assert detail.status_code == 200
    assert detail.json()["role"] == "owner"
    assert detail.json()["permissions"] == ALL_PERMISSIONS

    members = await client.get(f"/orgs/{created['id']}/members", headers=headers)
    assert members.status_code == 200
    [member] = members.json()
    assert member["user_id"] == str(user_id)
    assert member["role"] == "owner"


async def test_slug_taken_is_a_conflict(client: httpx.AsyncClient, factory: Factory) -> None:
    _, first = await user_headers(factory)
    _, second = await user_headers(factory)
    await create_org(client, first, "One", "same-slug")
    response = await client.post("/orgs", json={"name": "Two", "slug": "same-slug"}, headers=second)
    assert_problem(response, 409, "This slug is already taken.")
    mine = await client.get("/orgs", headers=second)
    assert mine.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "No slug"},
        {"slug": "no-name"},
        {"name": "", "slug": "empty-name"},
        {"name": "Upper", "slug": "Upper-Case"},
        {"name": "Spaces", "slug": "has space"},
        {"name": "Dash", "slug": "-leading-dash"},
        {"name": "Long", "slug": "x" * 65},
    ],
)
async def test_create_validation_is_a_problem(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, str]
) -> None:
    _, headers = await user_headers(factory)
    response = await client.post("/orgs", json=body, headers=headers)
    assert_problem(response, 422, "The request is not valid.")
    assert response.json()["errors"]


async def test_list_shows_only_my_orgs_by_name_with_my_role(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user_id, headers = await user_headers(factory)
    charlie = await create_org(client, headers, "Charlie")
    alpha = await create_org(client, headers, "Alpha")
    joined = await factory.org(roles=(Role.owner,))  # named "Org-…", sorts after "Charlie"
    await factory.add_member(joined.id, user_id, Role.analyst)
    await factory.org()  # someone else's, never listed

    response = await client.get("/orgs", headers=headers)
    assert response.status_code == 200
    listed = [(org["id"], org["role"]) for org in response.json()]
    assert listed == [(alpha["id"], "owner"), (charlie["id"], "owner"), (str(joined.id), "analyst")]

    page = await client.get("/orgs", params={"limit": 1, "offset": 1}, headers=headers)
    assert [org["id"] for org in page.json()] == [charlie["id"]]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}])
async def test_list_rejects_bad_paging(
    client: httpx.AsyncClient, factory: Factory, params: dict[str, int]
) -> None:
    _, headers = await user_headers(factory)
    assert_problem(await client.get("/orgs", params=params, headers=headers), 422)


@pytest.mark.parametrize(
    ("role", "permissions"),
    [
        (Role.owner, ALL_PERMISSIONS),
        (Role.admin, ALL_PERMISSIONS[:-1]),
        (Role.analyst, ["view", "read_analytics", "edit_catalog", "upload"]),
        (Role.viewer, ["view"]),
    ],
)
async def test_detail_lists_my_role_and_permissions(
    client: httpx.AsyncClient, factory: Factory, role: Role, permissions: list[str]
) -> None:
    org = await factory.org()
    response = await client.get(f"/orgs/{org.id}", headers=org.member(role).headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(org.id)
    assert body["slug"] == org.slug
    assert body["role"] == role.value
    assert body["permissions"] == permissions


# --- authentication and tenancy ----------------------------------------------------------

_ANY_ID = "00000000-0000-4000-8000-000000000000"
_ENDPOINTS = [
    ("POST", "/orgs", {"name": "X", "slug": "x"}),
    ("GET", "/orgs", None),
    ("GET", f"/orgs/{_ANY_ID}", None),
    ("PATCH", f"/orgs/{_ANY_ID}", {"name": "X"}),
    ("DELETE", f"/orgs/{_ANY_ID}", None),
    ("GET", f"/orgs/{_ANY_ID}/members", None),
    ("POST", f"/orgs/{_ANY_ID}/members", {"email": "a@example.com", "role": "viewer"}),
    ("PATCH", f"/orgs/{_ANY_ID}/members/{_ANY_ID}", {"role": "viewer"}),
    ("DELETE", f"/orgs/{_ANY_ID}/members/{_ANY_ID}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), _ENDPOINTS)
async def test_unauthenticated_is_401(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body)
    assert_problem(response, 401, "Authentication required.")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bad_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/orgs", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "The access token is invalid or expired.")


@pytest.mark.parametrize(("method", "path", "body"), _ENDPOINTS[2:])
async def test_another_tenants_org_is_404(
    client: httpx.AsyncClient,
    factory: Factory,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    a = await factory.org()
    b = await factory.org(roles=(Role.owner,))
    target = a.member(Role.viewer).user_id
    path = path.replace(_ANY_ID, str(a.id), 1).replace(_ANY_ID, str(target))
    # The owner of B holds every permission in B and none in A: A does not exist for them.
    response = await client.request(method, path, json=body, headers=b.member(Role.owner).headers)
    assert_problem(response, 404, "Organization not found.")
    # Nothing changed in A.
    detail = await client.get(f"/orgs/{a.id}", headers=a.member(Role.owner).headers)
    assert detail.json()["name"] == a.slug.title()
    assert await role_of(client, a, target) == "viewer"


async def test_unknown_org_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    _, headers = await user_headers(factory)
    assert_problem(await client.get(f"/orgs/{uuid.uuid4()}", headers=headers), 404)


async def test_malformed_org_id_is_422(client: httpx.AsyncClient, factory: Factory) -> None:
    _, headers = await user_headers(factory)
    assert_problem(await client.get("/orgs/not-a-uuid", headers=headers), 422)


# --- what each role may do ---------------------------------------------------------------

# action -> the roles allowed to do it; the others get 403.
_ALLOWED: dict[str, set[Role]] = {
    "get": set(Role),
    "rename": {Role.owner},
    "delete": {Role.owner},
    "list_members": {Role.owner, Role.admin},
    "add_member": {Role.owner, Role.admin},
    "change_role": {Role.owner, Role.admin},
    "remove_member": {Role.owner, Role.admin},
}
_SUCCESS = {
    "get": 200,
    "rename": 200,
    "delete": 204,
    "list_members": 200,
    "add_member": 201,
    "change_role": 200,
    "remove_member": 204,
}


async def _act(
    client: httpx.AsyncClient, factory: Factory, org: TestOrg, action: str, role: Role
) -> httpx.Response:
    headers = org.member(role).headers
    base = f"/orgs/{org.id}"
    # A separate plain member as the target, so no owner rule is involved.
    target = await factory.user()
    if action in ("change_role", "remove_member"):
        await factory.add_member(org.id, target.id, Role.viewer)
    match action:
        case "get":
            return await client.get(base, headers=headers)
        case "rename":
            return await client.patch(base, json={"name": "Renamed"}, headers=headers)
        case "delete":
            return await client.delete(base, headers=headers)
        case "list_members":
            return await client.get(f"{base}/members", headers=headers)
        case "add_member":
            body = {"email": target.email, "role": "analyst"}
            return await client.post(f"{base}/members", json=body, headers=headers)
        case "change_role":
            path = f"{base}/members/{target.id}"
            return await client.patch(path, json={"role": "analyst"}, headers=headers)
        case "remove_member":
            return await client.delete(f"{base}/members/{target.id}", headers=headers)
    raise AssertionError(action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(_ALLOWED))
async def test_role_matrix(
    client: httpx.AsyncClient, factory: Factory, action: str, role: Role
) -> None:
    org = await factory.org()
    response = await _act(client, factory, org, action, role)
    if role in _ALLOWED[action]:
        assert response.status_code == _SUCCESS[action], response.text
    else:
        assert_problem(response, 403)
        assert role.value in response.json()["detail"]


async def test_rename_keeps_slug(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner,))
    headers = org.member(Role.owner).headers
    response = await client.patch(f"/orgs/{org.id}", json={"name": "New Name"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["name"] == "New Name"
    assert response.json()["slug"] == org.slug
    assert (await client.get(f"/orgs/{org.id}", headers=headers)).json()["name"] == "New Name"


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 201}, {"name": None}])
async def test_rename_validation_is_422(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, Any]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    response = await client.patch(
        f"/orgs/{org.id}", json=body, headers=org.member(Role.owner).headers
    )
    assert_problem(response, 422)


async def test_delete_cascades(client: httpx.AsyncClient, factory: Factory, app: FastAPI) -> None:
    org = await factory.org()
    await factory.device(org.id)
    kept = await factory.org(roles=(Role.owner,))
    response = await client.delete(f"/orgs/{org.id}", headers=org.member(Role.owner).headers)
    assert response.status_code == 204
    assert response.content == b""

    for role in Role:
        headers = org.member(role).headers
        assert_problem(await client.get(f"/orgs/{org.id}", headers=headers), 404)
        assert (await client.get("/orgs", headers=headers)).json() == []
    async with app.state.sessions() as session:
        assert await session.get(Organization, org.id) is None
        memberships = await session.exec(
            select(Membership).where(col(Membership.organization_id) == org.id)
        )
        assert memberships.all() == []
        devices = await session.exec(select(Device).where(col(Device.organization_id) == org.id))
        assert devices.all() == []
        assert await session.get(Organization, kept.id) is not None


async def test_delete_removes_stored_objects_analytics_and_open_uploads(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org(roles=(Role.owner,))
    kept = await factory.org(roles=(Role.owner,))
    objects = app.state.objects
    matches = {}
    for tenant in (org, kept):
        match = Match(organization_id=tenant.id, title="Final", status=MatchStatus.ready)
        async with app.state.sessions() as session:
            session.add(match)
            await session.commit()
        matches[tenant.id] = match
        await objects.put(f"orgs/{tenant.id}/matches/{match.id}/1/hls/master.m3u8", b"#EXTM3U")
        app.state.analytics.replace_slice(
            "player_stats",
            str(tenant.id),
            str(match.id),
            1,
            0,
            {
                "track_id": [1],
                "team": [0],
                "frames": [25],
                "distance_m": [10.0],
                "max_speed": [5.0],
                "sprints": [0],
            },
        )
    # An upload still open: its multipart parts must be freed.
    open_key = f"orgs/{org.id}/uploads/u1/left.mp4"
    upload_id = await objects.create_multipart(open_key)
    await objects.upload_part(open_key, upload_id, 1, b"partial")
    async with app.state.sessions() as session:
        session.add(
            Upload(
                organization_id=org.id,
                match_id=matches[org.id].id,
                left_size=7,
                right_size=7,
                left_sha256="a" * 64,
                right_sha256="b" * 64,
                left_frames=1,
                right_frames=1,
                left_key=open_key,
                left_upload_id=upload_id,
            )
        )
        await session.commit()

    response = await client.delete(f"/orgs/{org.id}", headers=org.member(Role.owner).headers)
    assert response.status_code == 204, response.text

    assert [info.key async for info in objects.list_prefix(f"orgs/{org.id}/")] == []
    with pytest.raises(UploadNotFound):
        await objects.list_parts(open_key, upload_id)
    assert await objects.exists(f"orgs/{kept.id}/matches/{matches[kept.id].id}/1/hls/master.m3u8")
    counts = {
        tenant: app.state.analytics.query_arrow(
            "SELECT count() AS n FROM player_stats WHERE organization_id = {org:String}",
            {"org": str(tenant)},
        )
        .column("n")[0]
        .as_py()
        for tenant in (org.id, kept.id)
    }
    assert counts == {org.id: 0, kept.id: 1}


async def test_delete_is_refused_while_a_match_is_processing(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI, temporal_client: Client
) -> None:
    org = await factory.org(roles=(Role.owner,))
    match = Match(organization_id=org.id, title="Live", status=MatchStatus.processing)
    match.workflow_id = workflow_id_for(str(match.id))
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    running = await temporal_client.start_workflow(
        MatchWorkflow.run,
        MatchInput(str(org.id), str(match.id), "l.mp4", "r.mp4", "rig.json"),
        id=match.workflow_id,
        task_queue=f"unpolled-{uuid.uuid4().hex[:8]}",
    )
    try:
        response = await client.delete(f"/orgs/{org.id}", headers=org.member(Role.owner).headers)
        assert_problem(response, 409)
        assert "Live" in response.json()["detail"]
    finally:
        await running.terminate("test over")
    response = await client.delete(f"/orgs/{org.id}", headers=org.member(Role.owner).headers)
    assert response.status_code == 204


# --- members -----------------------------------------------------------------------------


async def test_add_member_by_email(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    user = await factory.user("new.member@example.com")
    response = await client.post(
        f"/orgs/{org.id}/members",
        json={"email": "New.Member@Example.COM", "role": "analyst"},
        headers=org.member(Role.admin).headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_id"] == str(user.id)
    assert body["email"] == "new.member@example.com"
    assert body["role"] == "analyst"
    assert body["full_name"] is None
    assert "joined_at" in body

    headers = {"Authorization": f"Bearer {factory.access_token(user.id)}"}
    detail = await client.get(f"/orgs/{org.id}", headers=headers)
    assert detail.status_code == 200
    assert detail.json()["role"] == "analyst"


async def test_add_member_defaults_to_viewer(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner,))
    user = await factory.user()
    response = await client.post(
        f"/orgs/{org.id}/members",
        json={"email": user.email},
        headers=org.member(Role.owner).headers,
    )
    assert response.status_code == 201
    assert response.json()["role"] == "viewer"


async def test_add_unknown_email_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner,))
    response = await client.post(
        f"/orgs/{org.id}/members",
        json={"email": "nobody@example.com", "role": "viewer"},
        headers=org.member(Role.owner).headers,
    )
    assert_problem(response, 404, "No account with this email.")


async def test_add_existing_member_is_409(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner, Role.viewer))
    response = await client.post(
        f"/orgs/{org.id}/members",
        json={"email": org.member(Role.viewer).email, "role": "admin"},
        headers=org.member(Role.owner).headers,
    )
    assert_problem(response, 409, "This account is already a member.")
    assert await role_of(client, org, org.member(Role.viewer).user_id) == "viewer"


@pytest.mark.parametrize(
    "body",
    [
        {"role": "viewer"},
        {"email": "not-an-email", "role": "viewer"},
        {"email": "a@b.co", "role": "god"},
    ],
)
async def test_add_member_validation_is_422(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, str]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    response = await client.post(
        f"/orgs/{org.id}/members", json=body, headers=org.member(Role.owner).headers
    )
    assert_problem(response, 422)


async def test_members_list_shows_email_name_role(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    response = await client.get(f"/orgs/{org.id}/members", headers=org.member(Role.admin).headers)
    assert response.status_code == 200
    members = response.json()
    assert [member["email"] for member in members] == sorted(m.email for m in org.members.values())
    assert {(m["user_id"], m["role"]) for m in members} == {
        (str(m.user_id), m.role.value) for m in org.members.values()
    }
    assert all(set(m) == {"user_id", "email", "full_name", "role", "joined_at"} for m in members)

    page = await client.get(
        f"/orgs/{org.id}/members", params={"limit": 2}, headers=org.member(Role.admin).headers
    )
    assert len(page.json()) == 2


async def test_change_role(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    viewer = org.member(Role.viewer)
    response = await client.patch(
        f"/orgs/{org.id}/members/{viewer.user_id}",
        json={"role": "admin"},
        headers=org.member(Role.admin).headers,
    )
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    detail = await client.get(f"/orgs/{org.id}", headers=viewer.headers)
    assert detail.json()["role"] == "admin"
    assert "manage_members" in detail.json()["permissions"]


async def test_change_role_validation_is_422(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner, Role.viewer))
    path = f"/orgs/{org.id}/members/{org.member(Role.viewer).user_id}"
    headers = org.member(Role.owner).headers
    assert_problem(await client.patch(path, json={"role": "superuser"}, headers=headers), 422)
    assert_problem(await client.patch(path, json={}, headers=headers), 422)
    bad_id = f"/orgs/{org.id}/members/not-a-uuid"
    assert_problem(await client.patch(bad_id, json={"role": "viewer"}, headers=headers), 422)


async def test_remove_member(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    analyst = org.member(Role.analyst)
    response = await client.delete(
        f"/orgs/{org.id}/members/{analyst.user_id}", headers=org.member(Role.admin).headers
    )
    assert response.status_code == 204
    assert_problem(await client.get(f"/orgs/{org.id}", headers=analyst.headers), 404)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_non_member_target_is_404(
    client: httpx.AsyncClient, factory: Factory, method: str
) -> None:
    org = await factory.org(roles=(Role.owner,))
    other = await factory.org(roles=(Role.viewer,))
    body = {"role": "viewer"} if method == "PATCH" else None
    headers = org.member(Role.owner).headers
    for user_id in (other.member(Role.viewer).user_id, uuid.uuid4()):
        path = f"/orgs/{org.id}/members/{user_id}"
        response = await client.request(method, path, json=body, headers=headers)
        assert_problem(response, 404, "Member not found.")
    # The member of the other organization is untouched.
    detail = await client.get(f"/orgs/{other.id}", headers=other.member(Role.viewer).headers)
    assert detail.json()["role"] == "viewer"


# --- owner rules -------------------------------------------------------------------------


async def test_admin_cannot_touch_owners(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = org.member(Role.admin).headers
    owner_id = org.member(Role.owner).user_id
    base = f"/orgs/{org.id}/members"

    demote = await client.patch(f"{base}/{owner_id}", json={"role": "viewer"}, headers=admin)
    assert_problem(demote, 403, OWNER_ONLY)
    remove = await client.delete(f"{base}/{owner_id}", headers=admin)
    assert_problem(remove, 403, OWNER_ONLY)
    viewer_id = org.member(Role.viewer).user_id
    promote = await client.patch(f"{base}/{viewer_id}", json={"role": "owner"}, headers=admin)
    assert_problem(promote, 403, OWNER_ONLY)
    admin_id = org.member(Role.admin).user_id
    promote_self = await client.patch(f"{base}/{admin_id}", json={"role": "owner"}, headers=admin)
    assert_problem(promote_self, 403, OWNER_ONLY)
    newcomer = await factory.user()
    add_owner = await client.post(
        base, json={"email": newcomer.email, "role": "owner"}, headers=admin
    )
    assert_problem(add_owner, 403, OWNER_ONLY)

    assert await role_of(client, org, owner_id) == "owner"
    assert await role_of(client, org, viewer_id) == "viewer"
    assert await role_of(client, org, admin_id) == "admin"
    members = await client.get(base, headers=admin)
    assert str(newcomer.id) not in {m["user_id"] for m in members.json()}


async def test_owner_manages_owners(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    owner = org.member(Role.owner).headers
    base = f"/orgs/{org.id}/members"
    admin_id = org.member(Role.admin).user_id

    promote = await client.patch(f"{base}/{admin_id}", json={"role": "owner"}, headers=owner)
    assert promote.status_code == 200
    assert promote.json()["role"] == "owner"
    newcomer = await factory.user()
    added = await client.post(base, json={"email": newcomer.email, "role": "owner"}, headers=owner)
    assert added.status_code == 201
    demote = await client.patch(f"{base}/{admin_id}", json={"role": "analyst"}, headers=owner)
    assert demote.status_code == 200
    removed = await client.delete(f"{base}/{newcomer.id}", headers=owner)
    assert removed.status_code == 204
    assert await role_of(client, org, admin_id) == "analyst"


async def test_last_owner_stays(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    owner = org.member(Role.owner)
    path = f"/orgs/{org.id}/members/{owner.user_id}"

    demote = await client.patch(path, json={"role": "admin"}, headers=owner.headers)
    assert_problem(demote, 409, LAST_OWNER)
    leave = await client.delete(path, headers=owner.headers)
    assert_problem(leave, 409, LAST_OWNER)
    # Setting the owner's role to owner again changes nothing and is allowed.
    same = await client.patch(path, json={"role": "owner"}, headers=owner.headers)
    assert same.status_code == 200
    assert await role_of(client, org, owner.user_id) == "owner"


async def test_second_owner_frees_the_first(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    first = org.member(Role.owner)
    second_id = org.member(Role.admin).user_id
    base = f"/orgs/{org.id}/members"
    await client.patch(f"{base}/{second_id}", json={"role": "owner"}, headers=first.headers)

    # With two owners the first may step down; then the second is the last one.
    demote = await client.patch(
        f"{base}/{first.user_id}", json={"role": "admin"}, headers=first.headers
    )
    assert demote.status_code == 200
    second = {"Authorization": f"Bearer {factory.access_token(second_id)}"}
    last = await client.patch(f"{base}/{second_id}", json={"role": "viewer"}, headers=second)
    assert_problem(last, 409, LAST_OWNER)
    # The former owner, now admin, cannot touch the remaining owner.
    remove = await client.delete(f"{base}/{second_id}", headers=first.headers)
    assert_problem(remove, 403, OWNER_ONLY)


@pytest.mark.parametrize("role", [Role.admin, Role.analyst, Role.viewer])
async def test_member_can_leave(client: httpx.AsyncClient, factory: Factory, role: Role) -> None:
    org = await factory.org()
    member = org.member(role)
    response = await client.delete(
        f"/orgs/{org.id}/members/{member.user_id}", headers=member.headers
    )
    assert response.status_code == 204
    assert_problem(await client.get(f"/orgs/{org.id}", headers=member.headers), 404)
    assert (await client.get("/orgs", headers=member.headers)).json() == []
    members = await client.get(f"/orgs/{org.id}/members", headers=org.member(Role.owner).headers)
    assert str(member.user_id) not in {m["user_id"] for m in members.json()}


async def test_owner_can_leave_when_another_owner_remains(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    owner = org.member(Role.owner)
    other = await factory.user()
    await factory.add_member(org.id, other.id, Role.owner)
    response = await client.delete(f"/orgs/{org.id}/members/{owner.user_id}", headers=owner.headers)
    assert response.status_code == 204
    assert_problem(await client.get(f"/orgs/{org.id}", headers=owner.headers), 404)


@pytest.mark.parametrize("role", [Role.analyst, Role.viewer])
async def test_member_cannot_remove_others(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    org = await factory.org()
    headers = org.member(role).headers
    # A non-member id answers 403 too: the caller learns nothing about who belongs.
    for user_id in (org.member(Role.owner).user_id, uuid.uuid4()):
        response = await client.delete(f"/orgs/{org.id}/members/{user_id}", headers=headers)
        assert_problem(response, 403)


# --- the OpenAPI document ----------------------------------------------------------------


async def test_openapi_has_examples_and_problems(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in (
        "OrganizationCreateRequest",
        "OrganizationRenameRequest",
        "MemberAddRequest",
        "MemberRoleRequest",
    ):
        assert schemas[name]["examples"], name
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path == "/orgs" or path.startswith("/orgs/{org_id}")
        for method, operation in item.items()
        if "organizations" in operation.get("tags", ())
    ]
    assert len(operations) == 9
    for path, method, operation in operations:
        assert operation["summary"], (path, method)
        assert PROBLEM_MEDIA_TYPE in operation["responses"]["401"]["content"], (path, method)
        assert PROBLEM_MEDIA_TYPE in operation["responses"]["422"]["content"], (path, method)
    conflict = document["paths"]["/orgs"]["post"]["responses"]["409"]
    assert PROBLEM_MEDIA_TYPE in conflict["content"]


# --- the owner rules as a pure function ----------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "current", "new", "owners", "expected"),
    [
        (Role.admin, None, Role.viewer, 1, None),
        (Role.admin, None, Role.owner, 1, 403),
        (Role.admin, Role.viewer, Role.admin, 1, None),
        (Role.admin, Role.admin, Role.owner, 1, 403),
        (Role.admin, Role.owner, Role.viewer, 2, 403),
        (Role.admin, Role.owner, None, 2, 403),
        (Role.owner, None, Role.owner, 1, None),
        (Role.owner, Role.owner, Role.admin, 2, None),
        (Role.owner, Role.owner, None, 2, None),
        (Role.owner, Role.owner, Role.admin, 1, 409),
        (Role.owner, Role.owner, None, 1, 409),
        (Role.owner, Role.owner, Role.owner, 1, None),
        (Role.viewer, Role.viewer, None, 1, None),
    ],
)
def test_role_change_error(
    actor: Role, current: Role | None, new: Role | None, owners: int, expected: int | None
) -> None:
    error = role_change_error(actor, current, new, owners)
    assert (error.status_code if error is not None else None) == expected
