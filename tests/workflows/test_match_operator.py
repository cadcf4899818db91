"""Operator controls of the match workflow: bad input fails fast, reprocess, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError

from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole, queue_names
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from programs.worker.stores import PipelineStores
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import local_pipeline_stores, requires_model
from tests.fixtures.temporal import running_worker
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput, MatchOutput, ReprocessRequest

pytestmark = requires_model


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("operator")
    generate_match(SynthConfig(seconds=4.0, width=960, height=540, seed=5), root / "long")
    generate_match(SynthConfig(seconds=2.0, width=960, height=540, seed=5), root / "short")
    return {
        "left": root / "long" / "left.mp4",
        "right": root / "long" / "right.mp4",
        "short_right": root / "short" / "right.mp4",
        "rig": root / "long" / "rig.json",
    }


@pytest_asyncio.fixture
async def stores(tmp_path: Path) -> AsyncIterator[PipelineStores]:
    async with local_pipeline_stores(tmp_path) as opened:
        yield opened


async def _start(
    client: Client,
    stores: PipelineStores,
    recordings: dict[str, Path],
    task_queue: str,
    right: str = "right",
) -> WorkflowHandle[MatchWorkflow, MatchOutput]:
    keys = {}
    for name in ("left", right, "rig"):
        keys[name] = (await stores.objects.upload_file(f"up/{name}", recordings[name])).key
    match_id = f"{right}-{task_queue}"
    return await client.start_workflow(
        MatchWorkflow.run,
        MatchInput(
            organization_id="o1",
            match_id=match_id,
            left_key=keys["left"],
            right_key=keys[right],
            rig_key=keys["rig"],
            chunk_seconds=2.0,
            task_queue_suffix=f"-{task_queue}",
        ),
        id=workflow_id_for(match_id),
        task_queue=f"polyvision-cpu-{task_queue}",
    )


def _plans(task_queue: str) -> list[QueuePlan]:
    names = queue_names(f"-{task_queue}")
    return [QueuePlan(role, names[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]


async def _wait_for_stage(
    handle: WorkflowHandle[MatchWorkflow, MatchOutput], stages: set[str], timeout_s: float
) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stage = (await handle.query(MatchWorkflow.progress)).stage
        except (WorkflowQueryFailedError, RPCError):
            stage = None  # a query can arrive before the worker's first workflow task
        if stage in stages:
            assert stage is not None
            return stage
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {stages}")


async def test_a_mismatched_pair_fails_fast_and_says_why(
    temporal_client: Client,
    task_queue: str,
    stores: PipelineStores,
    recordings: dict[str, Path],
) -> None:
    async with running_worker(
        temporal_client, _plans(task_queue), deps=WorkerDeps("w", stores=stores)
    ):
        started = time.monotonic()
        handle = await _start(temporal_client, stores, recordings, task_queue, "short_right")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        # Queries need a worker: ask while it still runs.
        assert (await handle.query(MatchWorkflow.progress)).stage == "ingest"
    assert time.monotonic() - started < 30  # not retried for minutes
    activity_error = failure.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RecordingMismatch"
    assert "frame counts differ: left 100, right 50" in cause.message


async def test_reprocess_is_validated_and_reruns_from_the_stage(
    temporal_client: Client,
    task_queue: str,
    stores: PipelineStores,
    recordings: dict[str, Path],
) -> None:
    async with running_worker(
        temporal_client, _plans(task_queue), deps=WorkerDeps("w", stores=stores)
    ):
        handle = await _start(temporal_client, stores, recordings, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update(
                names.REPROCESS_UPDATE, ReprocessRequest("colour"), result_type=str
            )
        assert "unknown stage 'colour'" in str(unknown.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await handle.execute_update(
                names.REPROCESS_UPDATE, ReprocessRequest("index"), result_type=str
            )
        assert "has not started yet" in str(early.value.cause)

        await _wait_for_stage(handle, {"vcam", "encode"}, timeout_s=120)
        answer = await handle.execute_update(
            names.REPROCESS_UPDATE, ReprocessRequest("track"), result_type=str
        )
        assert answer == "reprocessing from track"
        result = await handle.result()
    assert result.chunks == 2
    history = await handle.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled.count("track_match") == 2  # once, then again after the reprocess
    assert scheduled.count("ingest") == 1  # earlier stages are not redone
    assert await stores.objects.exists(f"orgs/o1/matches/right-{task_queue}/1/track/manifest.json")


async def test_cancel_cleans_up_the_revision(
    temporal_client: Client,
    task_queue: str,
    stores: PipelineStores,
    recordings: dict[str, Path],
) -> None:
    async with running_worker(
        temporal_client, _plans(task_queue), deps=WorkerDeps("w", stores=stores)
    ):
        handle = await _start(temporal_client, stores, recordings, task_queue)
        await _wait_for_stage(handle, {"stitch"}, timeout_s=60)
        ingest_manifest = f"orgs/o1/matches/right-{task_queue}/1/ingest/manifest.json"
        assert await stores.objects.exists(ingest_manifest)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.query(MatchWorkflow.progress)).failed == "cancelled"
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert not await stores.objects.exists(ingest_manifest)
