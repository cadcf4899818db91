"""The vcam stage as Temporal activities: plan the virtual camera once, render it per chunk.

Thin on purpose. ``vcam_plan`` reads every track point of the revision (pitch metres) and the
frames where the ball is reported (``ball_points``: visible and in play), plans the path of the
requested mode over the whole match (:func:`~activities.vcam.modes.plan_camera`; Director by
default) and stores it as Parquet carrying the panorama's view geometry, so the path alone says
how to render it. ``vcam_render`` renders one chunk's rectilinear views
once and encodes them into every rendition of the ladder in the same pass
(:func:`~activities.vcam.render.render_ladder`: 1080p, 720p and 480p by default, closed GOPs with
keyframes at the same frames in all of them), storing one MP4 per rendition
(``vcam/<rendition>/chunk-NNNNN.mp4``). The worker decides the encoder: NVENC on the nvenc queue
of a machine with a hardware encoder, libx264 elsewhere.

A re-rendered view (``view`` set: another mode or other parameters for a processed match) plans
and renders into ``vcam/views/<view>/``, reusing the revision's panoramas and tracks. Both write
their manifest last (`polyvision.stage.StageStep`), so a retried or replayed attempt with the
same inputs returns at once.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.stitch.panorama import PanoramaModel
from activities.track.ball_points import ball_points_digest
from activities.track.points import track_points_digest
from activities.vcam.contracts import (
    DEFAULT_LADDER,
    Rendition,
    RenditionChunk,
    VcamPlanInput,
    VcamPlanOutput,
    VcamRenderInput,
    VcamRenderOutput,
)
from activities.vcam.modes import CameraScene, params_for, plan_camera
from activities.vcam.plan import VcamPath
from activities.vcam.render import RenderedRendition, render_ladder
from activities.vcam.view import ViewGeometry, geometry_of, with_geometry
from polyvision.artifacts import artifact_key
from polyvision.heartbeat import frames_done_reporter, heartbeating
from polyvision.media.encoder import Encoder, EncodeTarget
from polyvision.stage import StageStep, object_digest
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "vcam-5"
"""vcam-2: manifests record the typed output (StageStep), in ``plan/`` and ``chunk-NNNNN/``.
vcam-3: the plan follows the reported ball (``ball_points``) too.
vcam-4: modes (Director by default), rectilinear views, re-rendered views.
vcam-5: every chunk rendered once into the whole ladder (``<rendition>/chunk-NNNNN.mp4``)."""

STAGE = "vcam"

PATH_NAME = "path.parquet"

VIEW_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""A re-rendered view's name: it becomes part of object keys."""


