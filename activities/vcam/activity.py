"""The vcam stage as Temporal activities: plan the virtual camera once, render it per chunk.

Thin on purpose. ``vcam_plan`` reads every track point of the revision (pitch metres), maps
the foot points into panorama pixels, plans the "Centered" path over the whole match with
:func:`~activities.vcam.plan.plan_centered` and stores it as Parquet. ``vcam_render`` cuts one
chunk's views out of its panorama video with :func:`~activities.vcam.render.render_chunk` and
stores the H.264 MP4 (its first frame is a keyframe: the chunk start is an HLS segment
boundary). Both write their manifest last, so a retried or replayed attempt with the same
inputs returns at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.vcam.plan import FramePoints, VcamPath, plan_centered
from activities.vcam.render import render_chunk
from polyvision.artifacts import (
    ChunkSpan,
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "vcam-1"
"""Bump when the same inputs would give a different path or different views."""


PATH_NAME = "path.parquet"


VcamChunk = ChunkSpan
"""The shared chunk span, under the name this stage's inputs use."""


@dataclass
class VcamPlanInput:
    """Plan the virtual camera of a whole match revision.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunks: Every chunk of the match; the path covers frames ``0 .. max(first + frames)``.
        panorama_model_key: Object key of the panorama model JSON (stitch stage).
        fps: Frame rate of the match.
    """

    organization_id: str
    match_id: str
    revision: int
    chunks: list[VcamChunk]
    panorama_model_key: str
    fps: float


@dataclass
class VcamPlanOutput:
    """The stored path.

    Attributes:
        path_key: Object key of the path (Parquet, :data:`activities.vcam.plan.PATH_SCHEMA`).
        frames: Frames the path covers.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    path_key: str
    frames: int
    manifest_key: str
    from_manifest: bool = False


@dataclass
class VcamRenderInput:
    """Render the virtual camera's views of one panorama chunk.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk: Chunk index.
        panorama_video_key: Object key of the chunk's panorama video (stitch stage).
        path_key: Object key of the planned path (``VcamPlanOutput.path_key``).
        first_frame: Match frame number of the chunk's first frame.
        frames: Frames in the chunk (the rendered video must have as many).
        fps: Frame rate of the match.
        width: Width of the rendered view in pixels (even).
        height: Height of the rendered view in pixels (even).
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    panorama_video_key: str
    path_key: str
    first_frame: int
    frames: int
    fps: float
    width: int = 1280
    height: int = 720


