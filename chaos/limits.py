"""A long match processed under lowered Temporal limits: payloads at 1/8 of the server's default
ceiling, histories at 1/25 of theirs. Payloads are references and every fan-out is batched into
child workflows (DESIGN.md), so a match must finish far inside them; the figures are the largest
payload and the longest and largest history the run made, beside the lowered limits.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from temporalio.client import Client

from chaos.stack import (
    RunDir,
    WorkerProcess,
    dev_server,
    make_matches,
    match_input,
    start_match,
    upload,
    wait_all,
)
from polyvision.temporal.client import connect

LIMITS = {
    "limit.blobSize.warn": 64 * 1024,
    "limit.blobSize.error": 256 * 1024,
    "limit.historyCount.warn": 1000,
    "limit.historyCount.error": 2048,
    "limit.historySize.warn": 1024 * 1024,
    "limit.historySize.error": 2 * 1024 * 1024,
}
MATCH_SECONDS = 24.0
CHUNK_SECONDS = 1.0
CHUNKS_PER_BATCH = 4
RUN_TIMEOUT_S = 1800.0


async def _history_sizes(client: Client) -> list[dict[str, Any]]:
    """Events, bytes and largest event of every workflow the server knows."""
    sizes = []
    async for execution in client.list_workflows():
        history = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        events = history.events
        sizes.append(
            {
                "workflow_id": execution.id,
                "events": len(events),
                "bytes": sum(event.ByteSize() for event in events),
                "largest_event_bytes": max((event.ByteSize() for event in events), default=0),
            }
        )
    return sizes


async def run(work: Path, seed: int) -> dict[str, Any]:
    """The scenario; its figures."""
    [match] = make_matches(work / "synth", [seed * 100 + 90], seconds=MATCH_SECONDS)
    run_dir = RunDir(work / "limits")
    server = await dev_server(work / "temporal-limits", dynamic_config=LIMITS)
    try:
        client = await connect(server.address, server.namespace.name)
        worker = WorkerProcess(run_dir.root, server.address, "-limits", env=run_dir.env)
        started = time.monotonic()
        try:
            input = match_input(
                match,
                await upload(run_dir, match),
                "-limits",
                chunk_seconds=CHUNK_SECONDS,
                chunks_per_batch=CHUNKS_PER_BATCH,
            )
            failures = await wait_all([await start_match(client, input)], RUN_TIMEOUT_S)
        finally:
            worker.stop()
        elapsed = time.monotonic() - started
        sizes = await _history_sizes(client)
    finally:
        await server.stop()

    longest = max(sizes, key=lambda s: s["events"])
    largest = max(sizes, key=lambda s: s["bytes"])
    return {
        "seed": seed,
        "match_seconds": MATCH_SECONDS,
        "chunks": int(MATCH_SECONDS / CHUNK_SECONDS),
        "chunks_per_batch": CHUNKS_PER_BATCH,
        "limits": LIMITS,
        "workflows": len(sizes),
        "completed": failures[0] is None,
        "failure": repr(failures[0]) if failures[0] is not None else None,
        "longest_history": {"workflow_id": longest["workflow_id"], "events": longest["events"]},
        "largest_history": {"workflow_id": largest["workflow_id"], "bytes": largest["bytes"]},
        "largest_event_bytes": max(s["largest_event_bytes"] for s in sizes),
        "elapsed_s": round(elapsed, 1),
    }
