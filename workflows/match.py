"""MatchWorkflow: one long-running workflow per match, from the uploaded pair to HLS.

Orchestration only: no I/O, nothing heavy imported (activities are called by their names in
`polyvision.temporal.names` with the stages' light contract types). The per-chunk stages run in
child workflows, one per batch of chunks, so that no history comes near Temporal's limits on a
long match; the children tell the parent which chunks finished a stage, which feeds the
`progress` query. They coalesce those signals (`ChunksDone`, at most one per stage every
`PROGRESS_INTERVAL_S` and always for a batch's last chunk) so that a long match, reprocessed,
still leaves the parent's history far from Temporal's limits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.workflow import ExternalWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from activities.analyze.contracts import AnalyzeInput, AnalyzeOutput
    from activities.detect.contracts import DetectChunkInput, DetectChunkOutput
    from activities.encode.contracts import PackageInput, PackageOutput
    from activities.index.contracts import CleanupInput, IndexInput, IndexOutput
    from activities.ingest.contracts import ChunkPlan, IngestInput, IngestOutput
    from activities.minimap.contracts import MinimapInput, MinimapOutput
    from activities.stitch.contracts import (
        StitchChunkInput,
        StitchChunkOutput,
        StitchPrepareInput,
        StitchPrepareOutput,
    )
    from activities.track.contracts import TrackInput, TrackOutput
    from activities.vcam.contracts import (
        VcamPlanInput,
        VcamPlanOutput,
        VcamRenderInput,
        VcamRenderOutput,
    )
    from polyvision.artifacts import ChunkSpan
    from polyvision.temporal import names
    from polyvision.temporal.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE
    from polyvision.temporal.search_attributes import (
        DEVICE_ID,
        MATCH_ID,
        ORGANIZATION_ID,
        PIPELINE_STAGE,
    )
    from workflows.types import (
        STAGES,
        MatchInput,
        MatchOutput,
        MatchProgress,
        ReprocessRequest,
        StageProgress,
    )

# Bad input fails at once; everything else (a worker crash, a store hiccup) is retried.
NON_RETRYABLE = ["RecordingMismatch", "InvalidRecording", "ModelNotFound", "PanoramaError"]
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE,
)

# Which step of the run re-executes a stage (stitch and detect share one child per batch;
# vcam rendering and analyze run side by side).
STEP_OF_STAGE = {
    "ingest": 0,
    "stitch": 1,
    "detect": 1,
    "track": 2,
    "vcam": 3,
    "analyze": 3,
    "encode": 4,
    "index": 5,
}


def failure_reason(stage: str, error: BaseException) -> str:
    """`MatchProgress.failed` of a run that failed at ``stage``: the stage and what failed
    there, e.g. ``ingest: RecordingMismatch``.

    Only the failure's type, never its message: messages come from the workers and are the
    API status's ``failure``.
    """
    kind = type(error).__name__
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ApplicationError):
            kind = current.type or kind
        elif isinstance(current, TemporalTimeoutError):
            kind = "timed out"
        current = current.__cause__
    return f"{stage}: {kind}"


def workflow_id_for(match_id: str) -> str:
    """The id of a match's workflow: starting the same match twice finds the same workflow."""
    return names.match_workflow_id(match_id)


# Progress signals from the batch children, coalesced (behind `COALESCED_PROGRESS_PATCH`).
#
# Every signal costs the parent a signal event and, at worst, a workflow task of its own (three
# more events); one per chunk and stage is 2,160 signals a pass on a 120-minute match in 10 s
# chunks, about 8,600 events at worst: two reprocesses would take the history past Temporal's
# warning. A child therefore sends the chunks of a stage that finished within
# `PROGRESS_INTERVAL_S` of its last signal for that stage together, in one `ChunksDone`: the
# first chunk at once (detect's start time is the first stitched chunk's), the batch's last one
# at once (the parent never waits on a buffered chunk, and stitch and detect end on time), and
# the ones in between at most that much later (a timer in the child sends what is buffered).
#
# 30 s by default (a match may set `MatchInput.progress_interval_s`), progress freshness against
# history: a finished chunk shows in the counts at most 30 s late, nothing beside a stage that
# takes minutes to hours, and far inside the 10 min a watcher waits before calling processing
# stalled (the frames of the chunks in flight, read from their heartbeats, are 5 s fresh: the
# frame count may hold back by a chunk for up to a window). A batch whose chunks finish t seconds
# apart sends about one signal per 30 / t chunks (a GPU doing a stage of a 10 s chunk in 3 s: one
# per ten); chunks more than 30 s apart go one by one, as before, at one signal per chunk and
# stage at most (no window can merge chunks that do not finish together without holding progress
# back longer).
PROGRESS_INTERVAL_S = MatchInput.progress_interval_s
COALESCED_PROGRESS_PATCH = "coalesced-progress"
"""Patch id: batch children started before coalescing replay their `ChunkDone` per chunk."""
RENDER_BY_ENCODER_PATCH = "render-queue-by-encoder"
"""Patch id: renders (the whole ladder in one pass) go to the nvenc or cpu queue, with a
keyframe every `SEGMENT_SECONDS`; children started before the ladder rendered on gpu."""
MINIMAP_PATCH = "minimap"
"""Patch id: after analyze the match is drawn from above (`names.MINIMAP_RENDER`) and packaged
as the minimap rendition; runs started before had no minimap."""
SEGMENT_SECONDS = 2.0
"""Length of the published media segments (and of the renditions' closed GOPs), seconds."""


