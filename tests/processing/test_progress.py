"""Progress that is true: the stage shown is the one running, stitch and detect keep their own
times, and a chunk in flight shows its frames (from its activity's heartbeats)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from temporalio import activity
from temporalio.client import Client

from activities.detect.contracts import DetectChunkInput, DetectChunkOutput
from activities.stitch.contracts import StitchChunkInput, StitchChunkOutput
from api.routes.processing import progress_view
from polyvision.settings import Settings
from processing import MatchProcessing
from programs.process import format_progress
from tests.fixtures.standin_workers import SHORT_MATCH, standin_workers
from tests.workflows.standins import StandinActivities
from workflows.types import MatchInput, MatchProgress, StageProgress

CHUNK_FRAMES = 250  # SHORT_MATCH: 30 s at 25 fps in 10 s chunks, three chunks


class HeldChunks(StandinActivities):
    """The stand-ins, with the last chunk's stitch and every detect held at a gate.

    A held activity first heartbeats how far it got, the way the real ones do: stitch
    ``{"frames_done": 50}``, detect its checkpoint and the frame it is at.
    """

    def __init__(self, stitch_gate: asyncio.Event, detect_gate: asyncio.Event) -> None:
        super().__init__(SHORT_MATCH)
        self.stitch_gate = stitch_gate
        self.detect_gate = detect_gate

    @activity.defn(name="stitch_chunk")
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        if input.chunk == 2:
            activity.heartbeat({"frames_done": 50})
            await self.stitch_gate.wait()
        return await super().stitch_chunk(input)

    @activity.defn(name="detect_chunk")
    async def detect_chunk(self, input: DetectChunkInput) -> DetectChunkOutput:
        activity.heartbeat({"frames_done": 0, "frame": 10})
        await self.detect_gate.wait()
        return await super().detect_chunk(input)


@pytest_asyncio.fixture
async def gates(
    temporal_client: Client, settings: Settings
) -> AsyncIterator[tuple[asyncio.Event, asyncio.Event]]:
    """Workers on the test's queues with the held stand-ins; the stitch and detect gates."""
    stitch_gate, detect_gate = asyncio.Event(), asyncio.Event()
    activities = HeldChunks(stitch_gate, detect_gate)
    async with standin_workers(temporal_client, settings.task_queue_suffix, activities):
        try:
            yield stitch_gate, detect_gate
        finally:
            stitch_gate.set()
            detect_gate.set()


async def _until(
    processing: MatchProcessing,
    workflow_id: str,
    run_id: str,
    check: Callable[[MatchProgress], bool],
) -> MatchProgress:
    deadline = time.monotonic() + 30
    last: MatchProgress | None = None
    while time.monotonic() < deadline:
        last = await processing.progress(workflow_id, run_id)
        if last is not None and check(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"progress never got there; last {last}")


