"""The one heartbeat helper: beat progress, beat while a long call runs, resume from the last beat.

Every function also works outside Temporal (tests, scripts), where it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from temporalio import activity

HEARTBEAT_INTERVAL_S = 5.0
"""How often `heartbeating` beats at most; more often when the heartbeat timeout is short."""


def beat_interval(
    heartbeat_timeout_s: float | None, longest_s: float = HEARTBEAT_INTERVAL_S
) -> float:
    """Seconds between beats: a third of the heartbeat timeout, at most ``longest_s``.

    A beat every third of the timeout survives one lost or late beat; at exactly the timeout
    (a 5 s timeout, as the chaos suite and tests set, beaten every 5 s) every small delay timed
    the attempt out.
    """
    if heartbeat_timeout_s is None or heartbeat_timeout_s <= 0:
        return longest_s
    return min(longest_s, heartbeat_timeout_s / 3.0)


def heartbeat(*details: Any) -> None:
    """Record progress when running inside an activity; do nothing otherwise."""
    if activity.in_activity():
        activity.heartbeat(*details)


@contextlib.asynccontextmanager
async def heartbeating(
    details: dict[str, Any], interval_s: float = HEARTBEAT_INTERVAL_S
) -> AsyncIterator[None]:
    """Heartbeat ``details`` every ``interval_s`` (sooner under a short heartbeat timeout,
    `beat_interval`) while one long call runs in a thread."""
    if not activity.in_activity():
        yield
        return
    timeout = activity.info().heartbeat_timeout
    interval_s = beat_interval(timeout.total_seconds() if timeout else None, interval_s)

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


def frames_done_reporter(details: Mapping[str, Any] | None = None) -> Callable[[int], None]:
    """A progress callback a worker thread may call to heartbeat ``{"frames_done": n}``
    (with ``details`` beside it, such as the chunk a multi-chunk activity is at).

    Call it on the activity's event loop. The SDK's heartbeat of an async activity schedules a
    task on that loop, inside the activity's context, so the callback hands each beat over to
    it instead of beating from the thread.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    fixed = dict(details or {})

    def report(frames_done: int) -> None:
        beat = {**fixed, "frames_done": frames_done}
        loop.call_soon_threadsafe(heartbeat, beat, context=context)

    return report
