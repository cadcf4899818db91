"""Access to the Temporal client the lifespan put on ``app.state``."""

from __future__ import annotations

import structlog
from fastapi import FastAPI
from temporalio.client import Client

from polyvision.settings import Settings
from polyvision.temporal.client import connect

log = structlog.get_logger(__name__)


async def connect_temporal(settings: Settings) -> Client | None:
    """Connect to Temporal, or return None so the API still serves while Temporal is down.

    /readyz reports the missing connection and retries it.
    """
    try:
        return await connect(settings.temporal_address, settings.temporal_namespace)
    except Exception as exc:  # any connection failure: the API must still start
        log.warning("temporal unreachable", address=settings.temporal_address, error=str(exc))
        return None


async def temporal_client(app: FastAPI) -> Client:
    """The app's Temporal client, connecting again if the lifespan could not.

    Raises:
        RuntimeError: when Temporal still cannot be reached.
    """
    async with app.state.temporal_lock:
        if app.state.temporal is None:
            settings: Settings = app.state.settings
            app.state.temporal = await connect(
                settings.temporal_address, settings.temporal_namespace
            )
    client: Client = app.state.temporal
    return client
