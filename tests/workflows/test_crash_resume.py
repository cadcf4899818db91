"""A worker killed with SIGKILL in the middle of stitching: a new worker finishes the match, and
every output is byte-identical to an uninterrupted run's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from polyvision.storage.objects import ObjectStore, open_object_store
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import requires_model
from tests.fixtures.temporal import TemporalTestServer
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput

pytestmark = requires_model


class WorkerProcess:
    """`polyvision worker --queues all` in a child process, as an operator would run it."""

    def __init__(self, data_dir: Path, address: str, suffix: str) -> None:
        self.log = data_dir / f"worker-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "PV_DATA_DIR": str(data_dir),
            "PV_TEMPORAL_ADDRESS": address,
            "PV_WORKER_METRICS_PORT": "0",
            "PV_LOG_JSON": "true",
        }
        for name in ("PV_DATABASE_URL", "PV_ANALYTICS_URL", "PV_OBJECTS_URL"):
            env.pop(name, None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "programs.worker",
                    "--queues",
                    "all",
                    f"--task-queue-suffix={suffix}",
                    "--shutdown-timeout",
                    "5",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


async def _outputs(objects: ObjectStore, match_id: str) -> dict[str, object]:
    """What a run produced, in a form that does not mention the match id."""
    prefix = f"orgs/o1/matches/{match_id}/1/"
    stitched = {}
    for chunk in (0, 1):
        manifest = json.loads(await objects.get(f"{prefix}stitch/chunk-{chunk:05d}/manifest.json"))
        stitched[chunk] = manifest["outputs"]["output"]["sha256"]
    hls = {}
    async for info in objects.list_prefix(f"{prefix}hls/"):
        name = info.key.removeprefix(f"{prefix}hls/")
        hls[name] = info.sha256 or (await objects.stat(info.key)).sha256
    summary = json.loads(await objects.get(f"{prefix}index/summary.json"))
    for key in ("match_id", "keys", "hls_master_key", "heatmaps_key"):
        summary.pop(key, None)
    return {"stitch": stitched, "hls": hls, "summary": summary}


async def _wait_for_stitch_heartbeat(client: Client, child_id: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            description = await client.get_workflow_handle(child_id).describe()
        except Exception:  # the child is not started yet
            await asyncio.sleep(0.1)
            continue
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == "stitch_chunk" and pending.heartbeat_details.payloads:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the stitch stage never reported progress")


async def test_sigkill_mid_stitch_then_a_new_worker_gives_identical_outputs(
    temporal_server: TemporalTestServer, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    match_dir = tmp_path / "match"
    generate_match(SynthConfig(seconds=4.0, width=640, height=360, seed=33), match_dir)
    data_dir = tmp_path / "data"
    suffix = f"-{task_queue}"
    objects = open_object_store(
        f"file://{(data_dir / 'objects').resolve()}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with objects:
        keys = {}
        for name in ("left.mp4", "right.mp4", "rig.json"):
            keys[name] = (await objects.upload_file(f"uploads/{name}", match_dir / name)).key

        def match(match_id: str) -> MatchInput:
            return MatchInput(
                organization_id="o1",
                match_id=match_id,
                left_key=keys["left.mp4"],
                right_key=keys["right.mp4"],
                rig_key=keys["rig.json"],
                chunk_seconds=2.0,
                task_queue_suffix=suffix,
                heartbeat_timeout_s=5.0,
            )

        async def start(match_id: str) -> object:
            return await temporal_client.start_workflow(
                MatchWorkflow.run,
                match(match_id),
                id=workflow_id_for(match_id),
                task_queue=f"polyvision-cpu{suffix}",
            )

        # The uninterrupted run.
        worker = WorkerProcess(data_dir, temporal_server.address, suffix)
        try:
            handle = await start(f"a-{task_queue}")
            await handle.result()  # type: ignore[attr-defined]
        finally:
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
        reference = await _outputs(objects, f"a-{task_queue}")

        # The same match again; the worker dies while stitching.
        worker = WorkerProcess(data_dir, temporal_server.address, suffix)
        match_b = f"b-{task_queue}"
        handle = await start(match_b)
        child_id = f"{workflow_id_for(match_b)}-r1-stitch-0000"
        try:
            await _wait_for_stitch_heartbeat(temporal_client, child_id, deadline_s=120)
        finally:
            worker.kill()
        worker = WorkerProcess(data_dir, temporal_server.address, suffix)
        try:
            await asyncio.wait_for(handle.result(), timeout=300)  # type: ignore[attr-defined]
        finally:
            assert worker.stop() == 0, worker.log.read_text()[-3000:]
        resumed = await _outputs(objects, match_b)

    assert resumed == reference
    # The stitch really was interrupted: an attempt after the first one finished it.
    history = await temporal_client.get_workflow_handle(child_id).fetch_history()
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) >= 2, attempts
