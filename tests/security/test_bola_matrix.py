"""Broken object-level authorization, tested from the OpenAPI document itself.

Every operation of ``app.openapi()`` whose path holds ``{org_id}`` is called, with the ids of
real objects of organization A in its other path parameters and the documented example as its
body:

- without a token: 401;
- as a signed-in user who belongs to no organization: 404;
- as each role (owner, admin, analyst, viewer) of organization B: 404, and nothing of A in the
  answer, and nothing of A changed afterwards;
- as each role of B on B's own path with A's object ids (match, team, device, member...): never
  a success, nothing of A in the answer;
- as each role of organization A: 403 exactly when the role lacks the permission the route
  requires (read from the route's ``require_<permission>`` dependency), otherwise never a
  "not found" for A or its objects, and never a 5xx.

Every error is an RFC 9457 problem. A new route under ``/orgs/{org_id}`` is covered without
editing this file; a new kind of path parameter fails `test_every_path_parameter_has_a_fixture`
until a real object for it is created below.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.problems import PROBLEM_MEDIA_TYPE
from api.security.permissions import Permission, allows
from polyvision.storage.metadata.models import (
    Device,
    Match,
    Membership,
    Organization,
    Role,
    RosterPlayer,
    Team,
)
from tests.api.factories import Factory
from tests.security.tenant import ORG_PARAM, Tenant, tenant_with_objects

ROLES_LOW_TO_HIGH = (Role.viewer, Role.analyst, Role.admin, Role.owner)
# Required query parameters the generated calls fill (a window the analytics routes accept).
QUERY_VALUES: dict[str, str] = {"start_s": "0", "end_s": "10"}
# The "not found" answers that would mean the caller's own organization (or one of its
# objects) was not found: a member must never see them for objects that exist.
OWN_NOT_FOUND = (
    "Organization not found.",
    "Match not found.",
    "Team not found.",
    "Device not found.",
    "Player not found.",
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query: dict[str, str]
    body: Any
    permission: Permission | None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Findings:
    calls: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, op: Operation, who: str, response: httpx.Response, why: str) -> None:
        if not ok:
            self.failures.append(
                f"{op.name} as {who}: {why} (got {response.status_code}: {response.text[:200]})"
            )


def _required_permission(route: APIRoute) -> Permission | None:
    """The permission of the route's ``require(...)`` dependency, if it has one."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        name = getattr(dependant.call, "__name__", "")
        if name.startswith("require_"):
            return Permission(name.removeprefix("require_"))
        pending.extend(dependant.dependencies)
    return None


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's API routes, through routers included as a whole (their paths are full: the
    app includes each router without a prefix of its own)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _example_body(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    schema = content["application/json"].get("schema", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    examples = schema.get("examples") or [{}]
    return examples[0]


def org_operations(app: FastAPI) -> list[Operation]:
    """Every (path, method) of the OpenAPI document under ``/orgs/{org_id}``."""
    document = app.openapi()
    permissions = {
        (route.path, method.lower()): _required_permission(route)
        for route in _api_routes(app.routes)
        for method in route.methods or ()
    }
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = operation.get("parameters", [])
            path_params = tuple(p["name"] for p in params if p["in"] == "path")
            if ORG_PARAM not in path_params:
                continue
            query = {
                p["name"]: QUERY_VALUES.get(p["name"], "1")
                for p in params
                if p["in"] == "query" and p.get("required")
            }
            operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=path_params,
                    query=query,
                    body=_example_body(document, operation),
                    permission=permissions[(path, method)],
                )
            )
    return operations


async def _snapshot(app: FastAPI, org_id: uuid.UUID) -> list[str]:
    """Every row of A the routes could change, as text."""
    rows: list[str] = []
    async with app.state.sessions() as session:
        organization = await session.get(Organization, org_id)
        assert organization is not None
        rows.append(repr(organization.model_dump()))
        for model in (Match, Team, RosterPlayer, Device, Membership):
            found = await session.exec(
                model.__table__.select().where(model.__table__.c.organization_id == org_id)  # type: ignore[union-attr]
            )
            rows.extend(sorted(repr(tuple(row)) for row in found))
    return rows


def _is_problem(response: httpx.Response) -> bool:
    if response.headers.get("content-type") != PROBLEM_MEDIA_TYPE:
        return False
    body = response.json()
    return body.get("status") == response.status_code and bool(body.get("title"))


async def _call(
    client: httpx.AsyncClient,
    tenant: Tenant,
    op: Operation,
    headers: dict[str, str],
) -> httpx.Response:
    return await client.request(
        op.method, tenant.url(op.path), params=op.query, json=op.body, headers=headers
    )


def _destructive_last(operations: list[Operation]) -> Iterator[Operation]:
    """Reads, then writes, then deletes deepest first: the organization's own delete last."""
    yield from (op for op in operations if op.method == "GET")
    yield from (op for op in operations if op.method not in {"GET", "DELETE"})
    deletes = [op for op in operations if op.method == "DELETE"]
    yield from sorted(deletes, key=lambda op: -op.path.count("/"))


