"""Stand-ins for the view workflow's tests: the camera's planning and rendering, and a
processed revision laid out as a finished run leaves it.

`CameraStandins` answer `vcam_plan` and `vcam_render` at the Temporal boundary, writing what
`activities.vcam` writes for a view where it writes it (the path under ``vcam/views/{view}/``
and a real H.264 chunk each, which the real packager remuxes); everything else a view runs
(`view_sources`, `package_hls`, the workflows) is the real thing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.encode.activity import EncodeActivities
from activities.index.contracts import IndexOutput
from activities.ingest.contracts import ChunkPlan, IngestOutput, RecordingSummary
from activities.rerender.activity import RerenderActivities
from activities.stitch.contracts import StitchChunkOutput, StitchPrepareOutput
from activities.vcam.contracts import (
    VcamPlanInput,
    VcamPlanOutput,
    VcamRenderInput,
    VcamRenderOutput,
)
from polyvision.artifacts import Manifest, artifact_key, write_manifest
from polyvision.media.writer import VideoWriter
from polyvision.stage import MANIFEST_NAME, output_to_json
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole, queue_names
from workflows.match import RenderBatchWorkflow
from workflows.view import MatchViewWorkflow

REVISION = 1
FPS = 25.0
CHUNK_FRAMES = [25, 20]
SIZE = (64, 48)


@dataclass
class Calls:
    """What the stand-ins were asked."""

    plans: list[VcamPlanInput] = field(default_factory=list)
    renders: list[VcamRenderInput] = field(default_factory=list)


class CameraStandins:
    """`vcam_plan` and `vcam_render` writing what the real ones write for a view.

    Args:
        objects: Where to write.
        calls: Records every input.
        gate: Rendering waits for it (a test holds a view at its rendering).
    """

    def __init__(self, objects: ObjectStore, calls: Calls, gate: asyncio.Event) -> None:
        self._objects = objects
        self._calls = calls
        self._gate = gate

    def _key(self, input: VcamPlanInput | VcamRenderInput, name: str) -> str:
        assert input.view, "a view's camera must be asked for with its name"
        return artifact_key(
            input.organization_id,
            input.match_id,
            input.revision,
            "vcam",
            f"views/{input.view}/{name}",
        )

    @activity.defn(name=names.VCAM_PLAN)
    async def plan(self, input: VcamPlanInput) -> VcamPlanOutput:
        """A path object under the view's folder; a parameter named ``unknown_*`` is refused
        as the real planner refuses a name its mode does not have."""
        self._calls.plans.append(input)
        for name in input.camera.params:
            if name.startswith("unknown"):
                raise ApplicationError(
                    f"unknown parameter {name!r} for mode {input.camera.mode!r}",
                    type="BadCameraSettings",
                    non_retryable=True,
                )
        key = self._key(input, "path.parquet")
        await self._objects.put(key, f"path of {input.camera.mode}".encode())
        frames = max(c.first_frame + c.frames for c in input.chunks)
        return VcamPlanOutput(path_key=key, frames=frames, manifest_key=key + ".manifest")

    @activity.defn(name=names.VCAM_RENDER)
    async def render(self, input: VcamRenderInput) -> VcamRenderOutput:
        """A real H.264 chunk of ``input.frames`` frames under the view's folder."""
        self._calls.renders.append(input)
        await self._gate.wait()
        key = self._key(input, f"chunk-{input.chunk:05d}.mp4")
        scratch = Path(tempfile.mkdtemp(prefix="pv-view-test-"))
        try:
            local = scratch / "chunk.mp4"
            await asyncio.to_thread(_write_chunk, local, input.first_frame, input.frames)
            info = await self._objects.upload_file(key, local, content_type="video/mp4")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return VcamRenderOutput(
            chunk=input.chunk,
            video_key=key,
            sha256=info.sha256 or "",
            frames=input.frames,
            manifest_key=key + ".manifest",
        )


def _write_chunk(path: Path, first_frame: int, frames: int) -> None:
    with VideoWriter(path, SIZE[0], SIZE[1], FPS) as writer:
        for number in range(first_frame, first_frame + frames):
            writer.write(np.full((SIZE[1], SIZE[0], 3), number * 5 % 256, np.uint8))


