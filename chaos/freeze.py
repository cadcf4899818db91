"""SIGSTOP a worker in the middle of an activity: the activity is retried on another worker within
its heartbeat timeout plus 10 s, and the frozen attempt, woken after the retry finished, cannot
overwrite the newer output (`polyvision.fencing`).

A reference match runs first (one worker), which leaves a stitch chunk's exact input in its
history. That chunk is then stitched again under a new revision by a one-activity workflow
(`chaos.workflows.StitchOnceWorkflow`) on two workers polling the same queue: worker A takes the
attempt and is frozen once it reports progress; worker B is started and gets the retry. Each
worker has its own embedded analytics store (stitching writes none); both share the object store.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from activities.stitch.contracts import StitchChunkInput
from chaos.stack import (
    HEARTBEAT_TIMEOUT_S,
    ORG,
    RunDir,
    WorkerProcess,
    dev_server,
    make_matches,
    match_input,
    object_digests,
    start_match,
    upload,
    wait_all,
)
from chaos.workflows import StitchOnceInput, StitchOnceWorkflow
from polyvision.fencing import FENCE_FOLDER
from polyvision.temporal import names
from polyvision.temporal.client import connect
from workflows.match import workflow_id_for

RETRY_DEADLINE_S = HEARTBEAT_TIMEOUT_S + 10.0
"""Required: the retry starts elsewhere within the heartbeat timeout plus 10 s of the freeze."""


async def _recorded_stitch_input(client: Client, match_id: str) -> StitchChunkInput:
    """The input the reference run scheduled its first stitch chunk with."""
    child = f"{workflow_id_for(match_id)}-r1-stitch-0000"
    history = await client.get_workflow_handle(child).fetch_history()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        if attributes.activity_type.name == names.STITCH_CHUNK:
            [value] = await client.data_converter.decode(
                attributes.input.payloads, [StitchChunkInput]
            )
            assert isinstance(value, StitchChunkInput)
            return value
    raise RuntimeError(f"{child} scheduled no stitch chunk")


async def _attempt_on(
    client: Client, workflow_id: str, worker: WorkerProcess, attempt: int, within_s: float
) -> float:
    """Wait until ``attempt`` (or a later one) of the workflow's activity runs on ``worker``;
    the monotonic time it was seen, and for attempt 1 also that it reported progress."""
    deadline = time.monotonic() + within_s
    handle = client.get_workflow_handle(workflow_id)
    while time.monotonic() < deadline:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.attempt < attempt or not worker.ran(pending.last_worker_identity):
                continue
            if attempt > 1 or pending.heartbeat_details.payloads:
                return time.monotonic()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"attempt {attempt} never ran on {worker.name}: {worker.log_tail()}")


async def _outputs(run: RunDir, match_id: str, revision: int) -> dict[str, tuple[str, float]]:
    """Digest and modification time of each stitch output of chunk 0 (the manifest aside)."""
    digests = await object_digests(run, match_id, revision)
    found = {}
    async with run.objects() as objects:
        for name, digest in digests.items():
            if name.startswith("stitch/chunk-00000") and not name.endswith("manifest.json"):
                key = f"orgs/{ORG}/matches/{match_id}/{revision}/{name}"
                found[name] = (digest, (await objects.stat(key)).modified.timestamp())
    return found


async def run(work: Path, seed: int) -> dict[str, Any]:
    """The scenario; its figures."""
    [match] = make_matches(work / "synth", [seed * 100 + 50], seconds=4.0)
    run_dir = RunDir(work / "freeze")
    server = await dev_server(work / "temporal-freeze")
    workers: list[WorkerProcess] = []
    try:
        client = await connect(server.address, server.namespace.name)
        reference = WorkerProcess(run_dir.root, server.address, "-ref", name="reference")
        workers.append(reference)
        input = match_input(match, await upload(run_dir, match), "-ref", chunk_seconds=4.0)
        failures = await wait_all([await start_match(client, input)], 900)
        reference.stop()
        if failures[0] is not None:
            raise RuntimeError(f"the reference run failed: {failures[0]} {reference.log_tail()}")
        chunk = replace(await _recorded_stitch_input(client, match.name), revision=2)

        suffix = "-freeze"
        gpu_queue = f"polyvision-gpu{suffix}"
        a = run_dir.worker(
            server,
            suffix,
            queues="gpu",
            name="worker-a",
            env={"PV_ANALYTICS_URL": f"chdb://{(run_dir.root / 'analytics-a').resolve()}"},
        )
        workers.append(a)
        host_queue = f"chaos-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=host_queue, workflows=[StitchOnceWorkflow]):
            workflow_id = f"chaos-freeze-{match.name}"
            handle = await client.start_workflow(
                StitchOnceWorkflow.run,
                StitchOnceInput(chunk, gpu_queue, HEARTBEAT_TIMEOUT_S),
                id=workflow_id,
                task_queue=host_queue,
            )
            await _attempt_on(client, workflow_id, a, attempt=1, within_s=120)
            a.freeze()
            frozen_at = time.monotonic()
            b = run_dir.worker(
                server,
                suffix,
                queues="gpu",
                name="worker-b",
                env={"PV_ANALYTICS_URL": f"chdb://{(run_dir.root / 'analytics-b').resolve()}"},
            )
            workers.append(b)
            retried_at = await _attempt_on(client, workflow_id, b, attempt=2, within_s=120)
            await asyncio.wait_for(handle.result(), 300)
            newer = await _outputs(run_dir, match.name, 2)

            a.thaw()
            thawed_at = time.monotonic()
            # Give the woken attempts time to do whatever they would (finish encoding, upload,
            # write a manifest) until their heartbeat or the fence stops them.
            stale: list[dict[str, Any]] = []
            quiet_since = time.monotonic()
            while time.monotonic() - thawed_at < 60:
                ended = _ended_attempts(a)
                if ended != stale:
                    stale, quiet_since = ended, time.monotonic()
                elif stale and time.monotonic() - quiet_since > 5.0:
                    break
                await asyncio.sleep(0.5)
            after = await _outputs(run_dir, match.name, 2)
        reference_outputs = await _outputs(run_dir, match.name, 1)
        async with run_dir.objects() as objects:
            fence = [
                info.key
                async for info in objects.list_prefix(
                    f"orgs/{ORG}/matches/{match.name}/2/{FENCE_FOLDER}/"
                )
            ]
    finally:
        for worker in workers:
            if worker.alive:
                worker.thaw()
                worker.stop()
        await server.stop()

    same_as_reference = {k: v[0] for k, v in newer.items()} == {
        k: v[0] for k, v in reference_outputs.items()
    }
    return {
        "seed": seed,
        "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
        "retry_started_after_s": round(retried_at - frozen_at, 2),
        "retry_deadline_s": RETRY_DEADLINE_S,
        "retried_elsewhere_in_time": retried_at - frozen_at <= RETRY_DEADLINE_S,
        "outputs": sorted(newer),
        "outputs_equal_reference": same_as_reference,
        "outputs_unchanged_after_wake": after == newer,
        "stale_attempts": stale,
        "attempt_records": len(fence),
    }


def _ended_attempts(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The attempts ``worker`` ended without a result, and what stopped each."""
    ended = []
    for record in worker.log_events_containing("Completing activity as failed"):
        text = record.get("event", "")
        attempt = int(text.split("'attempt': ")[1].split(",")[0]) if "'attempt': " in text else 0
        exception = record.get("exception", "")
        if "StaleAttempt" in exception:
            how = "refused by the fence (a newer attempt had claimed the activity)"
        elif "CancelledError" in exception:
            how = "cancelled by its heartbeat (the server had timed it out)"
        else:
            how = exception.strip().splitlines()[-1] if exception else "failed"
        ended.append({"attempt": attempt, "stopped_by": how})
    return ended
