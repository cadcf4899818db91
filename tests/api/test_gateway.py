"""Gateway concerns in the app: CORS, security headers, body limits, rate limits, problems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from polyvision.settings import Settings

WEB_ORIGIN = "https://app.polyvision.example"
OTHER_ORIGIN = "https://evil.example"
REQUEST_LIMIT = 1024
PART_LIMIT = 8 * 1024
WRONG_LOGIN = {"email": "nobody@example.com", "password": "wrong password"}

AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def make_app(api_settings: Settings) -> AppFactory:
    """An app on the test stores with some settings changed, its lifespan running."""

    @asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[FastAPI]:
        settings = api_settings.model_copy(update=changes)
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            yield application

    return make


def http(app: ASGIApp, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["cross-origin-resource-policy"] == "same-site"


async def chunks(size: int, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


# --- CORS ------------------------------------------------------------------------------------


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_cors_preflight_allows_the_configured_origin_only(make_app: AppFactory) -> None:
    async with make_app(cors_origins=[WEB_ORIGIN]) as app, http(app) as client:
        allowed = await client.options("/auth/me", headers=preflight(WEB_ORIGIN, "GET"))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == WEB_ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "PUT" in allowed.headers["access-control-allow-methods"]
        # Tokens travel in Authorization, never in cookies.
        assert "access-control-allow-credentials" not in allowed.headers
        assert_security_headers(allowed)

        refused = await client.options("/auth/me", headers=preflight(OTHER_ORIGIN, "GET"))
        body = assert_problem(refused, 400)
        assert "origin" in body["detail"]
        assert "access-control-allow-origin" not in refused.headers

        bad_header = await client.options(
            "/auth/me", headers=preflight(WEB_ORIGIN, "GET", "x-not-allowed")
        )
        assert_problem(bad_header, 400)

        simple = await client.get("/healthz", headers={"Origin": WEB_ORIGIN})
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == WEB_ORIGIN
        exposed = simple.headers["access-control-expose-headers"].lower()
        assert {"etag", "content-range", "content-length", "retry-after"} <= {
            name.strip() for name in exposed.split(",")
        }
        foreign = await client.get("/healthz", headers={"Origin": OTHER_ORIGIN})
        assert "access-control-allow-origin" not in foreign.headers


async def test_no_configured_origin_means_no_cross_origin_api(client: httpx.AsyncClient) -> None:
    # The default settings name no origin: no wildcard, and a preflight finds no handler.
    response = await client.options("/auth/me", headers=preflight(WEB_ORIGIN, "GET"))
    assert_problem(response, 405)
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/healthz", headers={"Origin": WEB_ORIGIN})
    assert "access-control-allow-origin" not in simple.headers


async def test_delivery_answers_any_origin_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/delivery/some-token/master.m3u8", headers=preflight(OTHER_ORIGIN, "GET", "range")
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    # Delivery is read-only, also for browsers.
    write = await client.options(
        "/delivery/some-token/master.m3u8", headers=preflight(OTHER_ORIGIN, "PUT", "range")
    )
    assert_problem(write, 400)


# --- security headers ------------------------------------------------------------------------


async def test_security_headers_on_json_and_error_responses(client: httpx.AsyncClient) -> None:
    ok = await client.get("/healthz")
    assert ok.status_code == 200
    assert_security_headers(ok)
    assert ok.headers["cache-control"] == "no-store"
    # The test app's public URL is http: no HSTS.
    assert "strict-transport-security" not in ok.headers

    for response in (
        await client.get("/no/such/path"),
        await client.get("/auth/me"),
        await client.post("/auth/login", json={"email": 1}),
    ):
        assert response.status_code >= 400
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert_security_headers(response)
        assert response.headers["cache-control"] == "no-store"


async def test_a_route_s_own_cache_header_wins(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert_security_headers(response)


async def test_delivery_may_be_embedded_cross_origin(client: httpx.AsyncClient) -> None:
    response = await client.get("/delivery/not-a-token/master.m3u8")
    assert response.status_code >= 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_docs_pages_get_a_policy_that_lets_them_load(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"


async def test_hsts_only_behind_an_https_public_url(make_app: AppFactory) -> None:
    async with make_app(api_public_url="https://api.polyvision.example") as app, http(app) as c:
        response = await c.get("/healthz")
        assert response.headers["strict-transport-security"] == (
            "max-age=63072000; includeSubDomains"
        )
        error = await c.get("/no/such/path")
        assert "strict-transport-security" in error.headers


# --- body size limits ------------------------------------------------------------------------


async def test_declared_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    async with make_app(max_request_bytes=REQUEST_LIMIT) as app, http(app) as client:
        response = await client.post(
            "/auth/login",
            content=b"x" * (REQUEST_LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        body = assert_problem(response, 413)
        assert str(REQUEST_LIMIT) in body["detail"]
        assert_security_headers(response)
        # At the limit, the body reaches the route (which finds it is not JSON).
        at_limit = await client.post(
            "/auth/login",
            content=b"x" * REQUEST_LIMIT,
            headers={"Content-Type": "application/json"},
        )
        assert_problem(at_limit, 422)


async def test_streamed_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    async with make_app(max_request_bytes=REQUEST_LIMIT) as app, http(app) as client:
        request = client.build_request(
            "POST",
            "/auth/login",
            content=chunks(256, 8),
            headers={"Content-Type": "application/json"},
        )
        # Chunked: there is no length to refuse up front, the bytes are counted.
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        response = await client.send(request)
        assert_problem(response, 413)


async def test_object_uploads_get_the_part_limit(make_app: AppFactory) -> None:
    async with (
        make_app(max_request_bytes=REQUEST_LIMIT, max_part_bytes=PART_LIMIT) as app,
        http(app) as client,
    ):

        async def signed_put(key: str) -> str:
            url = urlsplit(await app.state.objects.presign_put(key, expires_in=300))
            return f"{url.path}?{url.query}"

        # Larger than an API request may be, smaller than a part: accepted.
        fits = await client.put(await signed_put("gateway/fits.bin"), content=b"x" * 4096)
        assert fits.status_code == 200, fits.text
        assert fits.json()["size"] == 4096

        declared = await client.put(
            await signed_put("gateway/declared.bin"), content=b"x" * (PART_LIMIT + 1)
        )
        assert str(PART_LIMIT) in assert_problem(declared, 413)["detail"]

        streamed = await client.put(
            await signed_put("gateway/streamed.bin"), content=chunks(1024, PART_LIMIT // 1024 + 2)
        )
        assert_problem(streamed, 413)
        # Neither refused upload left an object behind.
        assert [info.key async for info in app.state.objects.list_prefix("gateway/")] == [
            "gateway/fits.bin"
        ]


# --- rate limits -----------------------------------------------------------------------------


async def test_login_is_rate_limited_per_address(make_app: AppFactory) -> None:
    async with make_app(rate_limit_auth_per_minute=3) as app:
        async with http(app, "203.0.113.7") as client:
            for _ in range(3):
                assert (await client.post("/auth/login", json=WRONG_LOGIN)).status_code == 401
            limited = await client.post("/auth/login", json=WRONG_LOGIN)
            assert_problem(limited, 429)
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert_security_headers(limited)
            # The same address registering shares the credential bucket.
            assert_problem(await client.post("/auth/register", json=WRONG_LOGIN), 429)
            # Other endpoints are not limited.
            assert (await client.get("/healthz")).status_code == 200
        async with http(app, "198.51.100.9") as elsewhere:
            assert (await elsewhere.post("/auth/login", json=WRONG_LOGIN)).status_code == 401


async def test_device_endpoints_are_rate_limited_per_address(make_app: AppFactory) -> None:
    async with make_app(rate_limit_device_per_minute=2) as app:
        async with http(app, "203.0.113.7") as device:
            assert (await device.get("/devices/me")).status_code == 401
            assert (await device.get("/uploads/anything")).status_code != 429
            limited = await device.get("/devices/me")
            assert_problem(limited, 429)
            assert int(limited.headers["retry-after"]) >= 1
        async with http(app, "198.51.100.9") as other:
            assert (await other.get("/devices/me")).status_code == 401


# --- every error is a problem document -------------------------------------------------------


async def test_unknown_path_and_wrong_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/path"), 404)
    wrong_method = await client.delete("/healthz")
    assert_problem(wrong_method, 405)
    assert "GET" in wrong_method.headers["allow"]


async def test_an_unhandled_error_is_a_500_problem_with_headers(app: FastAPI) -> None:
    async def broken() -> None:
        raise RuntimeError("internal detail that must not leak")

    app.add_api_route("/broken", broken)
    async with http(app) as client:
        response = await client.get("/broken")
    body = assert_problem(response, 500)
    assert "internal detail" not in response.text
    assert body["detail"] == "An unexpected error occurred."
    assert_security_headers(response)


class ExplodingMiddleware:
    """Fails before the app runs, as a broken middleware would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz":
            raise RuntimeError("middleware failed")
        await self.app(scope, receive, send)


async def test_an_error_raised_inside_middleware_is_a_problem(make_app: AppFactory) -> None:
    async with make_app() as app:
        # Added last, so it runs outside every gateway layer: the app's 500 handler answers.
        app.add_middleware(ExplodingMiddleware)
        async with http(app) as client:
            response = await client.get("/healthz")
            assert_problem(response, 500)
            assert "middleware failed" not in response.text
