"""SIGKILL the worker at random points of random stages, many times over a batch of matches.

One worker process runs at a time (the embedded analytics store admits one process): it is
killed with SIGKILL at a seeded random moment while an activity runs, and a new one is started at
once, as an orchestrator would. When the kills are done the batch runs to the end. Judged against
an undisturbed run of the same recordings: every workflow completed, every stored object and
every analytics row identical (so nothing lost and nothing duplicated).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.client import Client

from chaos.stack import (
    RunDir,
    SynthMatch,
    WorkerProcess,
    analytics_digests,
    dev_server,
    differences,
    make_matches,
    match_input,
    object_digests,
    pending_activities,
    start_match,
    upload,
    wait_all,
)
from polyvision.temporal import names
from polyvision.temporal.client import connect

RUN_TIMEOUT_S = 1200.0
STAGES = (
    names.INGEST,
    names.STITCH_PREPARE,
    names.STITCH_CHUNK,
    names.DETECT_CHUNK,
    names.TRACK_MATCH,
    names.VCAM_PLAN,
    names.VCAM_RENDER,
    names.ANALYZE_MATCH,
    names.MINIMAP_RENDER,
    names.PACKAGE_HLS,
    names.INDEX_MATCH,
)
"""The match's stages in the order they first run; kills are aimed at random ones of these."""


async def run_batch(
    client: Client, run: RunDir, server_address: str, matches: list[SynthMatch], suffix: str
) -> tuple[list[Any], WorkerProcess]:
    """Upload the batch, start one worker and every match workflow; the handles and worker."""
    inputs = [match_input(m, await upload(run, m), suffix) for m in matches]
    worker = WorkerProcess(run.root, server_address, suffix, env=run.env)
    handles = [await start_match(client, i) for i in inputs]
    return handles, worker


async def undisturbed(
    client: Client, run: RunDir, server_address: str, matches: list[SynthMatch]
) -> dict[str, Any]:
    """The reference every scenario compares with: the batch run with nothing disturbed,
    judged (`judged`)."""
    handles, worker = await run_batch(client, run, server_address, matches, "-ref")
    try:
        failures = await wait_all(handles, RUN_TIMEOUT_S)
    finally:
        worker.stop()
    if any(failures):
        raise RuntimeError(f"the undisturbed run failed: {failures} {worker.log_tail()}")
    return await judged(run, matches)


async def judged(run: RunDir, matches: list[SynthMatch]) -> dict[str, Any]:
    """What a finished run stored: object digests per match and analytics rows per table."""
    return {
        "objects": {m.name: await object_digests(run, m.name) for m in matches},
        "rows": await asyncio.to_thread(analytics_digests, run),
    }


def compare(reference: dict[str, Any], disturbed: dict[str, Any]) -> dict[str, Any]:
    """Objects and rows that differ, and rows duplicated (more rows than the reference)."""
    object_diffs = {
        name: differences(reference["objects"][name], disturbed["objects"].get(name, {}))
        for name in reference["objects"]
    }
    row_diffs = []
    duplicated = []
    for table, per_match in reference["rows"].items():
        other = disturbed["rows"].get(table, {})
        for match in set(per_match) | set(other):
            want, got = per_match.get(match, [0, 0]), other.get(match, [0, 0])
            if want != got:
                row_diffs.append(f"{table}/{match}: {want} vs {got}")
            if got[0] > want[0]:
                duplicated.append(f"{table}/{match}: {got[0]} rows, {want[0]} expected")
    return {
        "objects_compared": sum(len(v) for v in reference["objects"].values()),
        "object_differences": {k: v for k, v in object_diffs.items() if v},
        "row_tables_compared": len(reference["rows"]),
        "rows_compared": sum(v[0] for t in reference["rows"].values() for v in t.values()),
        "row_differences": row_diffs,
        "rows_duplicated": duplicated,
    }


async def _running_on(client: Client, worker: WorkerProcess) -> list[str]:
    return sorted(
        p.activity_type
        for p in await pending_activities(client)
        if p.started and worker.ran(p.worker_identity)
    )


async def _kill_at_random(
    client: Client, worker: WorkerProcess, rng: random.Random, handles: list[Any], target: str
) -> list[str] | None:
    """Once ``worker`` runs the ``target`` stage (or a later one), wait a random moment and
    SIGKILL it there; if that stage never comes within a while, kill it wherever it is.

    Returns the activity types running on it when it died (empty: between two tasks), or None
    when the batch finished first (nothing was killed).
    """
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        running = await _running_on(client, worker)
        if any(STAGES.index(r) >= STAGES.index(target) for r in running if r in STAGES):
            break
        if all([await _done(h) for h in handles]):
            return None
        await asyncio.sleep(0.2)
    await asyncio.sleep(rng.uniform(0.2, 2.5))
    if all([await _done(h) for h in handles]):
        return None
    running = await _running_on(client, worker)
    worker.kill()
    return running


async def run(work: Path, seed: int, kills: int = 20, matches: int = 3) -> dict[str, Any]:
    """The scenario; its figures."""
    rng = random.Random(seed)
    batch = make_matches(work / "synth", [seed * 100 + i for i in range(matches)], seconds=6.0)
    server = await dev_server(work / "temporal")
    try:
        client = await connect(server.address, server.namespace.name)
        started = time.monotonic()
        reference = await undisturbed(client, RunDir(work / "reference"), server.address, batch)
        reference_s = time.monotonic() - started

        started = time.monotonic()
        disturbed_run = RunDir(work / "disturbed")
        handles, worker = await run_batch(client, disturbed_run, server.address, batch, "-dis")
        hit: list[list[str]] = []
        targets: list[str] = []
        try:
            # Aimed at random stages, in pipeline order so the batch moves on between kills.
            targets = sorted((rng.choice(STAGES[:-1]) for _ in range(kills)), key=STAGES.index)
            for target in targets:
                running = await _kill_at_random(client, worker, rng, handles, target)
                if running is None:
                    break
                hit.append(running)
                worker = WorkerProcess(
                    disturbed_run.root, server.address, "-dis", env=disturbed_run.env
                )
            failures = await wait_all(handles, RUN_TIMEOUT_S)
        finally:
            worker.stop()
        disturbed_s = time.monotonic() - started
        disturbed = await judged(disturbed_run, batch)
    finally:
        await server.stop()

    stages = Counter(stage for stages_hit in hit for stage in stages_hit)
    return {
        "seed": seed,
        "matches": [m.name for m in batch],
        "match_seconds": batch[0].config.seconds,
        "kills": len(hit),
        "kills_during_an_activity": sum(1 for h in hit if h),
        "stages_aimed_at": dict(Counter(targets)),
        "stages_hit": dict(sorted(stages.items())),
        "workflows": len(handles),
        "workflows_completed": sum(1 for f in failures if f is None),
        "workflows_failed": [repr(f) for f in failures if f is not None],
        "reference_s": round(reference_s, 1),
        "disturbed_s": round(disturbed_s, 1),
        **compare(reference, disturbed),
    }


async def _done(handle: Any) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    status = (await handle.describe()).status
    return bool(status != WorkflowExecutionStatus.RUNNING)
