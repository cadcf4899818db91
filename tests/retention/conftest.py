"""Real stores for the retention tests: a file object store, chDB and a migrated SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.metadata import create_engine, session_maker, upgrade
from polyvision.storage.objects import ObjectStore, open_object_store


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


@pytest_asyncio.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    await asyncio.to_thread(upgrade, url)  # upgrade runs its own event loop
    engine = create_engine(url)
    try:
        yield session_maker(engine)
    finally:
        await engine.dispose()