class VcamActivities:
    """The vcam activities, bound to the worker's stores.

    Args:
        objects: Object store holding the panorama chunks, the path, the views and manifests.
        analytics: Analytics store holding the track points and the ball.
        encoder: The H.264 encoder of this worker's renders: ``h264_nvenc`` on the nvenc
            queue of a machine with a hardware encoder, ``libx264`` everywhere else.
    """

    def __init__(
        self, objects: ObjectStore, analytics: AnalyticsStore, encoder: Encoder = "libx264"
    ) -> None:
        self._objects = objects
        self._analytics = analytics
        self._encoder: Encoder = encoder

    @activity.defn(name=names.VCAM_PLAN)
    async def plan(self, input: VcamPlanInput) -> VcamPlanOutput:
        """Plan the virtual camera of ``input.camera`` over the whole match and store the path."""
        _check_view(input.view)
        try:
            params_for(input.camera.mode, input.camera.params)
        except ValueError as exc:
            # A bad mode or parameter is the request's fault: retrying cannot fix it.
            raise ApplicationError(str(exc), type="BadCameraSettings", non_retryable=True) from exc
        step = await self._plan_step(input)
        if (done := await step.recorded()) is not None:
            return done
        model = PanoramaModel.from_json(
            (await self._objects.get(input.panorama_model_key)).decode()
        )
        frames = max((c.first_frame + c.frames for c in input.chunks), default=0)
        async with heartbeating({"step": "plan", "frames": frames}):
            rows = await asyncio.to_thread(self._track_points, input)
            ball_rows = await asyncio.to_thread(self._ball_points, input)
            scene = CameraScene(
                frames=frames,
                fps=input.fps,
                model=model,
                player_frame=np.asarray(rows["frame"], np.int64),
                player_xy=np.column_stack([rows["pitch_x"], rows["pitch_y"]]).astype(np.float64),
                ball_frame=np.asarray(ball_rows["frame"], np.int64),
                ball_xy=np.column_stack([ball_rows["pitch_x"], ball_rows["pitch_y"]]).astype(
                    np.float64
                ),
            )
            path = await asyncio.to_thread(plan_camera, scene, input.camera)
        path_key = self._key(input, input.view, PATH_NAME)
        buffer = io.BytesIO()
        pq.write_table(with_geometry(path.to_table(), ViewGeometry.of(model)), buffer)
        await self._objects.put(path_key, buffer.getvalue())
        output = VcamPlanOutput(
            path_key=path_key, frames=path.frames, manifest_key=step.manifest_key
        )
        return await step.record(
            output,
            {
                "mode": input.camera.mode,
                "causal": input.camera.causal,
                "points": len(scene.player_frame),
                "ball_points": len(scene.ball_frame),
            },
        )

    @staticmethod
    def _key(input: VcamPlanInput | VcamRenderInput, view: str, name: str) -> str:
        folder = f"views/{view}/{name}" if view else name
        return artifact_key(input.organization_id, input.match_id, input.revision, STAGE, folder)

    @activity.defn(name=names.VCAM_RENDER)
    async def render_chunk(self, input: VcamRenderInput) -> VcamRenderOutput:
        """Render one chunk's virtual-camera views once, encode every rendition of the ladder
        in the same pass, and store them (``<rendition>/chunk-NNNNN.mp4``)."""
        _check_view(input.view)
        ladder = ladder_of(input)
        step = await self._render_step(input, ladder)
        if (done := await step.recorded()) is not None:
            return done
        name = f"chunk-{input.chunk:05d}"
        scratch = Path(tempfile.mkdtemp(prefix="pv-vcam-"))
        try:
            targets = [
                EncodeTarget(r.name, r.width, r.height, scratch / f"{r.name}.mp4", r.max_kbps)
                for r in ladder
            ]
            written = await self._render(input, scratch / "panorama.mp4", targets)
            renditions: list[RenditionChunk] = []
            for result in written:
                encoded = result.rendition
                if encoded.frames != input.frames:
                    # The HLS timeline assumes every chunk has its planned length: a short or
                    # long panorama chunk is a pipeline bug that retrying cannot fix.
                    raise ApplicationError(
                        f"chunk {input.chunk}: rendered {encoded.frames} frames, "
                        f"expected {input.frames}",
                        type="FrameCountMismatch",
                        non_retryable=True,
                    )
                key = self._key(input, input.view, f"{encoded.name}/{name}.mp4")
                await self._objects.upload_file(
                    key, encoded.path, content_type="video/mp4", sha256=result.sha256
                )
                renditions.append(
                    RenditionChunk(
                        name=encoded.name,
                        width=encoded.width,
                        height=encoded.height,
                        video_key=key,
                        sha256=result.sha256,
                        size=result.size,
                        codecs=encoded.codecs,
                    )
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        top = renditions[0]
        output = VcamRenderOutput(
            chunk=input.chunk,
            video_key=top.video_key,
            sha256=top.sha256,
            frames=input.frames,
            manifest_key=step.manifest_key,
            renditions=renditions,
        )
        return await step.record(
            output, {"encoder": self._encoder, "sizes": {r.name: r.size for r in renditions}}
        )

    async def _plan_step(self, input: VcamPlanInput) -> StageStep[VcamPlanOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "fps": input.fps,
                "panorama_model": await object_digest(self._objects, input.panorama_model_key),
                "track_points": await asyncio.to_thread(self._track_points_digest, input),
                "ball_points": await asyncio.to_thread(ball_points_digest, self._analytics, input),
                "camera": {
                    "mode": input.camera.mode,
                    "params": dict(sorted(input.camera.params.items())),
                    "causal": input.camera.causal,
                },
            },
            code_version=CODE_VERSION,
            output_type=VcamPlanOutput,
            folder=_view_folder(input.view, "plan"),
        )

    async def _render_step(
        self, input: VcamRenderInput, ladder: list[Rendition]
    ) -> StageStep[VcamRenderOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={
                "panorama_video": await object_digest(self._objects, input.panorama_video_key),
                "path": await object_digest(self._objects, input.path_key),
                "first_frame": input.first_frame,
                "frames": input.frames,
                "fps": input.fps,
                "ladder": [(r.name, r.width, r.height, r.max_kbps) for r in ladder],
                "gop": gop_of(input),
            },
            code_version=CODE_VERSION,
            output_type=VcamRenderOutput,
            folder=_view_folder(input.view, f"chunk-{input.chunk:05d}"),
        )

    async def _render(
        self, input: VcamRenderInput, panorama: Path, targets: list[EncodeTarget]
    ) -> list[RenderedRendition]:
        """Download the chunk's panorama and the path, and render the ladder into ``targets``."""
        await self._objects.download_file(input.panorama_video_key, panorama)
        table = pq.read_table(io.BytesIO(await self._objects.get(input.path_key)))
        path = VcamPath.from_table(table)
        # None for a path planned before views existed: it is rendered as crops, as it was.
        geometry = geometry_of(table)
        # A chunk is seconds of video: a retry renders it again from the start, so the
        # heartbeats report progress only. The first frame of every rendition is a keyframe.
        return await asyncio.to_thread(
            partial(
                render_ladder,
                gop=gop_of(input),
                on_progress=frames_done_reporter(),
                encoder=self._encoder,
                geometry=geometry,
            ),
            panorama,
            path,
            input.first_frame,
            targets,
            input.fps,
        )

    def _track_points(self, input: VcamPlanInput) -> dict[str, np.ndarray]:
        return self._analytics.query_numpy(
            "SELECT frame, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )

    def _ball_points(self, input: VcamPlanInput) -> dict[str, np.ndarray]:
        """The frames where the ball is reported (visible and in play); none in a revision
        tracked before the ball was."""
        rows = self._analytics.query_numpy(
            "SELECT frame, pitch_x, pitch_y, height_m FROM ball_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND visible = 1 AND in_play = 1",
            {"org": input.organization_id, "match": input.match_id, "revision": input.revision},
        )
        if not rows:  # chDB answers an empty result without columns
            empty = np.zeros(0)
            return {"frame": empty, "pitch_x": empty, "pitch_y": empty, "height_m": empty}
        return rows

    def _track_points_digest(self, input: VcamPlanInput) -> str:
        # The positions decide the path; speed (written by analyze, maybe concurrently) does
        # not, so it stays out.
        return track_points_digest(
            self._analytics, input, "chunk, frame, track_id, pitch_x, pitch_y"
        )


def ladder_of(input: VcamRenderInput) -> list[Rendition]:
    """The renditions a render request asks for, top first.

    ``input.ladder`` when given. Otherwise the default ladder's renditions that fit in the
    requested view size, topped by that size itself when no default rung has it.
    """
    if input.ladder:
        return list(input.ladder)
    fitting = [r for r in DEFAULT_LADDER if r.width <= input.width and r.height <= input.height]
    if not fitting or (fitting[0].width, fitting[0].height) != (input.width, input.height):
        top = Rendition(f"{input.height}p", input.width, input.height, DEFAULT_LADDER[0].max_kbps)
        fitting = [top, *(r for r in fitting if r.name != top.name)]
    return fitting


def gop_of(input: VcamRenderInput) -> int:
    """Keyframe interval in frames: ``input.gop_frames``, or one second of video."""
    return input.gop_frames if input.gop_frames > 0 else max(1, round(input.fps))


def _view_folder(view: str, step: str) -> tuple[str, ...]:
    """Manifest folder of a step: the match's own view as before, a re-rendered view apart."""
    return ("views", view, step) if view else (step,)


def _check_view(view: str) -> None:
    """Refuse a view name that is not safe in an object key (a request's fault: no retry)."""
    if view and not VIEW_NAME.fullmatch(view):
        raise ApplicationError(
            f"bad view name {view!r}: lower-case letters, digits and '-', at most 64",
            type="BadViewName",
            non_retryable=True,
        )
