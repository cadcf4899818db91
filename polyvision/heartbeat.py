"""Heartbeats for activities whose pure code also runs outside Temporal (tests, scripts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity

HEARTBEAT_INTERVAL_S = 5.0
"""How often `heartbeating` beats; well inside any heartbeat timeout the workflow sets."""


def heartbeat(*details: Any) -> None:
    """Record progress when running inside an activity; do nothing otherwise."""
    if activity.in_activity():
        activity.heartbeat(*details)


@contextlib.asynccontextmanager
async def heartbeating(
    details: dict[str, Any], interval_s: float = HEARTBEAT_INTERVAL_S
) -> AsyncIterator[None]:
    """Heartbeat ``details`` every ``interval_s`` while one long call runs in a thread."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval_s)
            activity.heartbeat(details)

    task = asyncio.create_task(beat())  # the task copies the context: it is in the activity
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
