"""The one heartbeat helper: beat progress, beat while a long call runs, resume from the last beat.

Every function also works outside Temporal (tests, scripts), where it does nothing.
"""

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


def resume_details() -> dict[str, Any] | None:
    """What the previous attempt's last heartbeat recorded (a dict), or None.

    None outside an activity, on a first attempt, or when the details are not one dict (an
    older layout): the activity then starts from the beginning.
    """
    if not activity.in_activity():
        return None
    details = activity.info().heartbeat_details
    if details and isinstance(details[0], dict):
        return dict(details[0])
    return None
