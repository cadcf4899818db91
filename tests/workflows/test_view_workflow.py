"""The view workflow: a processed match's camera rendered again, reusing everything before it.

Real Temporal dev server, the real `MatchViewWorkflow` and `RenderBatchWorkflow`, the real
`view_sources` and `package_hls` activities over a real file object store. The revision they
reuse is laid out as a finished run leaves it (`tests.workflows.view_standins`: the stages'
manifests, the panorama chunks, the match's own camera and HLS); only the camera's planning and
rendering are stand-ins at the Temporal boundary, writing real objects where `activities.vcam`
writes them for a view (the path, and a real H.264 chunk each, which the real packager remuxes).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from activities.vcam.contracts import (
    DEFAULT_VIEW_SIZE,
    CameraSettings,
    VcamPlanInput,
    VcamPlanOutput,
)
from polyvision.settings import Settings
from polyvision.storage.objects import ObjectStore, open_object_store
from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole, queue_names
from processing import MatchProcessing, ViewRunning
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from tests.fixtures.pipeline import requires_model
from tests.fixtures.processed_match import ProcessedMatch
from tests.fixtures.standin_workers import SHORT_MATCH, standin_workers
from tests.fixtures.temporal import running_worker
from tests.workflows.standins import StandinActivities
from tests.workflows.view_standins import (
    FPS,
    REVISION,
    Calls,
    CameraStandins,
    processed_revision,
    revision_key,
    view_workers,
)
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput, ViewInput, ViewOutput

ORG = "o1"
ZONES = CameraSettings(mode="zones", params={"smoothing_s": 1.5}, causal=True)
ZONE_MODE = CameraSettings(mode="zones", params={"pan_speed": 0.8})


# --- fixtures --------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def gate() -> asyncio.Event:
    opened = asyncio.Event()
    opened.set()
    return opened


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def processing(temporal_client: Client, task_queue: str, tmp_path: Path) -> MatchProcessing:
    settings = Settings(data_dir=tmp_path / "pv", task_queue_suffix=f"-{task_queue}")
    return MatchProcessing(temporal_client, settings)


@pytest_asyncio.fixture
async def workers(
    temporal_client: Client,
    processing: MatchProcessing,
    objects: ObjectStore,
    calls: Calls,
    gate: asyncio.Event,
) -> AsyncIterator[None]:
    """The view workflow and its children, the real sources and packaging, the camera
    stand-ins (`view_workers`)."""
    camera = CameraStandins(objects, calls, gate)
    suffix = processing.settings.task_queue_suffix
    async with view_workers(temporal_client, suffix, objects, camera):
        try:
            yield
        finally:
            gate.set()  # a rendering still waiting would hold the worker's shutdown


def _view_input(
    match_id: str, view: str = "zones-test", camera: CameraSettings = ZONES
) -> ViewInput:
    # Progress at once per chunk (0 s): the test reads the counts when the run is done.
    return ViewInput(ORG, match_id, REVISION, view, camera, progress_interval_s=0.0)


async def _scheduled(client: Client, workflow_id: str) -> tuple[list[str], list[str]]:
    """The activity and child workflow types a run scheduled."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    activities, children = [], []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            attributes = event.start_child_workflow_execution_initiated_event_attributes
            children.append(attributes.workflow_id)
    return activities, children


async def _keys(objects: ObjectStore, prefix: str) -> list[str]:
    return sorted([info.key.removeprefix(prefix) async for info in objects.list_prefix(prefix)])


# --- tests -------------------------------------------------------------------------------------