async def test_the_stage_shown_is_the_one_running_with_its_own_times_and_frames(
    processing: MatchProcessing, gates: tuple[asyncio.Event, asyncio.Event]
) -> None:
    stitch_gate, detect_gate = gates
    match_id, org_id = str(uuid.uuid4()), str(uuid.uuid4())
    given = MatchInput(
        organization_id=org_id,
        match_id=match_id,
        left_key=f"orgs/{org_id}/uploads/u/left.mp4",
        right_key=f"orgs/{org_id}/uploads/u/right.mp4",
        rig_key=f"orgs/{org_id}/uploads/u/rig.json",
        # Every chunk's progress at once: this test steps through chunks one by one.
        progress_interval_s=0.0,
    )
    workflow_id = MatchProcessing.workflow_id(match_id)
    run_id = await processing.start(given)

    # Chunks 0 and 1 stitched, chunk 2 stitching; the detect of chunks 0 and 1 runs.
    both = await _until(
        processing,
        workflow_id,
        run_id,
        lambda p: (
            "stitch" in p.stages
            and p.stages["stitch"].done == 2
            and p.stages["stitch"].frames_done == 2 * CHUNK_FRAMES + 50
            and p.stages["detect"].frames_done == 2 * 10
        ),
    )
    assert (both.stage, both.running) == ("detect", ["stitch", "detect"])
    stitch, detect = both.stages["stitch"], both.stages["detect"]
    assert (stitch.total, stitch.frames_total) == (3, 3 * CHUNK_FRAMES)
    assert (detect.done, detect.total, detect.frames_total) == (0, 3, 3 * CHUNK_FRAMES)
    assert stitch.started_at is not None and detect.started_at is not None
    assert detect.started_at > stitch.started_at  # with the first stitched chunk, not before
    assert stitch.finished_at is None and detect.finished_at is None
    header, ingest, *lines = format_progress(both).splitlines()
    assert header == "stage: detect (running: stitch, detect)"
    assert ingest.startswith("  ingest   ######################## 1/1 ") and ingest.endswith(" s")
    assert lines[:2] == [
        "  stitch   ##################------ 2/3 chunks, 550/750 frames  running",
        "  detect   #----------------------- 0/3 chunks, 20/750 frames  running",
    ]
    view = progress_view(both)
    assert view.stage == "detect" and view.running == ["stitch", "detect"]
    assert view.stages["stitch"].running and view.stages["stitch"].frames_done == 550
    assert not view.stages["ingest"].running and view.stages["ingest"].frames_total == 0

    # Stitching ends: detect alone runs, stitch has its own end.
    stitch_gate.set()
    alone = await _until(
        processing, workflow_id, run_id, lambda p: p.stages["stitch"].finished_at is not None
    )
    assert (alone.stage, alone.running) == ("detect", ["detect"])
    assert alone.stages["stitch"].done == 3
    assert alone.stages["stitch"].frames_done == 3 * CHUNK_FRAMES
    assert alone.stages["detect"].finished_at is None

    detect_gate.set()
    output = await processing.result(workflow_id, run_id)
    assert output.chunks == 3
    done = await processing.progress(workflow_id, run_id)
    assert done is not None and (done.stage, done.running) == ("done", [])
    stitch, detect = done.stages["stitch"], done.stages["detect"]
    assert stitch.finished_at is not None and detect.finished_at is not None
    assert detect.finished_at > stitch.finished_at
    assert (stitch.started_at, stitch.finished_at) != (detect.started_at, detect.finished_at)
    assert detect.frames_done == detect.frames_total == 3 * CHUNK_FRAMES
    assert done.stages["encode"].frames_done == 3 * CHUNK_FRAMES


def test_a_progress_is_shown_stage_by_stage() -> None:
    progress = MatchProgress(
        stage="detect",
        running=["detect"],
        stages={
            "ingest": StageProgress(1, 1, 100.0, 100.25),
            "stitch": StageProgress(3, 3, 100.25, 130.0, 750, 750),
            "detect": StageProgress(1, 3, 110.0, None, 300, 750),
        },
    )
    assert format_progress(progress).splitlines() == [
        "stage: detect",
        "  ingest   ######################## 1/1    0.2 s",
        "  stitch   ######################## 3/3 chunks, 750/750 frames   29.8 s",
        "  detect   ##########-------------- 1/3 chunks, 300/750 frames  running",
        "  track    ........................",
        "  vcam     ........................",
        "  analyze  ........................",
        "  encode   ........................",
        "  index    ........................",
    ]


def test_the_runs_warnings_follow_the_stages() -> None:
    progress = MatchProgress(
        stage="ingest",
        stages={"ingest": StageProgress(1, 1, 100.0, 100.5)},
        warnings=["left and right are 4 frames apart; stitching corrects it"],
    )
    lines = format_progress(progress).splitlines()
    assert lines[-1] == "warning: left and right are 4 frames apart; stitching corrects it"
    assert lines[0] == "stage: ingest"
