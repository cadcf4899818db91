"""MatchViewWorkflow: render a processed match's virtual camera again, in another mode.

Process once, serve many: the camera's path is an artifact like any other, so asking for another
mode (or other parameters) plans, renders and packages the camera again and nothing else. The
revision's ingest, stitching, detection and tracking outputs are reused as they are: the
`view_sources` activity reads what their manifests recorded (chunk plan, panorama videos and
model), the vcam plan reads the revision's tracks, and the view's own outputs go to folders of
its own in the same revision (``vcam/views/{view}/``, ``hls/views/{view}/``), beside the match's.

Orchestration only, like `workflows.match`: no I/O, activities called by their recorded names
with the stages' light contracts, and the rendering in the match workflow's own
`RenderBatchWorkflow` children, which report their chunks through the same ``chunks_done``
signal; the `progress` query answers in the match workflow's shape (stages ``vcam`` and
``encode``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.encode.contracts import PackageInput, PackageOutput
    from activities.ingest.contracts import ChunkPlan
    from activities.rerender.contracts import ViewSourcesInput, ViewSourcesOutput
    from activities.vcam.contracts import (
        CAMERA_MODES,
        VcamPlanInput,
        VcamPlanOutput,
        VcamRenderOutput,
    )
    from polyvision.artifacts import ChunkSpan
    from polyvision.temporal import names
    from polyvision.temporal.search_attributes import MATCH_ID, ORGANIZATION_ID, PIPELINE_STAGE
    from workflows.types import (
        STAGES,
        VIEW_NAME_PATTERN,
        MatchProgress,
        StageProgress,
        ViewInput,
        ViewOutput,
    )

from workflows.match import (
    RETRY,
    ChunkDone,
    ChunksDone,
    Queues,
    RenderBatchInput,
    RenderBatchWorkflow,
    count_chunk_done,
    ladder_package_fields,
)

INVALID_VIEW = "InvalidView"
"""Error type (not retried) of a view whose name or camera mode cannot be rendered."""


def _batches(chunks: list[ChunkPlan], size: int) -> list[list[ChunkPlan]]:
    size = max(1, size)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


@workflow.defn(name=names.MATCH_VIEW_WORKFLOW)
class MatchViewWorkflow:
    """One view of one processed revision: sources, plan, render per chunk, package."""

    def __init__(self) -> None:
        self._progress = MatchProgress(stage="vcam")
        self._chunk_frames: dict[int, int] = {}

    @workflow.query(name=names.PROGRESS_QUERY)
    def progress(self) -> MatchProgress:
        """The stage running (``vcam``: finding the sources and planning; ``encode``: rendering
        and packaging; ``done``), and chunks (and frames) done per stage."""
        progress = self._progress
        running = [
            name
            for name in STAGES
            if (entry := progress.stages.get(name)) is not None
            and entry.started_at is not None
            and entry.finished_at is None
        ]
        if progress.stage == "done" or progress.failed:
            running = []
        return replace(progress, running=running)

    @workflow.signal(name=names.CHUNK_DONE_SIGNAL)
    def chunk_done(self, done: ChunkDone) -> None:
        """A rendering child finished a chunk (bookkeeping only, as in `MatchWorkflow`)."""
        count_chunk_done(
            self._progress, self._chunk_frames, done.stage, done.chunk, workflow.time()
        )

    @workflow.signal(name=names.CHUNKS_DONE_SIGNAL)
    def chunks_done(self, done: ChunksDone) -> None:
        """A rendering child finished these chunks (bookkeeping only)."""
        now = workflow.time()
        for chunk in done.chunks:
            count_chunk_done(self._progress, self._chunk_frames, done.stage, chunk, now)

    def _enter(self, stage: str, total: int = 1, frames: int = 0) -> None:
        self._progress.stage = stage
        self._progress.stages[stage] = StageProgress(
            total=total, started_at=workflow.time(), frames_total=frames
        )
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set(stage)])

    def _finish(self, stage: str, done: int | None = None) -> None:
        entry = self._progress.stages[stage]
        entry.finished_at = workflow.time()
        entry.done = entry.total if done is None else done
        entry.frames_done = entry.frames_total

    @workflow.run
    async def run(self, input: ViewInput) -> ViewOutput:
        """Plan the camera with ``input.camera``, render every chunk and package the view."""
        if not re.fullmatch(VIEW_NAME_PATTERN, input.view):
            raise ApplicationError(
                f"{input.view!r} is not a view name (lower-case letters, digits and inner "
                "hyphens, at most 64 characters)",
                type=INVALID_VIEW,
                non_retryable=True,
            )
        if input.camera.mode not in CAMERA_MODES:
            raise ApplicationError(
                f"unknown camera mode {input.camera.mode!r}; one of {', '.join(CAMERA_MODES)}",
                type=INVALID_VIEW,
                non_retryable=True,
            )
        self._progress.revision = input.revision
        workflow.upsert_search_attributes(
            [
                MATCH_ID.value_set(input.match_id),
                ORGANIZATION_ID.value_set(input.organization_id),
            ]
        )
        queues = Queues.with_suffix(input.task_queue_suffix)
        try:
            return await self._render(input, queues)
        except BaseException as exc:
            # Bookkeeping only (no command): the query of a closed run says how it ended.
            cancelled = isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)
            self._progress.failed = "cancelled" if cancelled else "failed"
            raise

    async def _render(self, input: ViewInput, queues: Queues) -> ViewOutput:
        self._enter("vcam")
        sources: ViewSourcesOutput = await workflow.execute_activity(
            names.VIEW_SOURCES,
            ViewSourcesInput(input.organization_id, input.match_id, input.revision),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
            result_type=ViewSourcesOutput,
        )
        self._chunk_frames = {c.index: c.end_frame - c.start_frame for c in sources.chunks}
        plan: VcamPlanOutput = await workflow.execute_activity(
            names.VCAM_PLAN,
            VcamPlanInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunks=[
                    ChunkSpan(c.index, c.start_frame, c.end_frame - c.start_frame)
                    for c in sources.chunks
                ],
                panorama_model_key=sources.panorama_model_key,
                fps=sources.fps,
                camera=input.camera,
                view=input.view,
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=VcamPlanOutput,
        )
        self._finish("vcam")
        self._enter("encode", len(sources.chunks), sum(self._chunk_frames.values()))
        panorama_keys = dict(
            zip((c.index for c in sources.chunks), sources.panorama_keys, strict=True)
        )
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
                        fps=sources.fps,
                        heartbeat_timeout_s=input.heartbeat_timeout_s,
                        progress_interval_s=input.progress_interval_s,
                        view=input.view,
                        render_on_nvenc=input.render_on_nvenc,
                    ),
                    id=f"{info.workflow_id}-render-{number:04d}",
                    task_queue=queues.cpu,
                )
                for number, chunks in enumerate(_batches(sources.chunks, input.chunks_per_batch))
            )
        )
        rendered: list[VcamRenderOutput] = sorted(
            (r for o in outputs for r in o.rendered), key=lambda r: r.chunk
        )
        package: PackageOutput = await workflow.execute_activity(
            names.PACKAGE_HLS,
            PackageInput(
                organization_id=input.organization_id,
                match_id=input.match_id,
                revision=input.revision,
                chunk_video_keys=[r.video_key for r in rendered],
                view=input.view,
                **ladder_package_fields(rendered),
            ),
            task_queue=queues.cpu,
            start_to_close_timeout=timedelta(hours=1),
            # It heartbeats: a worker lost while packaging is noticed in seconds, not an hour.
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RETRY,
            result_type=PackageOutput,
        )
        self._finish("encode", len(rendered))
        self._progress.stage = "done"
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set("done")])
        return ViewOutput(
            view=input.view,
            revision=input.revision,
            frames=plan.frames,
            chunks=len(rendered),
            path_key=plan.path_key,
            hls_master_key=package.master_key,
        )
