"""An API app on the embedded backends under a temporary data directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from polyvision.settings import Settings
from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory
from tests.fixtures.temporal import TemporalTestServer


@pytest.fixture
def api_settings(
    tmp_path: Path, temporal_server: TemporalTestServer, request: pytest.FixtureRequest
) -> Settings:
    # PV_TEST_API_DATABASE=postgres runs the API tests on a fresh PostgreSQL database each
    # (SQLite, the embedded default, otherwise).
    database_url = ""
    if os.environ.get("PV_TEST_API_DATABASE") == "postgres":
        database_url = request.getfixturevalue("postgres_database_url")
    settings = Settings(
        data_dir=tmp_path / "pv",
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace.name,
        api_public_url="http://testserver",
        database_url=database_url,
    )
    upgrade_stores(settings)
    return settings


@pytest_asyncio.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(app: FastAPI) -> Factory:
    """Tenants, members and devices for one test."""
    return Factory(app)
