"""The processing client against the session's Temporal dev server and a real metadata store.

The workflow and its batch children are the real ones; the activities are the stand-ins of
`tests/workflows/standins.py` (they answer at once), except tracking, which waits on a gate so
a test can look at, reprocess or cancel a run that is still going
(`tests.fixtures.standin_workers`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from polyvision.settings import Settings
from polyvision.storage.metadata import create_engine, session_maker, upgrade
from processing import MatchProcessing
from tests.fixtures.standin_workers import SHORT_MATCH, GatedActivities, standin_workers
from tests.fixtures.temporal import TemporalTestServer
from workflows.types import MatchInput


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated metadata database: SQLite (the embedded default) and PostgreSQL."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_database_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    return url


@pytest.fixture
def settings(tmp_path: Path, temporal_server: TemporalTestServer, task_queue: str) -> Settings:
    """Local stores under a temporary directory, this test's own task queues."""
    return Settings(
        data_dir=tmp_path / "pv",
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace.name,
        task_queue_suffix=f"-{task_queue}",
        temporal_ui_url="http://ui.test:8233",
    )


@pytest_asyncio.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the migrated metadata database."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    try:
        yield session_maker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def processing(temporal_client: Client, settings: Settings) -> MatchProcessing:
    return MatchProcessing(temporal_client, settings)


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest_asyncio.fixture
async def workers(
    temporal_client: Client, settings: Settings, gate: asyncio.Event
) -> AsyncIterator[None]:
    """Workers on the test's cpu and gpu queues with the real workflows and gated stand-ins."""
    activities = GatedActivities(SHORT_MATCH, gate)
    async with standin_workers(temporal_client, settings.task_queue_suffix, activities):
        try:
            yield
        finally:
            # A tracking activity still waiting would hold the worker's shutdown.
            gate.set()


async def wait_for_stage(
    processing: MatchProcessing, workflow_id: str, run_id: str, stage: str
) -> None:
    """Until the run's progress says ``stage`` (a query can precede the first workflow task)."""
    deadline = time.monotonic() + 60
    while True:
        progress = await processing.progress(workflow_id, run_id)
        if progress is not None and progress.stage == stage:
            return
        assert time.monotonic() < deadline, f"never reached {stage}"
        await asyncio.sleep(0.05)


async def wait_closed(processing: MatchProcessing, workflow_id: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        run = await processing.describe(workflow_id)
        assert run is not None
        if run.closed_at is not None:
            return
        assert time.monotonic() < deadline, "the workflow never ended"
        await asyncio.sleep(0.05)


async def started_input(client: Client, workflow_id: str, run_id: str) -> MatchInput:
    """The input a run was started with, from its first event."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (match_input,) = await client.data_converter.decode(started.input.payloads, [MatchInput])
    assert isinstance(match_input, MatchInput)
    return match_input