async def test_only_the_camera_is_planned_rendered_and_packaged_again(
    temporal_client: Client,
    processing: MatchProcessing,
    objects: ObjectStore,
    workers: None,
    calls: Calls,
    tmp_path: Path,
) -> None:
    match_id = f"m-{uuid.uuid4().hex[:8]}"
    await processed_revision(objects, ORG, match_id)
    run_id = await processing.start_view(_view_input(match_id))
    workflow_id = processing.view_workflow_id(match_id, "zones-test")
    assert workflow_id == f"{workflow_id_for(match_id)}-view-zones-test"
    output: ViewOutput = await processing.view_result(workflow_id, run_id)

    # Reused: the chunk plan, the panorama model and chunks; asked for: the camera settings.
    (plan,) = calls.plans
    assert (plan.camera, plan.view, plan.fps) == (ZONES, "zones-test", FPS)
    assert plan.panorama_model_key == revision_key(ORG, match_id, "stitch", "panorama.json")
    assert [(c.chunk, c.first_frame, c.frames) for c in plan.chunks] == [(0, 0, 25), (1, 25, 20)]
    renders = sorted(calls.renders, key=lambda r: r.chunk)
    assert [r.panorama_video_key for r in renders] == [
        revision_key(ORG, match_id, "stitch", "chunk-00000.mp4"),
        revision_key(ORG, match_id, "stitch", "chunk-00001.mp4"),
    ]
    assert {r.view for r in renders} == {"zones-test"}
    assert {r.path_key for r in renders} == {output.path_key}

    # Nothing but the sources, the plan, the rendering children and the package ran.
    activities, children = await _scheduled(temporal_client, workflow_id)
    assert activities == [names.VIEW_SOURCES, names.VCAM_PLAN, names.PACKAGE_HLS]
    assert children == [f"{workflow_id}-render-0000"]
    child_activities, grandchildren = await _scheduled(temporal_client, children[0])
    assert child_activities == [names.VCAM_RENDER] * 2 and grandchildren == []

    # The outputs are the view's own, beside the match's untouched ones.
    views = f"orgs/{ORG}/matches/{match_id}/{REVISION}/"
    assert output.path_key == views + "vcam/views/zones-test/path.parquet"
    assert output.hls_master_key == views + "hls/views/zones-test/master.m3u8"
    assert (output.view, output.revision, output.frames, output.chunks) == (
        "zones-test",
        REVISION,
        45,
        2,
    )
    assert await _keys(objects, views + "vcam/views/zones-test/") == [
        "chunk-00000.mp4",
        "chunk-00001.mp4",
        "path.parquet",
    ]
    published = await _keys(objects, views + "hls/views/zones-test/")
    assert published == ["init.mp4", "master.m3u8", "media.m3u8", "seg_00000.m4s", "seg_00001.m4s"]
    assert await objects.exists(views + "encode/views/zones-test/manifest.json")
    assert await objects.get(views + "vcam/path.parquet") == b"the match's own path"
    assert await objects.get(views + "hls/master.m3u8") == b"#EXTM3U\n"

    # The view plays: every frame of both chunks, in order.
    local = tmp_path / "hls"
    local.mkdir()
    for name in published:
        await objects.download_file(views + "hls/views/zones-test/" + name, local / name)
    with av.open(str(local / "media.m3u8")) as container:
        levels = [int(np.median(f.to_ndarray(format="gray"))) for f in container.decode(video=0)]
    assert len(levels) == 45
    assert all(abs(level - 5 * i % 256) <= 3 for i, level in enumerate(levels[:50]))

    progress = await processing.progress(workflow_id, run_id)
    assert progress is not None and progress.stage == "done" and progress.running == []
    assert (progress.stages["encode"].done, progress.stages["encode"].total) == (2, 2)
    assert progress.stages["vcam"].finished_at is not None


async def test_the_same_view_is_refused_while_it_renders_then_may_be_asked_again(
    processing: MatchProcessing,
    objects: ObjectStore,
    workers: None,
    calls: Calls,
    gate: asyncio.Event,
) -> None:
    match_id = f"m-{uuid.uuid4().hex[:8]}"
    await processed_revision(objects, ORG, match_id)
    gate.clear()  # the rendering waits
    first = await processing.start_view(_view_input(match_id))
    for _ in range(200):
        if calls.renders:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(ViewRunning) as refused:
        await processing.start_view(_view_input(match_id))
    assert refused.value.run_id == first
    assert "being rendered now" in str(refused.value)
    # Another view of the same match is another workflow: it starts.
    other = _view_input(match_id, "centered-test", CameraSettings(mode="centered"))
    other_run = await processing.start_view(other)
    gate.set()
    workflow_id = processing.view_workflow_id(match_id, "zones-test")
    await processing.view_result(workflow_id, first)
    other_id = processing.view_workflow_id(match_id, "centered-test")
    assert (await processing.view_result(other_id, other_run)).view == "centered-test"

    again = await processing.start_view(_view_input(match_id))
    assert again != first
    output = await processing.view_result(workflow_id, again)
    assert output.hls_master_key.endswith("/hls/views/zones-test/master.m3u8")


async def test_a_revision_that_did_not_finish_is_refused_at_once(
    processing: MatchProcessing, objects: ObjectStore, workers: None, calls: Calls
) -> None:
    match_id = f"m-{uuid.uuid4().hex[:8]}"
    await processed_revision(objects, ORG, match_id, indexed=False)
    run_id = await processing.start_view(_view_input(match_id))
    workflow_id = processing.view_workflow_id(match_id, "zones-test")
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(processing.view_result(workflow_id, run_id), timeout=30)
    assert isinstance(failed.value.cause, ActivityError)
    cause = failed.value.cause.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RevisionNotProcessed"
    assert "has no index output" in cause.message
    assert calls.plans == [] and calls.renders == []


async def test_an_unknown_mode_fails_without_scheduling_anything(
    temporal_client: Client, processing: MatchProcessing, objects: ObjectStore, workers: None
) -> None:
    match_id = f"m-{uuid.uuid4().hex[:8]}"
    run_id = await processing.start_view(
        _view_input(match_id, "bad", CameraSettings(mode="fisheye"))
    )
    workflow_id = processing.view_workflow_id(match_id, "bad")
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(processing.view_result(workflow_id, run_id), timeout=30)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidView"
    assert (await _scheduled(temporal_client, workflow_id)) == ([], [])