@dataclass
class ChunkDone:
    """Signal from a batch child: ``chunk`` finished ``stage``.

    What children started before the ``coalesced-progress`` patch send, one per chunk; the
    parent keeps its handler for them.
    """

    stage: str
    chunk: int


@dataclass
class ChunksDone:
    """Signal from a batch child: ``chunks`` finished ``stage`` (coalesced `ChunkDone`s)."""

    stage: str
    chunks: list[int]


class ProgressSignals:
    """A batch child's progress signals to its parent, one per chunk or coalesced.

    Args:
        parent: The match workflow.
        chunks: Chunks in the batch: each stage's last one is sent at once.
        coalesce: Whether to coalesce (`COALESCED_PROGRESS_PATCH`); if not, one `ChunkDone`
            per chunk, awaited, as children sent before the patch.
        interval_s: How long finished chunks may be held back (`PROGRESS_INTERVAL_S`).
    """

    def __init__(
        self,
        parent: ExternalWorkflowHandle[Any],
        chunks: int,
        coalesce: bool,
        interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self._parent = parent
        self._interval_s = interval_s
        self._chunks = chunks
        self._coalesce = coalesce
        self._buffered: dict[str, list[int]] = {}
        self._finished: dict[str, int] = {}
        self._sent_at: dict[str, float] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}  # per stage, while it sleeps
        self._tasks: list[asyncio.Task[None]] = []  # every timer's task, to settle

    async def done(self, stage: str, chunk: int) -> None:
        """``chunk`` finished ``stage``: tell the parent now, or with the next ones."""
        if not self._coalesce:
            await self._parent.signal(MatchWorkflow.chunk_done, ChunkDone(stage, chunk))
            return
        self._buffered.setdefault(stage, []).append(chunk)
        self._finished[stage] = self._finished.get(stage, 0) + 1
        sent_at = self._sent_at.get(stage)
        now = workflow.time()
        if (
            self._finished[stage] >= self._chunks
            or sent_at is None
            or now - sent_at >= self._interval_s
        ):
            timer = self._timers.pop(stage, None)
            if timer is not None:
                timer.cancel()
            await self._send(stage)
        elif stage not in self._timers:
            delay = sent_at + self._interval_s - now
            self._timers[stage] = task = asyncio.create_task(self._send_later(stage, delay))
            self._tasks.append(task)

    async def settle(self) -> None:
        """Wait for the signals a timer sent to be delivered (before the child completes).

        Timers the batch's last chunks cancelled end cancelled, which is fine; a signal that
        failed fails the child, as a failed `ChunkDone` always did.
        """
        if not self._tasks:
            return
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def _send_later(self, stage: str, delay: float) -> None:
        # Cancelled (by the batch's last chunk of the stage, which takes the buffered ones
        # along) only while it sleeps: once awake it is off `_timers`.
        await workflow.sleep(delay)
        del self._timers[stage]
        await self._send(stage)

    async def _send(self, stage: str) -> None:
        chunks = self._buffered.pop(stage, [])
        if chunks:
            self._sent_at[stage] = workflow.time()
            await self._parent.signal(MatchWorkflow.chunks_done, ChunksDone(stage, sorted(chunks)))