def test_every_path_parameter_has_a_fixture(app: FastAPI) -> None:
    """A route with a new kind of id needs a real object of A in `tenant_with_objects`."""
    known = {ORG_PARAM, "match_id", "team_id", "player_id", "device_id", "user_id"}
    known |= {"identity_id", "team"}
    operations = org_operations(app)
    assert len(operations) >= 40
    unknown = {(op.name, p) for op in operations for p in op.path_params if p not in known}
    assert unknown == set()


async def test_bola_matrix_from_the_openapi_document(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    record_property: Callable[[str, object], None],
) -> None:
    """Every operation under an organization, generated from the OpenAPI document, answers 401
    without a token, 404 to a user of no organization and to every role of another
    organization, and 403 exactly where the permission table says, to each role of its own."""
    operations = org_operations(app)
    tenant = await tenant_with_objects(app, factory)
    other = await factory.org()
    loner = await factory.user()
    loner_headers = {"Authorization": f"Bearer {factory.access_token(loner.id)}"}
    found = Findings()
    before = await _snapshot(app, tenant.org.id)

    # Outsiders first: none of these may change anything of A.
    for op in operations:
        anonymous = await _call(client, tenant, op, {})
        found.calls += 1
        found.check(anonymous.status_code == 401, op, "anonymous", anonymous, "expected 401")
        found.check(_is_problem(anonymous), op, "anonymous", anonymous, "not a problem")

        stranger = await _call(client, tenant, op, loner_headers)
        found.calls += 1
        found.check(stranger.status_code == 404, op, "no organization", stranger, "expected 404")
        found.check(_is_problem(stranger), op, "no organization", stranger, "not a problem")

        for role in ROLES_LOW_TO_HIGH:
            who = f"{role.value} of another organization"
            response = await _call(client, tenant, op, other.member(role).headers)
            found.calls += 1
            found.check(response.status_code == 404, op, who, response, "expected 404")
            found.check(_is_problem(response), op, who, response, "not a problem")
            leaked = [s for s in tenant.secrets if s in response.text]
            found.check(not leaked, op, who, response, f"leaks {leaked}")

        # The other organization's own path with A's object ids: the object must not be
        # found through the caller's organization either.
        if len(op.path_params) > 1:
            foreign = Tenant(org=other, ids={**tenant.ids, ORG_PARAM: str(other.id)}, secrets=[])
            for role in ROLES_LOW_TO_HIGH:
                who = f"{role.value} of another organization, on its own path"
                response = await _call(client, foreign, op, other.member(role).headers)
                found.calls += 1
                refused = response.status_code in {403, 404, 409, 422}
                if op.method == "GET":  # a read of an object that is not there is 404
                    refused = response.status_code in {403, 404}
                found.check(refused, op, who, response, "A's object reached from B's path")
                found.check(_is_problem(response), op, who, response, "not a problem")
                leaked = [s for s in tenant.secrets if s in response.text]
                found.check(not leaked, op, who, response, f"leaks {leaked}")

    after = await _snapshot(app, tenant.org.id)
    assert after == before, "an outsider's call changed organization A"

    # Members of A: the permission table decides, and A's objects are always found (until a
    # delete of a lower role removed them: the next role's delete then finds nothing).
    for op in _destructive_last(operations):
        deleted = False
        for role in ROLES_LOW_TO_HIGH:
            who = f"{role.value} of the organization"
            response = await _call(client, tenant, op, tenant.org.member(role).headers)
            found.calls += 1
            status = response.status_code
            found.check(status < 500, op, who, response, "server error")
            if status >= 400:
                found.check(_is_problem(response), op, who, response, "not a problem")
            if op.permission is not None and not allows(role, op.permission):
                found.check(status == 403, op, who, response, f"lacks {op.permission}: 403")
                continue
            detail = response.json().get("detail") if status == 404 and not deleted else None
            found.check(detail not in OWN_NOT_FOUND, op, who, response, "own object not found")
            deleted = deleted or (op.method == "DELETE" and status < 300)
            if op.method == "GET":
                found.check(
                    status < 300 or status in {404, 409},
                    op,
                    who,
                    response,
                    "a read the role may do is refused",
                )

    with_objects = sum(1 for op in operations if len(op.path_params) > 1)
    matrix = f"{len(operations)} operations ({with_objects} with object ids), {found.calls} calls"
    assert not found.failures, f"{matrix}:\n" + "\n".join(found.failures)
    # 4 roles of A + 4 roles of B + no organization + no token, for every operation, and the
    # 4 roles of B on their own path with A's object ids.
    assert found.calls == len(operations) * 10 + with_objects * 4, matrix
    record_property("operations", len(operations))
    record_property("calls", found.calls)
    print(f"BOLA matrix: {matrix}")