@dataclass
class VcamRenderOutput:
    """The rendered chunk.

    Attributes:
        chunk: Chunk index.
        video_key: Object key of the H.264 MP4.
        sha256: Its digest.
        frames: Frames rendered.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    chunk: int
    video_key: str
    sha256: str
    frames: int
    manifest_key: str
    from_manifest: bool = False


def _threadsafe_heartbeat() -> Callable[[int], None]:
    """A progress callback that a worker thread may call to heartbeat ``frames_done``.

    The SDK's heartbeat of an async activity schedules a task on the event loop, so it must
    run there (and inside the activity's context): the callback hands it over.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()

    def report(frames_done: int) -> None:
        loop.call_soon_threadsafe(heartbeat, {"frames_done": frames_done}, context=context)

    return report


async def _object_digest(objects: ObjectStore, key: str) -> str:
    """The stored sha256 of an input object (size and time where a store recorded none)."""
    info = await objects.stat(key)
    return info.sha256 or f"{info.size}:{info.modified.isoformat()}"


def panorama_points(
    model: PanoramaModel, frame: np.ndarray, pitch_x: np.ndarray, pitch_y: np.ndarray, frames: int
) -> FramePoints:
    """Track points (pitch metres, on the ground) as panorama-pixel foot points per frame.

    Points outside ``[0, frames)`` or that do not map to a finite pixel are left out.
    """
    ground = np.column_stack(
        [pitch_x.astype(np.float64), pitch_y.astype(np.float64), np.zeros(len(frame))]
    )
    pixels = pitch_to_panorama(model, ground.reshape(-1, 3))
    frame = frame.astype(np.int64)
    keep = np.isfinite(pixels).all(axis=1) & (frame >= 0) & (frame < frames)
    return FramePoints(frame[keep].astype(np.int32), pixels[keep].astype(np.float32))


class VcamActivities:
    """The vcam activities, bound to the worker's stores.

    Args:
        objects: Object store holding the panorama chunks, the path, the views and manifests.
        analytics: Analytics store holding the track points.
    """

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    def _track_points(self, input: VcamPlanInput) -> dict[str, np.ndarray]:
        return self._analytics.query_numpy(
            "SELECT frame, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )

    def _track_points_digest(self, input: VcamPlanInput) -> str:
        # The positions decide the path; speed (written by analyze, maybe concurrently) does
        # not, so it stays out. A sum of row hashes does not depend on the row order.
        rows = self._analytics.query_numpy(
            "SELECT count() AS n, sum(cityHash64(chunk, frame, track_id, pitch_x, pitch_y)) AS h "
            "FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )
        return f"{int(rows['n'][0])}:{int(rows['h'][0])}"

    @activity.defn(name="vcam_plan")
    async def plan(self, input: VcamPlanInput) -> VcamPlanOutput:
        """Plan the "Centered" virtual camera over the whole match and store the path."""
        path_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "vcam", PATH_NAME
        )
        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "vcam", "plan.manifest.json"
        )
        digest = inputs_digest(
            {
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "fps": input.fps,
                "panorama_model": await _object_digest(self._objects, input.panorama_model_key),
                "track_points": await asyncio.to_thread(self._track_points_digest, input),
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return VcamPlanOutput(
                path_key=str(done.outputs["path_key"]),
                frames=int(done.outputs["frames"]),
                manifest_key=manifest_key,
                from_manifest=True,
            )
        model = PanoramaModel.from_json(
            (await self._objects.get(input.panorama_model_key)).decode()
        )
        frames = max((c.first_frame + c.frames for c in input.chunks), default=0)
        async with heartbeating({"step": "plan", "frames": frames}):
            rows = await asyncio.to_thread(self._track_points, input)
            points = await asyncio.to_thread(
                panorama_points, model, rows["frame"], rows["pitch_x"], rows["pitch_y"], frames
            )
            path = await asyncio.to_thread(
                plan_centered, frames, points, (model.width, model.height), input.fps
            )
        buffer = io.BytesIO()
        pq.write_table(path.to_table(), buffer)
        await self._objects.put(path_key, buffer.getvalue())
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="vcam",
                inputs_digest=digest,
                code_version=CODE_VERSION,
                outputs={"path_key": path_key, "frames": path.frames, "points": len(points.frame)},
            ),
        )
        return VcamPlanOutput(path_key=path_key, frames=path.frames, manifest_key=manifest_key)

    @activity.defn(name="vcam_render")
    async def render_chunk(self, input: VcamRenderInput) -> VcamRenderOutput:
        """Render one chunk's virtual-camera views into an H.264 MP4 and store it."""
        name = f"chunk-{input.chunk:05d}"
        video_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "vcam", f"{name}.mp4"
        )
        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "vcam", f"{name}.manifest.json"
        )
        digest = inputs_digest(
            {
                "panorama_video": await _object_digest(self._objects, input.panorama_video_key),
                "path": await _object_digest(self._objects, input.path_key),
                "first_frame": input.first_frame,
                "frames": input.frames,
                "fps": input.fps,
                "size": (input.width, input.height),
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return VcamRenderOutput(
                chunk=input.chunk,
                video_key=str(done.outputs["video_key"]),
                sha256=str(done.outputs["sha256"]),
                frames=int(done.outputs["frames"]),
                manifest_key=manifest_key,
                from_manifest=True,
            )
        scratch = Path(tempfile.mkdtemp(prefix="pv-vcam-"))
        try:
            panorama = scratch / "panorama.mp4"
            await self._objects.download_file(input.panorama_video_key, panorama)
            path = VcamPath.from_table(
                pq.read_table(io.BytesIO(await self._objects.get(input.path_key)))
            )
            out = scratch / f"{name}.mp4"
            # A chunk is seconds of video: a retry renders it again from the start, so the
            # heartbeats report progress only. render_chunk starts the file on a keyframe.
            result = await asyncio.to_thread(
                render_chunk,
                panorama,
                path,
                input.first_frame,
                out,
                input.fps,
                (input.width, input.height),
                _threadsafe_heartbeat(),
            )
            if result.frames != input.frames:
                # The HLS timeline assumes every chunk has its planned length: a short or long
                # panorama chunk is a pipeline bug that retrying cannot fix.
                raise ApplicationError(
                    f"chunk {input.chunk}: rendered {result.frames} frames, "
                    f"expected {input.frames}",
                    type="FrameCountMismatch",
                    non_retryable=True,
                )
            info = await self._objects.upload_file(
                video_key, out, content_type="video/mp4", sha256=result.sha256
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="vcam",
                inputs_digest=digest,
                code_version=CODE_VERSION,
                outputs={
                    "video_key": info.key,
                    "sha256": result.sha256,
                    "frames": result.frames,
                    "size": info.size,
                },
            ),
        )
        return VcamRenderOutput(
            chunk=input.chunk,
            video_key=video_key,
            sha256=result.sha256,
            frames=result.frames,
            manifest_key=manifest_key,
        )
