"""Every integer query parameter is bounded: out-of-range values are 422 problems, never 500s.

The routes are found by walking the OpenAPI document, so a list route added later with an
unbounded ``offset`` or ``limit`` fails here without anyone remembering to add it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from api.paging import MAX_OFFSET
from api.problems import PROBLEM_MEDIA_TYPE
from polyvision.storage.metadata.models import Role
from tests.api.factories import Factory, TestOrg

PAGING = {"offset", "limit"}
# Past SQLite's and PostgreSQL's 64-bit integers, the values the outside probe sent.
HUGE = (2**63, 10**20)
_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _integer(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "integer" or any(
        option.get("type") == "integer" for option in schema.get("anyOf", [])
    )


def _integer_query_params(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path template, parameter) of every integer query parameter in the document."""
    found: list[tuple[str, str, str]] = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                if param["in"] == "query" and _integer(param.get("schema", {})):
                    found.append((method.upper(), path, param["name"]))
    return found


def _url(path: str, org: TestOrg) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "org_id":
            return str(org.id)
        if name == "key":
            return "some/object"
        if name == "team":
            return "1"
        return str(uuid.uuid4())

    return _PATH_PARAM.sub(value, path)


def _assert_problem(response: httpx.Response, status: int | None = None) -> None:
    assert response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE, response.text


async def test_paging_parameters_are_bounded_on_every_list_route(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org((Role.owner,))
    headers = org.member(Role.owner).headers
    params = _integer_query_params(app.openapi())
    paging = [(method, path, name) for method, path, name in params if name in PAGING]
    # The routes the probe found, and the device lists that page the same way.
    assert {path for _, path, name in paging if name == "offset"} >= {
        "/orgs",
        "/orgs/{org_id}/members",
        "/orgs/{org_id}/devices",
        "/orgs/{org_id}/devices/provisioning-codes",
    }
    for method, path, name in paging:
        url = _url(path, org)
        for value in (*HUGE, -1, MAX_OFFSET + 1 if name == "offset" else 10_000):
            response = await client.request(method, url, params={name: value}, headers=headers)
            _assert_problem(response, 422)
            errors = response.json()["errors"]
            assert [e["loc"] for e in errors] == [["query", name]], (method, path, value)
        if name == "offset":
            # The bound itself is a valid (empty) page.
            response = await client.request(method, url, params={name: MAX_OFFSET}, headers=headers)
            assert response.status_code == 200, (method, path, response.text)
            assert response.json() == []


async def test_no_integer_query_parameter_overflows_into_a_500(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org((Role.owner,))
    headers = org.member(Role.owner).headers
    for method, path, name in _integer_query_params(app.openapi()):
        for value in HUGE:
            response = await client.request(
                method, _url(path, org), params={name: value}, headers=headers
            )
            _assert_problem(response)
