"""The stitch stage as Temporal activities: the panorama model once, then one chunk at a time.

`prepare` fixes the panorama geometry of the match (stored as JSON; the tracker and the virtual
camera read it). `stitch_chunk` remaps and blends one chunk of both recordings into a panorama
video. Workers keep the recordings, the rig and the remap tables of the matches they work on in
a local cache keyed by content digest, so a worker stitching many chunks of one match downloads
each recording once and builds the tables once. Both record their output with the stage
skeleton (`polyvision.stage.StageStep`): a retried or replayed attempt with the same inputs
returns at once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity

from activities.stitch.chunk import stitch_chunk
from activities.stitch.contracts import (
    StitchChunkInput,
    StitchChunkOutput,
    StitchPrepareInput,
    StitchPrepareOutput,
)
from activities.stitch.panorama import (
    PanoramaModel,
    StitchMaps,
    build_stitch_maps,
    panorama_model_from_rig,
    pitch_polygon,
)
from polyvision.artifacts import artifact_key, inputs_digest
from polyvision.geometry import Rig
from polyvision.heartbeat import frames_done_reporter
from polyvision.stage import StageStep
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "stitch-2"
"""Bump when the same inputs would give other outputs.

stitch-2: manifests have the stage skeleton's layout (`polyvision.stage`); `prepare` has one."""

STAGE = "stitch"

OutputT = TypeVar("OutputT")


class StitchActivities:
    """The stitch activities, bound to the worker's object store and a local cache directory."""

    def __init__(self, objects: ObjectStore, cache_dir: Path) -> None:
        self._objects = objects
        self._cache_dir = cache_dir
        self._maps: dict[tuple[str, str], StitchMaps] = {}
        self._maps_lock = threading.Lock()
        self._download_locks: dict[str, asyncio.Lock] = {}

    async def _cached(self, key: str, digest: str, suffix: str) -> Path:
        """A local copy of an object, downloaded once per worker for a given content digest."""
        path = self._cache_dir / f"{digest}{suffix}"
        lock = self._download_locks.setdefault(digest, asyncio.Lock())
        async with lock:
            if not path.exists():
                self._cache_dir.mkdir(parents=True, exist_ok=True)
                await self._objects.download_file(key, path)
        return path

    def _stitch_maps(self, rig_json: bytes, model_json: bytes) -> StitchMaps:
        cache_key = (inputs_digest({"rig": rig_json}), inputs_digest({"model": model_json}))
        with self._maps_lock:
            maps = self._maps.get(cache_key)
            if maps is None:
                rig = Rig.from_json(rig_json.decode())
                model = PanoramaModel.from_json(model_json.decode())
                maps = build_stitch_maps(rig, model)
                self._maps = {cache_key: maps}  # one match at a time per worker is the norm
            return maps

    def _step(
        self,
        input: StitchPrepareInput | StitchChunkInput,
        inputs: dict[str, Any],
        output_type: type[OutputT],
        folder: str,
    ) -> StageStep[OutputT]:
        """The stage step of one unit of the stage: ``prepare``, or one chunk's folder."""
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=inputs,
            code_version=CODE_VERSION,
            output_type=output_type,
            folder=(folder,),
        )

    @activity.defn(name=names.STITCH_PREPARE)
    async def prepare(self, input: StitchPrepareInput) -> StitchPrepareOutput:
        """Fix the panorama geometry of the match from its rig."""
        rig_json = (await self._objects.get(input.rig_key)).decode()
        inputs = {"rig": rig_json, "scale": input.scale}
        step = self._step(input, inputs, StitchPrepareOutput, "prepare")
        if (done := await step.recorded()) is not None:
            return done
        model = panorama_model_from_rig(Rig.from_json(rig_json), scale=input.scale)
        key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "panorama.json"
        )
        await self._objects.put(key, model.to_json().encode(), content_type="application/json")
        return await step.record(
            StitchPrepareOutput(key, model.width, model.height, pitch_polygon(model))
        )

    @activity.defn(name=names.STITCH_CHUNK)
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        """Stitch one chunk of both recordings into a panorama video."""
        name = f"chunk-{input.chunk:05d}"
        rig_json = await self._objects.get(input.rig_key)
        model_json = await self._objects.get(input.panorama_model_key)
        inputs = {
            "left": input.left_sha256,
            "right": input.right_sha256,
            "rig": rig_json.decode(),
            "model": model_json.decode(),
            "frames": (input.start_frame, input.end_frame),
        }
        step = self._step(input, inputs, StitchChunkOutput, name)
        if (done := await step.recorded()) is not None:
            return done
        video_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, f"{name}.mp4"
        )
        left = await self._cached(input.left_key, input.left_sha256, ".video")
        right = await self._cached(input.right_key, input.right_sha256, ".video")
        maps = await asyncio.to_thread(self._stitch_maps, rig_json, model_json)
        sha256, frames = await self._stitch_and_upload(input, left, right, maps, video_key)
        output = StitchChunkOutput(input.chunk, video_key, sha256, frames, step.manifest_key)
        return await step.record(output)

    async def _stitch_and_upload(
        self, input: StitchChunkInput, left: Path, right: Path, maps: StitchMaps, video_key: str
    ) -> tuple[str, int]:
        """Stitch the chunk into a scratch file and upload it; its sha256 and frame count."""
        scratch = Path(tempfile.mkdtemp(prefix="pv-stitch-"))
        progress = frames_done_reporter()

        try:
            out = scratch / "panorama.mp4"
            result = await asyncio.to_thread(
                stitch_chunk,
                left,
                right,
                input.start_frame,
                input.end_frame,
                maps,
                out,
                input.fps,
                input.decode_from_left,
                input.decode_from_right,
                progress,
                # A fixed thread count: x264's output depends on it, and chunk digests must
                # not depend on which worker stitched them.
                encoder_threads=2,
            )
            info = await self._objects.upload_file(video_key, out, sha256=result.sha256)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return info.sha256 or result.sha256, result.frames