def count_chunk_done(
    progress: MatchProgress, chunk_frames: dict[int, int], stage: str, chunk: int, now: float
) -> None:
    """The parent's bookkeeping for one chunk that finished ``stage`` (no command).

    The stage's chunk and frame counts; detect starts with the first stitched chunk; stitch
    and detect end with their last chunk. The same for a chunk told alone (`ChunkDone`) or with
    others (`ChunksDone`).
    """
    entry = progress.stages.setdefault(stage, StageProgress())
    entry.done += 1
    entry.frames_done += chunk_frames.get(chunk, 0)
    if stage == "stitch":
        detect = progress.stages.get("detect")
        if detect is not None and detect.started_at is None:
            detect.started_at = now
    last = entry.total > 0 and entry.done >= entry.total
    if stage in ("stitch", "detect") and last and entry.finished_at is None:
        entry.finished_at = now


@dataclass
class Queues:
    """Task queue names, with the match's suffix applied."""

    cpu: str
    gpu: str
    nvenc: str

    @classmethod
    def with_suffix(cls, suffix: str) -> Queues:
        return cls(CPU_QUEUE + suffix, GPU_QUEUE + suffix, NVENC_QUEUE + suffix)


@dataclass
class StitchBatchInput:
    """A batch of chunks to stitch and detect, for `StitchDetectBatchWorkflow`."""

    parent_workflow_id: str
    organization_id: str
    match_id: str
    revision: int
    queues: Queues
    chunks: list[ChunkPlan]
    left_key: str
    right_key: str
    left_sha256: str
    right_sha256: str
    rig_key: str
    prepare: StitchPrepareOutput
    fps: float
    heartbeat_timeout_s: float = 120.0
    right_frame_offset: int = 0
    """The pair's frame offset (ingest's ``frame_offset``) every chunk is stitched with."""
    progress_interval_s: float = PROGRESS_INTERVAL_S
    """How long finished chunks may be held back for one progress signal (`MatchInput`)."""


@dataclass
class StitchBatchOutput:
    stitched: list[StitchChunkOutput] = field(default_factory=list)
    detected: list[DetectChunkOutput] = field(default_factory=list)


@dataclass
class RenderBatchInput:
    """A batch of chunks to render through the virtual camera, for `RenderBatchWorkflow`."""

    parent_workflow_id: str
    organization_id: str
    match_id: str
    revision: int
    queues: Queues
    chunks: list[ChunkPlan]
    panorama_keys: list[str]
    path_key: str
    fps: float
    heartbeat_timeout_s: float = 120.0
    progress_interval_s: float = PROGRESS_INTERVAL_S
    """How long finished chunks may be held back for one progress signal (`MatchInput`)."""
    view: str = ""
    """A re-rendered view's name (`VcamRenderInput.view`); empty for the match's own view."""
    render_on_nvenc: bool = False
    """Render on the nvenc queue (`MatchInput.render_on_nvenc`); else on the cpu queue."""


@dataclass
class RenderBatchOutput:
    rendered: list[VcamRenderOutput] = field(default_factory=list)


def ladder_package_fields(rendered: list[VcamRenderOutput]) -> dict[str, Any]:
    """`PackageInput` fields that publish the renditions of ``rendered`` (in playback order).

    Chunks rendered before the ladder carry no renditions: they are packaged as one rendition
    in the old layout (no fields).
    """
    if not rendered or not all(r.renditions for r in rendered):
        return {}
    return {
        "chunk_renditions": [list(r.renditions) for r in rendered],
        "segment_seconds": SEGMENT_SECONDS,
    }


def _spans(ingest: IngestOutput) -> list[ChunkSpan]:
    return [ChunkSpan(c.index, c.start_frame, c.end_frame - c.start_frame) for c in ingest.chunks]


def _batches(chunks: list[ChunkPlan], size: int) -> list[list[ChunkPlan]]:
    size = max(1, size)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


def stitch_chunk_input(input: StitchBatchInput, chunk: ChunkPlan) -> StitchChunkInput:
    """What a batch child asks the stitch activity for one of its chunks."""
    return StitchChunkInput(
        organization_id=input.organization_id,
        match_id=input.match_id,
        revision=input.revision,
        chunk=chunk.index,
        left_key=input.left_key,
        right_key=input.right_key,
        left_sha256=input.left_sha256,
        right_sha256=input.right_sha256,
        rig_key=input.rig_key,
        panorama_model_key=input.prepare.panorama_model_key,
        start_frame=chunk.start_frame,
        end_frame=chunk.end_frame,
        fps=input.fps,
        decode_from_left=chunk.decode_from_left,
        decode_from_right=chunk.decode_from_right,
        right_frame_offset=input.right_frame_offset,
    )


