"""Liveness, readiness, metrics and problem+json errors of the API."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from temporalio.client import Client

from api.problems import PROBLEM_MEDIA_TYPE


async def test_healthz_answers_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_every_store_and_temporal(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "analytics", "objects", "temporal"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


async def test_readyz_is_503_and_names_the_failing_store(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    original = app.state.engine

    class BrokenEngine:
        def connect(self) -> object:
            raise ConnectionError("database is down")

    app.state.engine = BrokenEngine()
    try:
        response = await client.get("/readyz")
    finally:
        app.state.engine = original
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["status"] == "failed"
    assert "database is down" in body["checks"]["database"]["error"]
    assert body["checks"]["temporal"]["status"] == "ok"


async def test_readyz_reconnects_to_temporal_after_a_failed_start(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.temporal = None  # as when Temporal was down while the API started
    response = await client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert isinstance(app.state.temporal, Client)


async def test_readyz_reports_unreachable_temporal(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.temporal = None
    app.state.settings = app.state.settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["temporal"]["status"] == "failed"
    assert body["checks"]["objects"]["status"] == "ok"


async def test_unknown_path_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["type"] == "about:blank"


async def test_wrong_method_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["status"] == 405


async def test_unhandled_error_is_a_500_problem_without_internals(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "secret internals" not in response.text


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/objects/a/b?sig=x&expires=1&method=GET")
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'polyvision_api_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    # Labelled by template, so object keys never blow up the series count.
    assert 'route="/objects/{key:path}"' in text
    assert "/objects/a/b" not in text
    assert "polyvision_api_request_duration_seconds_bucket" in text


async def test_openapi_document_lists_operations(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/healthz" in paths
    assert "/readyz" in paths
