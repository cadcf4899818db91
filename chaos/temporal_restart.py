"""Restart the Temporal server in the middle of a batch: the workers ride it out (their pollers
retry), every workflow continues from its history, and the outputs equal an undisturbed run's.

The dev server keeps its state in one SQLite file; it is stopped (SIGTERM) while activities run,
left down for a while, and started again on the same address with the same file.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from chaos.kills import compare, judged, run_batch, undisturbed
from chaos.stack import RunDir, dev_server, make_matches, pending_activities, wait_all
from polyvision.temporal.client import connect

RUN_TIMEOUT_S = 900.0
DOWNTIME_S = 10.0


async def run(work: Path, seed: int, matches: int = 2) -> dict[str, Any]:
    """The scenario; its figures."""
    rng = random.Random(seed)
    batch = make_matches(work / "synth", [seed * 100 + 10 + i for i in range(matches)])
    server = await dev_server(work / "temporal-restart")
    try:
        client = await connect(server.address, server.namespace.name)
        reference_run = RunDir(work / "restart-reference")
        reference = await undisturbed(client, reference_run, server.address, batch)

        disturbed_run = RunDir(work / "restart-disturbed")
        started = time.monotonic()
        handles, worker = await run_batch(client, disturbed_run, server.address, batch, "-dis")
        try:
            await asyncio.sleep(rng.uniform(4.0, 12.0))
            running: list[str] = []
            deadline = time.monotonic() + 30.0
            while not running and time.monotonic() < deadline:
                running = sorted(
                    {p.activity_type for p in await pending_activities(client) if p.started}
                )
                await asyncio.sleep(0.25)
            stopped_at = time.monotonic() - started
            await server.stop()
            await asyncio.sleep(DOWNTIME_S)
            await server.start(timeout=60)
            restarted_at = time.monotonic() - started
            failures = await wait_all(handles, RUN_TIMEOUT_S)
            worker_alive = worker.alive
        finally:
            worker.stop()
        finished_at = time.monotonic() - started
        disturbed = await judged(disturbed_run, batch)
    finally:
        await server.stop()

    return {
        "seed": seed,
        "matches": [m.name for m in batch],
        "stopped_after_s": round(stopped_at, 1),
        "down_for_s": round(restarted_at - stopped_at, 1),
        "running_when_stopped": running,
        "finished_after_s": round(finished_at, 1),
        "worker_survived": worker_alive,
        "workflows": len(handles),
        "workflows_completed": sum(1 for f in failures if f is None),
        "workflows_failed": [repr(f) for f in failures if f is not None],
        **compare(reference, disturbed),
    }