@workflow.defn(name=names.STITCH_DETECT_BATCH_WORKFLOW)
class StitchDetectBatchWorkflow:
    """Stitch then detect each chunk of a batch; detect of chunk i starts when its stitch ends."""

    @workflow.run
    async def run(self, input: StitchBatchInput) -> StitchBatchOutput:
        parent = workflow.get_external_workflow_handle(input.parent_workflow_id)
        signals = ProgressSignals(
            parent,
            len(input.chunks),
            workflow.patched(COALESCED_PROGRESS_PATCH),
            input.progress_interval_s,
        )

        async def one(chunk: ChunkPlan) -> tuple[StitchChunkOutput, DetectChunkOutput]:
            stitched: StitchChunkOutput = await workflow.execute_activity(
                names.STITCH_CHUNK,
                stitch_chunk_input(input, chunk),
                task_queue=input.queues.gpu,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
                retry_policy=RETRY,
                result_type=StitchChunkOutput,
            )
            await signals.done("stitch", chunk.index)
            detected: DetectChunkOutput = await workflow.execute_activity(
                names.DETECT_CHUNK,
                DetectChunkInput(
                    organization_id=input.organization_id,
                    match_id=input.match_id,
                    revision=input.revision,
                    chunk=chunk.index,
                    video_key=stitched.video_key,
                    video_sha256=stitched.sha256,
                    first_frame=chunk.start_frame,
                    roi=input.prepare.pitch_polygon,
                ),
                task_queue=input.queues.gpu,
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
                retry_policy=RETRY,
                result_type=DetectChunkOutput,
            )
            await signals.done("detect", chunk.index)
            return stitched, detected

        results = await asyncio.gather(*(one(chunk) for chunk in input.chunks))
        await signals.settle()
        return StitchBatchOutput([s for s, _ in results], [d for _, d in results])


@workflow.defn(name=names.RENDER_BATCH_WORKFLOW)
class RenderBatchWorkflow:
    """Render (and encode) the virtual camera's view of each chunk of a batch."""

    @workflow.run
    async def run(self, input: RenderBatchInput) -> RenderBatchOutput:
        parent = workflow.get_external_workflow_handle(input.parent_workflow_id)
        signals = ProgressSignals(
            parent,
            len(input.chunks),
            workflow.patched(COALESCED_PROGRESS_PATCH),
            input.progress_interval_s,
        )

        # Rendering encodes every rendition in the same pass, so it goes where the encoder is:
        # the nvenc queue where the deployment has hardware encoders, the cpu queue otherwise.
        # Runs recorded before the ladder rendered on the gpu queue.
        if workflow.patched(RENDER_BY_ENCODER_PATCH):
            queue = input.queues.nvenc if input.render_on_nvenc else input.queues.cpu
            gop_frames = max(1, round(SEGMENT_SECONDS * input.fps))
        else:
            queue, gop_frames = input.queues.gpu, 0

        async def one(chunk: ChunkPlan, panorama_key: str) -> VcamRenderOutput:
            rendered: VcamRenderOutput = await workflow.execute_activity(
                names.VCAM_RENDER,
                VcamRenderInput(
                    organization_id=input.organization_id,
                    match_id=input.match_id,
                    revision=input.revision,
                    chunk=chunk.index,
                    panorama_video_key=panorama_key,
                    path_key=input.path_key,
                    first_frame=chunk.start_frame,
                    frames=chunk.end_frame - chunk.start_frame,
                    fps=input.fps,
                    view=input.view,  # payload only, no command: earlier histories replay
                    gop_frames=gop_frames,
                ),
                task_queue=queue,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
                retry_policy=RETRY,
                result_type=VcamRenderOutput,
            )
            await signals.done("encode", chunk.index)
            return rendered

        rendered = await asyncio.gather(
            *(one(c, k) for c, k in zip(input.chunks, input.panorama_keys, strict=True))
        )
        await signals.settle()
        return RenderBatchOutput(list(rendered))


