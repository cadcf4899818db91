"""The live API fixture of the edge agent's integration tests (machinery in
`tests.fixtures.live_api`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory
from tests.fixtures.live_api import LiveApi, live_settings, serving_api
from tests.fixtures.temporal import TemporalTestServer


@pytest_asyncio.fixture
async def live_api(
    tmp_path: Path, temporal_server: TemporalTestServer, temporal_client: Client
) -> AsyncIterator[LiveApi]:
    """The API on a free port; match workflows it starts go to a task queue nobody polls, and
    are terminated at the end."""
    settings = live_settings(tmp_path / "pv", temporal_server, f"-edge-{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade_stores, settings)
    async with serving_api(settings) as (app, log):
        live = LiveApi(settings.api_public_url, app, settings, log, Factory(app), temporal_client)
        try:
            yield live
        finally:
            for workflow_id in live.workflows:
                with contextlib.suppress(RPCError):
                    await temporal_client.get_workflow_handle(workflow_id).terminate(
                        "edge test done"
                    )
