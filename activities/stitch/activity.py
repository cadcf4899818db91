"""The stitch stage as Temporal activities: the panorama and its lookup table once, then chunks.

`prepare` fixes the panorama geometry of the match (stored as JSON; the tracker and the virtual
camera read it) and builds the stitch's lookup table once per rig and revision (both cameras'
fixed-point maps over the whole panorama, `activities.stitch.maps`), stored compressed as
``{revision}/stitch/stitch-maps.npz``. `stitch_chunk` chooses the chunk's seam and exposure gains
from frames sampled in and around it (`activities.stitch.samples`, `choose_seam_and_gains`),
stitches every frame pair with them and records both in the chunk's manifest details. Workers
keep the recordings and the lookup table of the matches they work on in a local cache keyed by
content digest, so a worker stitching many chunks of one match downloads each once. Both record
their output with the stage skeleton (`polyvision.stage.StageStep`): a retried or replayed
attempt with the same inputs returns at once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
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
from activities.stitch.maps import (
    MAPS_FILE,
    StitchMaps,
    StitchMapsError,
    build_stitch_maps,
    maps_identity,
)
from activities.stitch.panorama import (
    PanoramaModel,
    panorama_model_from_rig,
    pitch_polygon,
)
from activities.stitch.samples import sample_camera
from activities.stitch.stitch_plan import SeamChoice, StitchPlan, choose_seam_and_gains
from polyvision.artifacts import artifact_key
from polyvision.geometry import Rig
from polyvision.heartbeat import frames_done_reporter, heartbeating
from polyvision.stage import StageStep
from polyvision.storage.objects import ObjectNotFound, ObjectStore
from polyvision.temporal import names

CODE_VERSION = "stitch-3"
"""Bump when the same inputs would give other outputs.

