"""Which address a request comes from: forwarded headers count only from configured proxies.

The rate limits and login lockouts count per client address; a client that could name its
own address in ``X-Forwarded-For`` would get a fresh budget with every request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from polyvision.ports import free_port
from polyvision.settings import Settings, StartupError, load_settings
from programs import cli

WRONG_LOGIN = {"email": "nobody@example.com", "password": "wrong password"}
LIMIT = 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # pytest owns the signals.
        yield


@contextlib.asynccontextmanager
async def _serving(config: uvicorn.Config) -> AsyncIterator[None]:
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the API stopped during startup")
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await serving


@contextlib.asynccontextmanager
async def _app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _http(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _logins(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    return [
        (
            await client.post("/auth/login", json=WRONG_LOGIN, headers={"X-Forwarded-For": address})
        ).status_code
        for address in forwarded_for
    ]


async def test_the_api_command_does_not_believe_forwarded_headers_from_loopback(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe's bypass: uvicorn, as `polyvision api` ran it, believed X-Forwarded-For from
    # 127.0.0.1, so a client on the host named a new address for every login attempt.
    port = free_port()
    settings = api_settings.model_copy(
        update={"api_host": "127.0.0.1", "api_port": port, "rate_limit_auth_per_minute": LIMIT}
    )
    launched: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        launched.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", run)
    assert cli._api(settings, argparse.Namespace()) == 0
    assert launched["proxy_headers"] is False
    app = launched.pop("app")
    async with (
        _serving(uvicorn.Config(app, lifespan="on", **launched)),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        codes = await _logins(client, [f"198.51.100.{i}" for i in range(LIMIT + 2)])
    assert codes == [401] * LIMIT + [429, 429]


async def test_forwarded_for_counts_only_from_a_trusted_proxy(api_settings: Settings) -> None:
    proxy, stranger = "10.1.2.3", "203.0.113.7"
    settings = api_settings.model_copy(
        update={"trusted_proxies": ["10.0.0.0/8"], "rate_limit_auth_per_minute": LIMIT}
    )
    async with _app(settings) as app:
        async with _http(app, proxy) as through_proxy:
            # Two clients behind the proxy each have their own budget...
            assert await _logins(through_proxy, ["192.0.2.1"] * (LIMIT + 1)) == [401] * LIMIT + [
                429
            ]
            assert await _logins(through_proxy, ["192.0.2.2"]) == [401]
            # ...and a client cannot hide behind an address it puts in front of the proxy's.
            assert await _logins(through_proxy, ["192.0.2.9, 192.0.2.1"]) == [429]
        async with _http(app, stranger) as direct:
            codes = await _logins(direct, [f"198.51.100.{i}" for i in range(LIMIT + 1)])
            assert codes == [401] * LIMIT + [429]


async def test_without_trusted_proxies_forwarded_headers_are_ignored(
    api_settings: Settings,
) -> None:
    assert api_settings.trusted_proxies == []
    settings = api_settings.model_copy(update={"rate_limit_auth_per_minute": LIMIT})
    async with _app(settings) as app, _http(app, "127.0.0.1") as local:
        codes = await _logins(local, [f"198.51.100.{i}" for i in range(LIMIT + 1)])
    assert codes == [401] * LIMIT + [429]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert load_settings(trusted_proxies=["10.0.0.0/8", " ::1 "]).trusted_proxies == [
        "10.0.0.0/8",
        "::1",
    ]
    with pytest.raises(StartupError) as refused:
        load_settings(trusted_proxies=["gateway.internal"])
    assert refused.value.setting == "PV_TRUSTED_PROXIES"