@workflow.defn(name=names.MATCH_WORKFLOW)
class MatchWorkflow:
    """The whole processing of one match; operators watch and steer it in the Temporal UI."""

    def __init__(self) -> None:
        # ``stage`` here is the step the run is at (what the reprocess validator checks); the
        # `progress` query shows the stage running instead.
        self._progress = MatchProgress()
        self._restart_from: str | None = None
        self._chunk_frames: dict[int, int] = {}  # frames of each chunk (ingest's plan)
        # Ingest's warning in `MatchProgress.warnings`, replaced when ingest runs again.
        self._sync_warning: str | None = None
        # The minimap's chunk videos (drawn after analyze), packaged as their own rendition.
        self._minimap_keys: list[str] = []

    # -- operator surface ------------------------------------------------------------------

    @workflow.query(name=names.PROGRESS_QUERY)
    def progress(self) -> MatchProgress:
        """The stage running, chunks (and frames) done and total per stage, stage timings.

        ``stage`` is the latest running stage in pipeline order (detect while stitch and detect
        both run), else the latest one started; ``running`` lists every running stage.
        """
        progress = self._progress
        if progress.stage == "done":
            return replace(progress, running=[])
        running = [
            name
            for name in STAGES
            if (entry := progress.stages.get(name)) is not None
            and entry.started_at is not None
            and entry.finished_at is None
        ]
        started = [
            name
            for name in STAGES
            if (entry := progress.stages.get(name)) is not None and entry.started_at is not None
        ]
        stage = running[-1] if running else started[-1] if started else progress.stage
        return replace(progress, stage=stage, running=[] if progress.failed else running)

    @workflow.signal(name=names.CHUNK_DONE_SIGNAL)
    def chunk_done(self, done: ChunkDone) -> None:
        """A batch child (started before coalescing) finished one chunk of a stage.

        Bookkeeping only (no command), `count_chunk_done`.
        """
        count_chunk_done(
            self._progress, self._chunk_frames, done.stage, done.chunk, workflow.time()
        )

    @workflow.signal(name=names.CHUNKS_DONE_SIGNAL)
    def chunks_done(self, done: ChunksDone) -> None:
        """A batch child finished these chunks of a stage (its coalesced `chunk_done`s).

        Bookkeeping only (no command): `count_chunk_done` for each chunk, as if each had come
        alone now.
        """
        now = workflow.time()
        for chunk in done.chunks:
            count_chunk_done(self._progress, self._chunk_frames, done.stage, chunk, now)

    @workflow.update(name=names.REPROCESS_UPDATE)
    async def reprocess(self, request: ReprocessRequest) -> str:
        """Run the pipeline again from ``from_stage`` (its outputs and later ones are redone)."""
        self._restart_from = request.from_stage
        return f"reprocessing from {request.from_stage}"

    @reprocess.validator
    def _validate_reprocess(self, request: ReprocessRequest) -> None:
        if request.from_stage not in STAGES:
            raise ValueError(f"unknown stage {request.from_stage!r}; one of {', '.join(STAGES)}")
        if STEP_OF_STAGE[request.from_stage] > STEP_OF_STAGE.get(self._progress.stage, 0):
            raise ValueError(
                f"stage {request.from_stage!r} has not started yet (now at "
                f"{self._progress.stage!r}); nothing to reprocess"
            )
        if self._restart_from is not None:
            raise ValueError(f"a reprocess from {self._restart_from!r} is already pending")

    # -- the run ---------------------------------------------------------------------------

    def _enter(self, stage: str, total: int = 1) -> None:
        self._progress.stage = stage
        entry = StageProgress(total=total, started_at=workflow.time())
        self._progress.stages[stage] = entry
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set(stage)])

    def _finish(self, stage: str, done: int | None = None) -> None:
        entry = self._progress.stages[stage]
        if entry.finished_at is None:  # stitch and detect end with their last chunk's signal
            entry.finished_at = workflow.time()
        if entry.started_at is None:
            entry.started_at = entry.finished_at
        entry.done = entry.total if done is None else done
        entry.frames_done = entry.frames_total

    @workflow.run
    async def run(self, input: MatchInput) -> MatchOutput:
        """Ingest, stitch and detect per chunk, track, plan and render the virtual camera,
        analyze, package HLS and index; reprocess requests restart from a stage."""
        self._progress.revision = input.revision
        attributes = [
            MATCH_ID.value_set(input.match_id),
            ORGANIZATION_ID.value_set(input.organization_id),
        ]
        if input.device_id:
            attributes.append(DEVICE_ID.value_set(input.device_id))
        workflow.upsert_search_attributes(attributes)
        queues = Queues.with_suffix(input.task_queue_suffix)
        try:
            return await self._pipeline(input, queues)
        except BaseException as exc:
            # A cancel reaches the run either directly or, when a batch child saw it first, as
            # that child's cancellation; runs recorded before the second case was handled keep
            # their old behaviour behind the patch.
            cancelled = isinstance(exc, asyncio.CancelledError) or (
                is_cancelled_exception(exc) and workflow.patched("cleanup-on-child-cancel")
            )
            if not cancelled:
                # State only, no command: the histories of earlier runs replay unchanged.
                self._progress.failed = failure_reason(self._progress.stage, exc)
                raise
            # Temporal's cancel: remove what this revision wrote, then let the cancel stand.
            self._progress.failed = "cancelled"
            workflow.upsert_search_attributes([PIPELINE_STAGE.value_set("cancelled")])
            await workflow.execute_activity(
                names.CLEANUP_MATCH,
                CleanupInput(input.organization_id, input.match_id, input.revision, None),
                task_queue=queues.cpu,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
            )
            raise

    async def _pipeline(self, input: MatchInput, queues: Queues) -> MatchOutput:
        ingest: IngestOutput | None = None
        prepare: StitchPrepareOutput | None = None
        batch: StitchBatchOutput = StitchBatchOutput()
        track: TrackOutput | None = None
        rendered: list[VcamRenderOutput] = []
        analyze: AnalyzeOutput | None = None
        package: PackageOutput | None = None
        index: IndexOutput | None = None
        step = 0
        while step <= 5:
            if step == 0:
                ingest = await self._ingest(input, queues)
            elif step == 1:
                assert ingest is not None
                prepare, batch = await self._stitch_and_detect(input, queues, ingest)
            elif step == 2:
                assert ingest is not None and prepare is not None
                track = await self._track(input, queues, ingest, prepare, batch)
            elif step == 3:
                assert ingest is not None and prepare is not None
                _plan, rendered, analyze = await self._vcam_and_analyze(
                    input, queues, ingest, prepare, batch
                )
            elif step == 4:
                panoramas = [s.video_key for s in sorted(batch.stitched, key=lambda s: s.chunk)]
                package = await self._package(input, queues, rendered, panoramas)
            else:
                assert ingest is not None and track is not None and analyze is not None
                assert package is not None
                index = await self._index(input, queues, ingest, batch, track, analyze, package)
            step += 1
            if self._restart_from is not None:
                step = await self._restart(input, queues)
        assert ingest is not None and package is not None and index is not None
        self._progress.stage = "done"
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set("done")])
        return MatchOutput(
            revision=input.revision,
            frames=ingest.frame_count,
            chunks=len(ingest.chunks),
            hls_master_key=package.master_key,
            summary_key=index.summary_key,
        )

    async def _restart(self, input: MatchInput, queues: Queues) -> int:
        stage = self._restart_from
        assert stage is not None
        self._restart_from = None
        redo = [s for s in STAGES if STAGES.index(s) >= STAGES.index(stage)]
        await workflow.execute_activity(
            names.CLEANUP_MATCH,
            CleanupInput(input.organization_id, input.match_id, input.revision, redo),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        for name in redo:
            self._progress.stages.pop(name, None)
        return STEP_OF_STAGE[stage]

    async def _ingest(self, input: MatchInput, queues: Queues) -> IngestOutput:
        self._enter("ingest")
        output: IngestOutput = await workflow.execute_activity(
            names.INGEST,
            IngestInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                left_key=input.left_key,
                right_key=input.right_key,
                rig_key=input.rig_key,
                expected_left=input.expected_left,
                expected_right=input.expected_right,
                chunk_seconds=input.chunk_seconds,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=IngestOutput,
        )
        self._finish("ingest")
        self._note_sync_warning(output.sync_warning)
        self._chunk_frames = {c.index: c.end_frame - c.start_frame for c in output.chunks}
        return output

    def _note_sync_warning(self, warning: str | None) -> None:
        """Show ingest's synchronisation warning in `progress` (bookkeeping only, no command)."""
        if self._sync_warning in self._progress.warnings:
            self._progress.warnings.remove(self._sync_warning)
        self._sync_warning = warning
        if warning is not None:
            self._progress.warnings.append(warning)

    @staticmethod
    def _right_frame_offset(ingest: IngestOutput) -> int:
        """The frame offset the stitch children pair the recordings with (ingest's estimate).

        Behind the ``frame-offset`` patch: a run whose children were started before stitching
        applied the offset replays pairing the frames as recorded. The patch is asked only when
        there is an offset to apply, so a synchronised pair's history is as it was (no marker).
        """
        if ingest.frame_offset and workflow.patched("frame-offset"):
            return ingest.frame_offset
        return 0

    async def _stitch_and_detect(
        self, input: MatchInput, queues: Queues, ingest: IngestOutput
    ) -> tuple[StitchPrepareOutput, StitchBatchOutput]:
        chunks = len(ingest.chunks)
        frames = sum(self._chunk_frames.values())
        self._enter("stitch", chunks)
        self._progress.stages["stitch"].frames_total = frames
        # Detect starts when the first chunk is stitched (`chunk_done`).
        self._progress.stages["detect"] = StageProgress(total=chunks, frames_total=frames)
        prepare: StitchPrepareOutput = await workflow.execute_activity(
            names.STITCH_PREPARE,
            StitchPrepareInput(
                input.organization_id,
                input.match_id,
                input.revision,
                input.rig_key,
                input.panorama_scale,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=StitchPrepareOutput,
        )
        info = workflow.info()
        batches = _batches(ingest.chunks, input.chunks_per_batch)
        right_frame_offset = self._right_frame_offset(ingest)
        outputs = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    StitchDetectBatchWorkflow.run,
                    StitchBatchInput(
                        parent_workflow_id=info.workflow_id,
                        organization_id=input.organization_id,
                        match_id=input.match_id,
                        revision=input.revision,
                        queues=queues,
                        chunks=batch,
                        left_key=input.left_key,
                        right_key=input.right_key,
                        left_sha256=ingest.left.sha256,
                        right_sha256=ingest.right.sha256,
                        rig_key=input.rig_key,
                        prepare=prepare,
                        fps=ingest.fps,
                        heartbeat_timeout_s=input.heartbeat_timeout_s,
                        right_frame_offset=right_frame_offset,
                        progress_interval_s=input.progress_interval_s,
                    ),
                    id=f"{info.workflow_id}-r{input.revision}-stitch-{number:04d}",
                    task_queue=queues.cpu,
                )
                for number, batch in enumerate(batches)
            )
        )
        merged = StitchBatchOutput(
            [s for o in outputs for s in o.stitched], [d for o in outputs for d in o.detected]
        )
        self._finish("stitch", len(merged.stitched))
        self._finish("detect", len(merged.detected))
        return prepare, merged

    async def _track(
        self,
        input: MatchInput,
        queues: Queues,
        ingest: IngestOutput,
        prepare: StitchPrepareOutput,
        batch: StitchBatchOutput,
    ) -> TrackOutput:
        self._enter("track")
        output: TrackOutput = await workflow.execute_activity(
            names.TRACK_MATCH,
            TrackInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunks=_spans(ingest),
                panorama_model_key=prepare.panorama_model_key,
                fps=ingest.fps,
                detections_digest=",".join(d.manifest_key for d in batch.detected),
                # Payload only, no command: histories recorded before these fields replay.
                home_kit_colour=input.home_kit_colour,
                away_kit_colour=input.away_kit_colour,
                home_starts_left=input.home_starts_left,
                teams_swapped=input.teams_swapped,
                # The stride the detect stage ran with (1 in outputs recorded before it).
                detect_stride=max((d.stride for d in batch.detected), default=1),
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(hours=4),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=TrackOutput,
        )
        self._finish("track")
        return output

    async def _vcam_and_analyze(
        self,
        input: MatchInput,
        queues: Queues,
        ingest: IngestOutput,
        prepare: StitchPrepareOutput,
        batch: StitchBatchOutput,
    ) -> tuple[VcamPlanOutput, list[VcamRenderOutput], AnalyzeOutput]:
        self._enter("vcam")
        plan: VcamPlanOutput = await workflow.execute_activity(
            names.VCAM_PLAN,
            VcamPlanInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunks=_spans(ingest),
                panorama_model_key=prepare.panorama_model_key,
                fps=ingest.fps,
                # Payload only, no command: histories recorded before modes replay.
                camera=input.camera,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=VcamPlanOutput,
        )
        self._finish("vcam")
        # Analyze rewrites the track points' slices (with speeds); the plan must have read
        # them first, so analyze starts only now, alongside the rendering.
        analyze = asyncio.ensure_future(self._analyze(input, queues, ingest))
        self._progress.stages["encode"] = StageProgress(
            total=len(ingest.chunks),
            started_at=workflow.time(),
            frames_total=sum(self._chunk_frames.values()),
        )
        panorama_keys = {s.chunk: s.video_key for s in batch.stitched}
        info = workflow.info()
        outputs = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    RenderBatchWorkflow.run,
                    RenderBatchInput(
                        parent_workflow_id=info.workflow_id,
                        organization_id=input.organization_id,
                        match_id=input.match_id,
                        revision=input.revision,
                        queues=queues,
                        chunks=chunks,
                        panorama_keys=[panorama_keys[c.index] for c in chunks],
                        path_key=plan.path_key,
                        fps=ingest.fps,
                        heartbeat_timeout_s=input.heartbeat_timeout_s,
                        progress_interval_s=input.progress_interval_s,
                        render_on_nvenc=input.render_on_nvenc,
                    ),
                    id=f"{info.workflow_id}-r{input.revision}-render-{number:04d}",
                    task_queue=queues.cpu,
                )
                for number, chunks in enumerate(_batches(ingest.chunks, input.chunks_per_batch))
            )
        )
        rendered = sorted((r for o in outputs for r in o.rendered), key=lambda r: r.chunk)
        return plan, rendered, await analyze

    async def _analyze(
        self, input: MatchInput, queues: Queues, ingest: IngestOutput
    ) -> AnalyzeOutput:
        self._progress.stages["analyze"] = StageProgress(total=1, started_at=workflow.time())
        output: AnalyzeOutput = await workflow.execute_activity(
            names.ANALYZE_MATCH,
            AnalyzeInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunks=_spans(ingest),
                fps=ingest.fps,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=AnalyzeOutput,
        )
        if workflow.patched(MINIMAP_PATCH):
            # After analyze, which rewrites the track points' slices the minimap reads.
            minimap: MinimapOutput = await workflow.execute_activity(
                names.MINIMAP_RENDER,
                MinimapInput(
                    organization_id=input.organization_id,
                    match_id=input.match_id,
                    revision=input.revision,
                    chunks=_spans(ingest),
                    fps=ingest.fps,
                    home_kit_colour=input.home_kit_colour,
                    away_kit_colour=input.away_kit_colour,
                    gop_frames=max(1, round(SEGMENT_SECONDS * ingest.fps)),
                ),
                task_queue=queues.cpu,
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
                retry_policy=RETRY,
                result_type=MinimapOutput,
            )
            self._minimap_keys = minimap.chunk_keys
        self._finish("analyze")
        return output

    async def _package(
        self,
        input: MatchInput,
        queues: Queues,
        rendered: list[VcamRenderOutput],
        panorama_keys: list[str],
    ) -> PackageOutput:
        self._progress.stage = "encode"
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set("encode")])
        output: PackageOutput = await workflow.execute_activity(
            names.PACKAGE_HLS,
            PackageInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunk_video_keys=[r.video_key for r in rendered],
                # Payload only, no command: histories recorded before the ladder replay.
                **ladder_package_fields(rendered),
                panorama_chunk_keys=panorama_keys,
                minimap_chunk_keys=self._minimap_keys,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(hours=1),
            # It heartbeats: a worker lost while packaging is noticed in seconds, not an hour.
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=PackageOutput,
        )
        self._finish("encode", len(rendered))
        return output

    async def _index(
        self,
        input: MatchInput,
        queues: Queues,
        ingest: IngestOutput,
        batch: StitchBatchOutput,
        track: TrackOutput,
        analyze: AnalyzeOutput,
        package: PackageOutput,
    ) -> IndexOutput:
        self._enter("index")
        output: IndexOutput = await workflow.execute_activity(
            names.INDEX_MATCH,
            IndexInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                frames=ingest.frame_count,
                fps=ingest.fps,
                chunks=len(ingest.chunks),
                detections_persons=sum(d.persons for d in batch.detected),
                detections_balls=sum(d.balls for d in batch.detected),
                tracks=track.tracks,
                total_distance_m=analyze.total_distance_m,
                hls_master_key=package.master_key,
                heatmaps_key=analyze.heatmaps_key,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=IndexOutput,
        )
        self._finish("index")
        return output