stitch-2: manifests have the stage skeleton's layout (`polyvision.stage`); `prepare` has one.
stitch-3: panorama sized from the sources (5700x1668 for 3856x2180); a lookup table per revision;
a seam per chunk through the overlap around moving players, gains per chunk, a narrow feather."""

log = logging.getLogger(__name__)

STAGE = "stitch"

OutputT = TypeVar("OutputT")


class StitchActivities:
    """The stitch activities, bound to the worker's object store and a local cache directory."""

    def __init__(self, objects: ObjectStore, cache_dir: Path) -> None:
        self._objects = objects
        self._cache_dir = cache_dir
        self._maps: dict[str, StitchMaps] = {}
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

    async def _stitch_maps(
        self, input: StitchChunkInput, rig_json: bytes, model_json: bytes
    ) -> StitchMaps:
        """The revision's lookup table: in memory, else the local cache, else the store (stored
        by `prepare`); built here only when the store has none for this rig and panorama."""
        identity = maps_identity(rig_json.decode(), model_json.decode())
        with self._maps_lock:
            maps = self._maps.get(identity)
        if maps is not None:
            return maps
        key = _maps_key(input)
        path = self._cache_dir / f"{identity}.maps.npz"
        lock = self._download_locks.setdefault(identity, asyncio.Lock())
        async with lock:
            with self._maps_lock:
                maps = self._maps.get(identity)  # another chunk may have loaded it meanwhile
            if maps is not None:
                return maps
            try:
                if not path.exists():
                    self._cache_dir.mkdir(parents=True, exist_ok=True)
                    await self._objects.download_file(key, path)
                maps = await asyncio.to_thread(_load_maps, path)
            except (ObjectNotFound, StitchMapsError) as error:
                log.warning("stitch maps at %s unusable (%s); building them here", key, error)
            if maps is None or maps.identity != identity:
                path.unlink(missing_ok=True)
                rig = Rig.from_json(rig_json.decode())
                model = PanoramaModel.from_json(model_json.decode())
                maps = await asyncio.to_thread(build_stitch_maps, rig, model, identity)
        with self._maps_lock:
            self._maps = {identity: maps}  # one match at a time per worker is the norm
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
        """Fix the panorama geometry of the match from its rig and store its lookup table."""
        rig_json = (await self._objects.get(input.rig_key)).decode()
        inputs = {"rig": rig_json, "scale": input.scale}
        step = self._step(input, inputs, StitchPrepareOutput, "prepare")
        if (done := await step.recorded()) is not None:
            return done
        rig = Rig.from_json(rig_json)
        model = panorama_model_from_rig(rig, scale=input.scale)
        model_json = model.to_json()
        key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, "panorama.json"
        )
        await self._objects.put(key, model_json.encode(), content_type="application/json")
        identity = maps_identity(rig_json, model_json)
        async with heartbeating({"step": "maps"}):
            maps = await asyncio.to_thread(build_stitch_maps, rig, model, identity)
            data = await asyncio.to_thread(maps.to_bytes)
        maps_key = _maps_key(input)
        await self._objects.put(maps_key, data, content_type="application/octet-stream")
        return await step.record(
            StitchPrepareOutput(key, model.width, model.height, pitch_polygon(model)),
            {"maps_key": maps_key, "maps_bytes": len(data), "maps_identity": identity},
        )

    @activity.defn(name=names.STITCH_CHUNK)
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        """Stitch one chunk of both recordings into a panorama video.

        The chunk's seam and gains are chosen from frames sampled in and around it and recorded
        in its manifest's details (``seam``: a column per panorama row, ``gains``: ``[2, 3]``
        left and right BGR, ``band_half``, and figures about the choice).
        """
        name = f"chunk-{input.chunk:05d}"
        rig_json = await self._objects.get(input.rig_key)
        model_json = await self._objects.get(input.panorama_model_key)
        right_offset = input.right_frame_offset
        inputs = {
            "left": input.left_sha256,
            "right": input.right_sha256,
            "rig": rig_json.decode(),
            "model": model_json.decode(),
            "frames": (input.start_frame, input.end_frame),
            "right_offset": right_offset,
        }
        step = self._step(input, inputs, StitchChunkOutput, name)
        if (done := await step.recorded()) is not None:
            return done
        video_key = artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, f"{name}.mp4"
        )
        left = await self._cached(input.left_key, input.left_sha256, ".video")
        right = await self._cached(input.right_key, input.right_sha256, ".video")
        maps = await self._stitch_maps(input, rig_json, model_json)
        async with heartbeating({"step": "seam", "frames_done": 0}):
            choice = await asyncio.to_thread(
                _choose,
                maps,
                left,
                right,
                input.start_frame,
                input.end_frame,
                input.fps,
                right_offset,
            )
        sha256, frames = await self._stitch_and_upload(
            input, left, right, choice.plan(maps), video_key
        )
        output = StitchChunkOutput(input.chunk, video_key, sha256, frames, step.manifest_key)
        details = {
            "seam": choice.seam.tolist(),
            "gains": [[round(float(g), 6) for g in row] for row in choice.gains],
            "band_half": choice.band_half,
            "right_offset": right_offset,
            "figures": choice.figures,
        }
        return await step.record(output, details)

    async def _stitch_and_upload(
        self, input: StitchChunkInput, left: Path, right: Path, plan: StitchPlan, video_key: str
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
                plan,
                out,
                input.fps,
                input.decode_from_left,
                input.decode_from_right,
                progress,
                # A fixed thread count: x264's output depends on it, and chunk digests must
                # not depend on which worker stitched them.
                encoder_threads=2,
                right_offset=input.right_frame_offset,
            )
            info = await self._objects.upload_file(video_key, out, sha256=result.sha256)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return info.sha256 or result.sha256, result.frames


def _maps_key(input: StitchPrepareInput | StitchChunkInput) -> str:
    """Where `prepare` stores the revision's lookup table."""
    return artifact_key(input.organization_id, input.match_id, input.revision, STAGE, MAPS_FILE)


def _load_maps(path: Path) -> StitchMaps:
    return StitchMaps.from_bytes(path.read_bytes())


def _choose(
    maps: StitchMaps,
    left: Path,
    right: Path,
    start_frame: int,
    end_frame: int,
    fps: float,
    right_offset: int,
) -> SeamChoice:
    """Sample both recordings around the chunk (side by side) and choose its seam and gains."""
    with ThreadPoolExecutor(2, thread_name_prefix="stitch-sample") as pool:
        lefts = pool.submit(sample_camera, left, start_frame, end_frame, fps)
        rights = pool.submit(sample_camera, right, start_frame, end_frame, fps, offset=right_offset)
        return choose_seam_and_gains(maps, lefts.result(), rights.result())