class PlanRecorder(StandinActivities):
    """The stand-ins, recording what the match workflow asks its planner."""

    plans: list[VcamPlanInput]

    @activity.defn(name=names.VCAM_PLAN)
    async def vcam_plan(self, input: VcamPlanInput) -> VcamPlanOutput:
        """Record, then answer like the stand-in."""
        self.plans.append(input)
        return await super().vcam_plan(input)


async def test_the_match_workflow_plans_its_own_camera_with_the_match_s_settings(
    temporal_client: Client, task_queue: str
) -> None:
    recorder = PlanRecorder(SHORT_MATCH)
    recorder.plans = []
    suffix = f"-{task_queue}"
    async with standin_workers(temporal_client, suffix, recorder):
        await temporal_client.execute_workflow(
            MatchWorkflow.run,
            MatchInput(
                organization_id=ORG,
                match_id=task_queue,
                left_key="up/left.mp4",
                right_key="up/right.mp4",
                rig_key="up/rig.json",
                task_queue_suffix=suffix,
                camera=ZONES,
            ),
            id=workflow_id_for(task_queue),
            task_queue=queue_names(suffix)[QueueRole.cpu],
        )
    (plan,) = recorder.plans
    assert (plan.camera, plan.view) == (ZONES, "")


@requires_model
async def test_a_view_of_the_processed_match_with_the_real_stages(
    processed_match: ProcessedMatch, temporal_client: Client, tmp_path: Path
) -> None:
    """The session's processed match (real stages, real stores) rendered again in Zones mode:
    the real planner and renderer write the view's own path and chunks, the real packager its
    own stream, and the match's own outputs stay as they were.

    Runs after `test_match_pipeline` reads the match's ``hls/`` folder (file order), as the
    view adds a ``views/`` folder inside it.
    """
    settings = processed_match.settings()
    processing = MatchProcessing(temporal_client, settings)
    match = processed_match.match_input
    revision = processed_match.output.revision
    prefix = f"orgs/{match.organization_id}/matches/{match.match_id}/{revision}/"
    queues = queue_names(settings.task_queue_suffix)
    plans = [QueuePlan(role, queues[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]
    async with processed_match.stores() as stores:
        own = {
            key: (await stores.objects.stat(prefix + key)).sha256
            for key in ("vcam/path.parquet", "vcam/1080p/chunk-00000.mp4", "hls/master.m3u8")
        }
        view = ViewInput(match.organization_id, match.match_id, revision, "zones-e2e", ZONE_MODE)
        deps = WorkerDeps(identity="view-worker", stores=stores)
        view_prefix = prefix + "hls/views/zones-e2e/"
        async with running_worker(temporal_client, plans, deps=deps):
            run_id = await processing.start_view(view)
            workflow_id = processing.view_workflow_id(match.match_id, "zones-e2e")
            output = await processing.view_result(workflow_id, run_id)
            first = {
                info.key: (info.sha256, info.modified)
                async for info in stores.objects.list_prefix(view_prefix)
            }
            # Asked for again once finished: a new run, answered by the stages' manifests,
            # so nothing published under the view's keys is written again.
            again = await processing.start_view(view)
            assert again != run_id
            assert await processing.view_result(workflow_id, again) == output
            assert {
                info.key: (info.sha256, info.modified)
                async for info in stores.objects.list_prefix(view_prefix)
            } == first
        assert output.path_key == prefix + "vcam/views/zones-e2e/path.parquet"
        assert output.hls_master_key == prefix + "hls/views/zones-e2e/master.m3u8"
        assert (output.frames, output.chunks) == (100, 2)
        rendered = await _keys(stores.objects, prefix + "vcam/views/zones-e2e/")
        # The whole ladder, rendered once per chunk.
        assert {
            f"{rung}/chunk-{chunk:05d}.mp4"
            for rung in ("1080p", "720p", "480p")
            for chunk in (0, 1)
        } | {"path.parquet"} <= set(rendered)
        published = await _keys(stores.objects, prefix + "hls/views/zones-e2e/")
        assert {"master.m3u8", "manifest.mpd", "1080p/media.m3u8", "480p/iframes.m3u8"} <= set(
            published
        )
        local = tmp_path / "hls"
        for name in published:
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            await stores.objects.download_file(prefix + "hls/views/zones-e2e/" + name, local / name)
        for key, sha256 in own.items():
            assert (await stores.objects.stat(prefix + key)).sha256 == sha256, key
    activities, children = await _scheduled(temporal_client, workflow_id)
    assert activities == [names.VIEW_SOURCES, names.VCAM_PLAN, names.PACKAGE_HLS]
    (child,) = children
    assert (await _scheduled(temporal_client, child)) == ([names.VCAM_RENDER] * 2, [])
    with av.open(str(local / "1080p" / "media.m3u8")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == DEFAULT_VIEW_SIZE
        assert sum(1 for _ in container.decode(stream)) == 100
