"""The OpenAPI document is complete: every operation is summarised, tagged, and documents its
errors as problem documents, its authentication and examples of its request bodies.

Each test lists every offending operation in its failure message, not just the first.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from api.gateway import complete_openapi
from api.middleware.rate_limit import gateway_rules
from api.problems import PROBLEM_MEDIA_TYPE

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
USER_SCHEME = "bearerAuth"
DEVICE_SCHEME = "deviceToken"

Operation = tuple[str, dict[str, Any]]


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    schema: dict[str, Any] = app.openapi()
    return schema


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    """``("METHOD /path", operation)`` for every operation in the document."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` itself, or the component it refers to."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def route_contexts(app: FastAPI) -> Iterator[tuple[str, RouteContext]]:
    """``("METHOD /path", route)`` for every documented operation, as the routes declare it."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            for method in sorted(context.methods or ()):
                yield f"{method} {context.path_format}", context


def declared_problem_statuses(context: RouteContext) -> set[int]:
    """The 4xx statuses the route's own ``responses=`` lists as problem documents."""
    return {
        int(status)
        for status, response in context.responses.items()
        if str(status).isdigit()
        and 400 <= int(status) < 500
        and PROBLEM_MEDIA_TYPE in response.get("content", {})
    }


def takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def is_authenticated(operation: dict[str, Any]) -> bool:
    return any(requirement for requirement in operation.get("security", []))


def problem_statuses(operation: dict[str, Any]) -> set[int]:
    """The 4xx statuses an operation documents with a problem+json body."""
    return {
        int(status)
        for status, response in operation.get("responses", {}).items()
        if status.isdigit()
        and 400 <= int(status) < 500
        and PROBLEM_MEDIA_TYPE in response.get("content", {})
    }


async def test_openapi_json_is_served_with_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    served = response.json()
    assert served["openapi"].startswith("3.")
    assert served["info"]["title"] == "Polyvision API"
    assert served["info"]["version"]
    assert served["paths"]
    schemes = served["components"]["securitySchemes"]
    assert schemes[USER_SCHEME]["scheme"] == "bearer"
    assert "RS256" in schemes[USER_SCHEME]["description"]
    assert schemes[DEVICE_SCHEME]["scheme"] == "bearer"
    assert "EdDSA" in schemes[DEVICE_SCHEME]["description"]


def test_auth_dependencies_become_security_requirements(document: dict[str, Any]) -> None:
    by_name = dict(operations(document))
    assert by_name["GET /auth/me"]["security"] == [{USER_SCHEME: []}]
    assert by_name["GET /devices/me"]["security"] == [{DEVICE_SCHEME: []}]
    # Routes that authenticate nobody, or by their own means (signed URLs), claim no scheme.
    for public in ("GET /healthz", "POST /auth/login", "GET /objects/{key}"):
        assert "security" not in by_name[public], public
    # The upload routes take either credential: alternatives, not both at once.
    for either in ("POST /uploads", "GET /uploads/{upload_id}", "POST /uploads/{upload_id}/parts"):
        assert by_name[either]["security"] == [{DEVICE_SCHEME: []}, {USER_SCHEME: []}], either
    # A tenant route authenticates through the organization access dependency.
    tenant = [op for name, op in operations(document) if name.split(" ")[1].startswith("/orgs/")]
    assert tenant
    assert all(op.get("security") == [{USER_SCHEME: []}] for op in tenant)


def test_every_operation_has_a_summary_tags_and_a_unique_operation_id(
    app: FastAPI, document: dict[str, Any]
) -> None:
    # FastAPI invents a summary from the function name; the route must give its own.
    missing_summary = [name for name, route in route_contexts(app) if not route.summary]
    missing_summary += [name for name, op in operations(document) if not op.get("summary")]
    missing_tags = [name for name, op in operations(document) if not op.get("tags")]
    ids = [op.get("operationId") for _, op in operations(document)]
    missing_id = [name for name, op in operations(document) if not op.get("operationId")]
    duplicated = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    assert missing_summary == [], f"operations without summary=: {missing_summary}"
    assert missing_tags == [], f"operations without tags: {missing_tags}"
    assert missing_id == [], f"operations without operationId: {missing_id}"
    assert duplicated == [], f"duplicated operationIds: {duplicated}"