# --- a processed revision, as a finished run leaves it ----------------------------------------


def revision_key(organization_id: str, match_id: str, stage: str, *parts: str) -> str:
    """The key of an artifact of the processed revision (`REVISION`)."""
    return artifact_key(organization_id, match_id, REVISION, stage, *parts)


async def _record(objects: ObjectStore, key: str, stage: str, output: Any) -> None:
    manifest = Manifest(
        stage=stage,
        inputs_digest="0" * 64,
        code_version="test",
        outputs={"output": output_to_json(output), "details": {}},
    )
    await write_manifest(objects, key, manifest)


def _recording(key: str) -> RecordingSummary:
    frames = sum(CHUNK_FRAMES)
    return RecordingSummary(
        key=key,
        codec="h264",
        width=960,
        height=540,
        fps_rational="25/1",
        frame_count=frames,
        duration_s=frames / FPS,
        keyframe_count=2,
        has_audio=False,
        pix_fmt="yuv420p",
        bit_depth=8,
        size_bytes=1000,
        sha256="a" * 64,
    )


async def processed_revision(
    objects: ObjectStore, organization_id: str, match_id: str, *, indexed: bool = True
) -> None:
    """The manifests and outputs a completed run of ``match_id`` leaves as `REVISION`: the
    stages' manifests (index last), the panorama model and chunks, and the match's own camera
    path and master playlist."""

    def _key(match_id: str, stage: str, *parts: str) -> str:
        return revision_key(organization_id, match_id, stage, *parts)

    chunks, first = [], 0
    for index, frames in enumerate(CHUNK_FRAMES):
        start_s, end_s = first / FPS, (first + frames) / FPS
        chunks.append(ChunkPlan(index, first, first + frames, start_s, end_s, first, first))
        first += frames
    ingest = IngestOutput(
        left=_recording("up/left.mp4"),
        right=_recording("up/right.mp4"),
        frame_count=first,
        fps=FPS,
        fps_rational="25/1",
        width=960,
        height=540,
        chunks=chunks,
    )
    await _record(objects, _key(match_id, "ingest", MANIFEST_NAME), "ingest", ingest)
    model_key = _key(match_id, "stitch", "panorama.json")
    await objects.put(model_key, b"{}")
    prepare = StitchPrepareOutput(model_key, 1824, 540, [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)])
    await _record(objects, _key(match_id, "stitch", "prepare", MANIFEST_NAME), "stitch", prepare)
    for chunk in chunks:
        name = f"chunk-{chunk.index:05d}"
        video_key = _key(match_id, "stitch", f"{name}.mp4")
        await objects.put(video_key, b"panorama")
        stitched = StitchChunkOutput(
            chunk.index, video_key, "b" * 64, chunk.frame_count, _key(match_id, "stitch", name)
        )
        await _record(objects, _key(match_id, "stitch", name, MANIFEST_NAME), "stitch", stitched)
    # The match's own camera and rendition, which a view must leave as they are.
    await objects.put(_key(match_id, "vcam", "path.parquet"), b"the match's own path")
    await objects.put(_key(match_id, "hls", "master.m3u8"), b"#EXTM3U\n")
    if indexed:
        summary = _key(match_id, "index", "summary.json")
        await objects.put(summary, b"{}")
        indexed_output = IndexOutput(summary_key=summary, catalog_updated=True)
        await _record(objects, _key(match_id, "index", MANIFEST_NAME), "index", indexed_output)


@asynccontextmanager
async def view_workers(
    client: Client, suffix: str, objects: ObjectStore, camera: CameraStandins
) -> AsyncIterator[None]:
    """A worker on the suffixed cpu queue, as the real registry splits the work without a
    hardware encoder: the view workflow and its rendering children, the real sources and
    packaging, and the camera stand-ins (planning, and rendering with the ladder's encoders)."""
    queues = queue_names(suffix)
    cpu = Worker(
        client,
        task_queue=queues[QueueRole.cpu],
        workflows=[MatchViewWorkflow, RenderBatchWorkflow],
        activities=[
            RerenderActivities(objects).sources,
            camera.plan,
            camera.render,
            EncodeActivities(objects).package,
        ],
    )
    async with cpu:
        yield
