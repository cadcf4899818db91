"""Record the workflow histories that `test_replay.py` replays: real runs on a real dev server.

Run ``python -m tests.workflows.record_histories`` from the repository root after a deliberate,
patched (``workflow.patched``) change to a workflow, or to add a history; commit the JSON it
writes under ``tests/workflows/histories/``. Re-recording is *not* the fix for a failing replay
test: a failure means running workflows would break on deploy. The committed histories are also
the replay tests of the code paths older runs took (a per-chunk ``chunk_done`` before the
``coalesced-progress`` patch, say): to add a case, record only it (``--only NAME``) and keep the
others as they are.

What it records, each file named ``{workflow_id}.json`` (the replayer needs the real workflow id:
child workflow ids are derived from it and are checked on replay):

* a MatchWorkflow run to completion on a 4 s synthetic match (2 chunks, 1 chunk per batch, so
  two children of each kind), plus its first StitchDetectBatchWorkflow and RenderBatchWorkflow;
* a MatchWorkflow run that took a ``reprocess("track")`` update mid-run;
* a MatchWorkflow run that failed on ingest (4 s left, 2 s right: non-retryable mismatch);
* a HealthCheckWorkflow run pinging the cpu and gpu queues with the GPU probe;
* a MatchWorkflow run whose children coalesce their progress signals (``coalesced``: the 4 s
  match in 1 s chunks, all four in one batch of each kind, which send `ChunksDone`), plus its
  StitchDetectBatchWorkflow and RenderBatchWorkflow.

``--only`` picks cases by name: ``completed``, ``reprocess``, ``ingest-failed``, ``health``,
``coalesced``.

Everything (dev server, SQLite metadata, file object store, chDB analytics, worker scratch) lives
in a temporary directory that is removed afterwards. It needs the detector model at
``PV_MODELS_DIR`` (default ``../shared/data/models``), like the end-to-end pipeline test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory

from polyvision.temporal import names
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.devserver import DevServer
from polyvision.temporal.names import CHUNKS_DONE_SIGNAL
from polyvision.temporal.queues import QueueRole, queue_names
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from programs.worker.stores import PipelineStores
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import MODELS_DIR, local_pipeline_stores
from tests.fixtures.temporal import running_worker
from workflows.health import HealthCheckInput, HealthCheckWorkflow
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput, ReprocessRequest

REPO = Path(__file__).resolve().parents[2]
HISTORIES_DIR = Path(__file__).resolve().parent / "histories"

# Fixed names, so a re-recording produces the same file names and the same workflow ids.
ORGANIZATION = "org-replay"
SUFFIX = "-replay"
COMPLETED = "replay-completed"
REPROCESS = "replay-reprocess"
INGEST_FAILED = "replay-ingest-failed"
COALESCED = "replay-coalesced"
HEALTH_ID = "health-replay"
CASES = ("completed", "reprocess", "ingest-failed", "health", "coalesced")

# Stages at or after track: a reprocess("track") sent then is accepted by the validator.
_TRACK_OR_LATER = ("track", "vcam", "analyze", "encode", "index")


@dataclass(frozen=True)
class Recorded:
    """One history written to disk."""

    path: Path
    events: int
    size: int


def write_histories(histories: list[WorkflowHistory], out_dir: Path) -> list[Recorded]:
    """Write each history as ``{workflow_id}.json`` (the SDK's JSON, as `temporal workflow
    show --output json` also writes it) into ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for history in histories:
        path = out_dir / f"{history.workflow_id}.json"
        # Failure stack traces name source files; keep them relative to the repository.
        text = history.to_json().replace(f"{REPO}/", "") + "\n"
        path.write_text(text)
        written.append(Recorded(path, len(history.events), len(text.encode())))
    return written


async def _upload(stores: PipelineStores, match_id: str, files: dict[str, Path]) -> dict[str, str]:
    """Upload the pair and the rig under the match's upload prefix; returns name -> key."""
    keys = {}
    for name, path in files.items():
        key = f"orgs/{ORGANIZATION}/uploads/{match_id}/{name}"
        keys[name] = (await stores.objects.upload_file(key, path)).key
    return keys


def _match_input(
    match_id: str, keys: dict[str, str], chunk_seconds: float = 2.0, chunks_per_batch: int = 1
) -> MatchInput:
    # By default 2 s chunks on a 4 s match and one chunk per batch: two children of each kind,
    # while every history stays small enough to commit.
    return MatchInput(
        organization_id=ORGANIZATION,
        match_id=match_id,
        left_key=keys["left.mp4"],
        right_key=keys["right.mp4"],
        rig_key=keys["rig.json"],
        device_id="edge-replay",
        chunk_seconds=chunk_seconds,
        chunks_per_batch=chunks_per_batch,
        panorama_scale=1.0,
        task_queue_suffix=SUFFIX,
    )


async def _start(client: Client, match_input: MatchInput) -> WorkflowHandle[MatchWorkflow, object]:
    return await client.start_workflow(
        MatchWorkflow.run,
        match_input,
        id=workflow_id_for(match_input.match_id),
        task_queue=queue_names(SUFFIX)[QueueRole.cpu],
    )


async def _reprocess_mid_run(handle: WorkflowHandle[MatchWorkflow, object]) -> str:
    """Wait until the run reaches track (or later), then ask it to redo from track.

    Raises when the run is missed: a rejected update (validator) leaves no event in the history,
    so recording one instead would add nothing to replay.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300
    stage = "?"
    while loop.time() < deadline:
        progress = await handle.query(MatchWorkflow.progress)
        stage = progress.stage
        if stage in _TRACK_OR_LATER:
            return await handle.execute_update(
                names.REPROCESS_UPDATE, ReprocessRequest("track"), result_type=str
            )
        if stage == "done" or progress.failed:
            break
        # Polling fast: track to done takes a few seconds on this match.
        await asyncio.sleep(0.05)
    raise RuntimeError(f"never caught the run at track or later (last stage {stage!r})")


async def record(cases: tuple[str, ...] = CASES) -> list[WorkflowHistory]:
    """Run the workflows of ``cases`` on a fresh dev server and fetch their histories.

    Returns:
        The histories, parent match first.
    """
    ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pv-histories-") as tmp:
        root = Path(tmp)
        full, short = root / "match-4s", root / "match-2s"
        await asyncio.gather(
            asyncio.to_thread(
                generate_match, SynthConfig(seconds=4.0, width=960, height=540, seed=21), full
            ),
            asyncio.to_thread(
                generate_match, SynthConfig(seconds=2.0, width=960, height=540, seed=22), short
            ),
        )
        config = load_namespace_config()
        async with DevServer(root / "temporal", namespace=config, headless=True) as server:
            client = await connect(server.address, config.name)
            await apply_namespace(client, config)
            names = queue_names(SUFFIX)
            plans = [QueuePlan(role, names[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]
            async with (
                local_pipeline_stores(root / "stores") as stores,
                running_worker(
                    client, plans, deps=WorkerDeps(identity="replay-recorder", stores=stores)
                ),
            ):
                pair = {name: full / name for name in ("left.mp4", "right.mp4", "rig.json")}

                if "completed" in cases:
                    # One clean run: the parent and one child of each kind.
                    completed = await _start(
                        client, _match_input(COMPLETED, await _upload(stores, COMPLETED, pair))
                    )
                    await completed.result()
                    parent = workflow_id_for(COMPLETED)
                    ids += [parent, f"{parent}-r1-stitch-0000", f"{parent}-r1-render-0000"]

                if "reprocess" in cases:
                    # A run that was told mid-way to redo from track.
                    reprocessed = await _start(
                        client, _match_input(REPROCESS, await _upload(stores, REPROCESS, pair))
                    )
                    print("reprocess update:", await _reprocess_mid_run(reprocessed))
                    await reprocessed.result()
                    ids.append(workflow_id_for(REPROCESS))

                if "ingest-failed" in cases:
                    # A mismatched pair (4 s left, 2 s right) fails ingest at once, no retries.
                    mismatched = {**pair, "right.mp4": short / "right.mp4"}
                    failed = await _start(
                        client,
                        _match_input(
                            INGEST_FAILED, await _upload(stores, INGEST_FAILED, mismatched)
                        ),
                    )
                    try:
                        await failed.result()
                    except WorkflowFailureError as err:
                        print("ingest failed as intended:", err.cause)
                    else:
                        raise RuntimeError("the mismatched pair did not fail the match")
                    ids.append(workflow_id_for(INGEST_FAILED))

                if "health" in cases:
                    health = await client.start_workflow(
                        HealthCheckWorkflow.run,
                        HealthCheckInput(
                            queues=[names[QueueRole.cpu], names[QueueRole.gpu]],
                            gpu_probe_queue=names[QueueRole.gpu],
                            timeout=timedelta(seconds=30),
                        ),
                        id=HEALTH_ID,
                        task_queue=names[QueueRole.cpu],
                    )
                    await health.result()
                    ids.append(HEALTH_ID)

                if "coalesced" in cases:
                    # Four 1 s chunks in one batch of each kind: the first chunk of a stage is
                    # sent alone, the others together (`ChunksDone`).
                    coalesced = await _start(
                        client,
                        _match_input(
                            COALESCED,
                            await _upload(stores, COALESCED, pair),
                            chunk_seconds=1.0,
                            chunks_per_batch=4,
                        ),
                    )
                    await coalesced.result()
                    parent = workflow_id_for(COALESCED)
                    ids += [parent, f"{parent}-r1-stitch-0000", f"{parent}-r1-render-0000"]

            histories = [
                await client.get_workflow_handle(workflow_id).fetch_history() for workflow_id in ids
            ]
    _check({history.workflow_id: history for history in histories})
    return histories


def _check(histories: dict[str, WorkflowHistory]) -> None:
    """Fail the recording when a history does not show what it is meant to show."""
    if workflow_id_for(REPROCESS) in histories:
        reprocess = [event.event_type for event in histories[workflow_id_for(REPROCESS)].events]
        if EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED not in reprocess:
            raise RuntimeError("the reprocess history has no completed update")
    if workflow_id_for(INGEST_FAILED) in histories:
        failed = histories[workflow_id_for(INGEST_FAILED)].events[-1]
        if failed.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            raise RuntimeError("the ingest-failed history does not end in a failure")
    if workflow_id_for(COALESCED) in histories:
        signals = [
            event.workflow_execution_signaled_event_attributes
            for event in histories[workflow_id_for(COALESCED)].events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        if {signal.signal_name for signal in signals} != {CHUNKS_DONE_SIGNAL}:
            raise RuntimeError("the coalesced run's parent did not get only chunks_done signals")
        if len(signals) >= 3 * 4:
            raise RuntimeError(f"the coalesced run sent {len(signals)} signals: none coalesced")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HISTORIES_DIR, help="output directory")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="record only these cases (the others' committed histories stay as they are)",
    )
    args = parser.parse_args(argv)
    if not (MODELS_DIR / "yolox_nano.onnx").exists():
        parser.error(f"yolox_nano.onnx not found in {MODELS_DIR} (set PV_MODELS_DIR)")
    started = time.monotonic()
    written = write_histories(asyncio.run(record(tuple(args.only))), args.out)
    for item in written:
        print(f"{item.path}: {item.events} events, {item.size} bytes")
    print(f"recorded in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