def test_routes_with_auth_or_input_document_their_problems(
    app: FastAPI, document: dict[str, Any]
) -> None:
    # The document's 422, 413 and 429 are added for every route by FastAPI and the gateway;
    # the route's own responses=problem_responses(...) must list what the route answers.
    by_name = dict(operations(document))
    undocumented = [
        name
        for name, route in route_contexts(app)
        if (takes_input(by_name[name]) or is_authenticated(by_name[name]))
        and not declared_problem_statuses(route)
    ]
    assert undocumented == [], f"operations whose responses= list no 4xx problem: {undocumented}"


def test_gateway_refusals_are_documented(document: dict[str, Any]) -> None:
    by_name = dict(operations(document))
    login = by_name["POST /auth/login"]["responses"]
    assert PROBLEM_MEDIA_TYPE in login["413"]["content"]
    assert PROBLEM_MEDIA_TYPE in login["429"]["content"]
    assert "Retry-After" in login["429"]["headers"]
    assert "429" in by_name["GET /devices/me"]["responses"]
    assert "429" not in by_name["GET /healthz"]["responses"]
    assert all("413" in op["responses"] for _, op in operations(document) if "requestBody" in op)


async def test_operations_refusing_anonymous_callers_document_their_security(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    # An operation that answers 401 without a token is not public: the upload routes, which
    # authenticate through their own dependency, were documented without security (found by
    # tests/security/test_fuzz_openapi.py sending them the wrong credential).
    refusing, undocumented = [], []
    for name, op in operations(document):
        method, path = name.split(" ", 1)
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await client.request(method, url)
        if response.status_code == 401:
            refusing.append(name)
            if not is_authenticated(op):
                undocumented.append(name)
    assert "POST /uploads/{upload_id}/complete" in refusing
    assert undocumented == [], (
        f"operations answering 401 without a security requirement: {undocumented}"
    )


async def test_a_body_that_is_not_utf8_is_a_documented_400_problem(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    # FastAPI refuses a JSON body it cannot decode with 400 before any validation; every
    # operation taking a body documents it (found by the fuzzer: it was undocumented).
    response = await client.post(
        "/auth/login", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["status"] == 400
    with_body = [(name, op) for name, op in operations(document) if "requestBody" in op]
    missing = [name for name, op in with_body if 400 not in problem_statuses(op)]
    assert with_body and missing == [], f"operations with a body and no 400 problem: {missing}"


def test_authenticated_routes_document_401(document: dict[str, Any]) -> None:
    missing = [
        name
        for name, op in operations(document)
        if is_authenticated(op) and 401 not in problem_statuses(op)
    ]
    assert missing == [], f"authenticated operations without a 401 problem: {missing}"


def test_every_documented_client_error_is_a_problem(document: dict[str, Any]) -> None:
    wrong = [
        f"{name} {status}: {sorted(response.get('content', {}))}"
        for name, op in operations(document)
        for status, response in op.get("responses", {}).items()
        if status.isdigit()
        and 400 <= int(status) < 500
        and set(response.get("content", {})) != {PROBLEM_MEDIA_TYPE}
    ]
    assert wrong == [], f"4xx responses not documented as problem+json: {wrong}"
    # FastAPI's own validation error model is replaced by the problem the API sends.
    assert "HTTPValidationError" not in document["components"].get("schemas", {})


def test_json_request_bodies_have_examples(document: dict[str, Any]) -> None:
    missing = []
    for name, op in operations(document):
        content = op.get("requestBody", {}).get("content", {})
        for media_type, media in content.items():
            if not (media_type == "application/json" or media_type.endswith("+json")):
                continue
            schema = resolve(document, media.get("schema", {}))
            if not (media.get("example") or media.get("examples") or schema.get("examples")):
                missing.append(f"{name} ({schema.get('title', 'inline schema')})")
    assert missing == [], f"JSON request bodies without examples: {missing}"


def test_completion_is_stable_across_calls(app: FastAPI) -> None:
    # FastAPI caches the document and the completion edits it in place: compare a snapshot
    # with what a second completion of the same (cached) document gives.
    first = copy.deepcopy(app.openapi())
    second = app.openapi()
    assert first == second
    rules = gateway_rules(auth_per_minute=10, device_per_minute=600)
    again = complete_openapi(copy.deepcopy(second), app.routes, rules)
    assert again == second
    assert sum(1 for _ in operations(second)) > 0
