"""The whole match workflow on a short synthetic match, on the real dev server and real stores."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy

from evaluation.export import export_match
from evaluation.report import run_eval
from polyvision.settings import Settings
from polyvision.temporal.queues import QueueRole, queue_names
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from programs.worker.stores import PipelineStores
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import local_pipeline_stores, requires_model
from tests.fixtures.temporal import running_worker
from workflows.match import (
    DEVICE_ID,
    MATCH_ID,
    ORGANIZATION_ID,
    PIPELINE_STAGE,
    MatchWorkflow,
    workflow_id_for,
)
from workflows.types import MatchInput

pytestmark = requires_model


@pytest.fixture(scope="module")
def match_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "match"
    generate_match(SynthConfig(seconds=4.0, width=960, height=540, seed=21), out)
    return out


@pytest_asyncio.fixture
async def stores(tmp_path: Path) -> AsyncIterator[PipelineStores]:
    async with local_pipeline_stores(tmp_path) as opened:
        yield opened


def _plans(suffix: str) -> list[QueuePlan]:
    names = queue_names(suffix)
    return [QueuePlan(role, names[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]


async def _upload(stores: PipelineStores, match_dir: Path) -> dict[str, str]:
    keys = {}
    for name in ("left.mp4", "right.mp4", "rig.json"):
        info = await stores.objects.upload_file(f"orgs/o1/uploads/m1/{name}", match_dir / name)
        keys[name] = info.key
    return keys


async def test_a_synthetic_match_goes_from_the_pair_to_hls(
    temporal_client: Client, task_queue: str, stores: PipelineStores, match_dir: Path
) -> None:
    keys = await _upload(stores, match_dir)
    match_input = MatchInput(
        organization_id="o1",
        match_id=f"m-{task_queue}",
        left_key=keys["left.mp4"],
        right_key=keys["right.mp4"],
        rig_key=keys["rig.json"],
        device_id="edge-7",
        chunk_seconds=2.0,
        panorama_scale=1.0,
        task_queue_suffix=f"-{task_queue}",
    )
    workflow_id = workflow_id_for(match_input.match_id)
    async with running_worker(
        temporal_client,
        _plans(f"-{task_queue}"),
        deps=WorkerDeps(identity="test-worker", stores=stores),
    ):
        handle = await temporal_client.start_workflow(
            MatchWorkflow.run,
            match_input,
            id=workflow_id,
            task_queue=f"polyvision-cpu-{task_queue}",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        # Starting the same match again finds the same run: harmless.
        again = await temporal_client.start_workflow(
            MatchWorkflow.run,
            match_input,
            id=workflow_id,
            task_queue=f"polyvision-cpu-{task_queue}",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert again.first_execution_run_id == handle.first_execution_run_id
        result = await handle.result()
        progress = await handle.query(MatchWorkflow.progress)

    assert result.frames == 100 and result.chunks == 2
    assert progress.stage == "done"
    for stage in ("stitch", "detect", "encode"):
        assert (progress.stages[stage].done, progress.stages[stage].total) == (2, 2), stage
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    # Operators find the run in the UI by these.
    attributes = description.typed_search_attributes
    assert attributes.get(MATCH_ID) == match_input.match_id
    assert attributes.get(ORGANIZATION_ID) == "o1"
    assert attributes.get(DEVICE_ID) == "edge-7"
    assert attributes.get(PIPELINE_STAGE) == "done"

    summary = json.loads(await stores.objects.get(result.summary_key))
    assert summary["frames"] == 100
    assert summary["tracks"] >= 10
    local = Path(stores.work_dir) / "hls"
    local.mkdir(parents=True)
    prefix = result.hls_master_key.rsplit("/", 1)[0] + "/"
    async for info in stores.objects.list_prefix(prefix):
        await stores.objects.download_file(info.key, local / info.key[len(prefix) :])
    with av.open(str(local / "media.m3u8")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1280, 720)
        assert sum(1 for _ in container.decode(stream)) == 100
    assert (local / "master.m3u8").read_text().count("#EXT-X-STREAM-INF") == 1

    # `polyvision eval --match`: the results exported from the stores, scored against the truth.
    settings = Settings(
        data_dir=stores.work_dir / "settings",
        analytics_url=f"chdb://{stores.work_dir.parent / 'analytics'}",
        objects_url=f"file://{stores.work_dir.parent / 'objects'}",
    )
    await export_match(settings, "o1", match_input.match_id, 1, stores.work_dir / "eval")
    report = run_eval(match_dir, stores.work_dir / "eval")
    assert report.tracking is not None and report.tracking.tp > 0
    assert report.position_error_m is not None and report.position_error_m < 1.0
    assert report.vcam is not None and report.vcam.ball_in_view_share is not None
    assert report.vcam.ball_in_view_share > 0.5
