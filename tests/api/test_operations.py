"""Liveness, readiness, metrics and problem+json errors of the API."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from polyvision.settings import Settings


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


def _series(exposition: str) -> set[str]:
    """The series (name and labels) of a Prometheus text exposition."""
    return {line.rpartition(" ")[0] for line in exposition.splitlines() if not line.startswith("#")}


async def test_made_up_methods_do_not_mint_metric_series(client: httpx.AsyncClient) -> None:
    # The probe's three made-up methods made sixty series; any token is a valid HTTP method.
    for method in ("FOO", "BAR1", "X-CUSTOM"):
        assert (await client.request(method, "/healthz")).status_code == 405
        assert (await client.request(method, f"/no/such/{method}")).status_code == 404
    before = _series((await client.get("/metrics")).text)
    assert any('method="OTHER"' in series for series in before)
    for method in ("BAZ", "QUX2", "Y-CUSTOM", "PROPFIND"):
        await client.request(method, "/healthz")
        await client.request(method, f"/no/such/{method}")
    after = _series((await client.get("/metrics")).text)
    # The second batch only counted into series the first had made (/metrics's own GET aside).
    assert {series for series in after - before if 'route="/metrics"' not in series} == set()
    for name in ("FOO", "BAZ", "X-CUSTOM", "PROPFIND"):
        assert f'method="{name}"' not in "\n".join(after)


async def test_metrics_need_the_token_when_one_is_configured(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"metrics_token": SecretStr("scrape-secret")})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic scrape-secret"},
                {"Authorization": "Bearer scrape-secret-and-more"},
            ):
                refused = await http.get("/metrics", headers=headers)
                assert refused.status_code == 401, headers
                assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
                assert refused.headers["www-authenticate"] == "Bearer"
                assert "scrape-secret" not in refused.text
            allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
            assert allowed.status_code == 200
            assert "polyvision_api_requests_total" in allowed.text


async def test_openapi_document_lists_operations(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/healthz" in paths
    assert "/readyz" in paths
