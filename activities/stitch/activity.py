"""The stitch stage as Temporal activities: the panorama model once, then one chunk at a time.

`prepare` fixes the panorama geometry of the match (stored as JSON; the tracker and the virtual
camera read it). `stitch_chunk` remaps and blends one chunk of both recordings into a panorama
video. Workers keep the recordings, the rig and the remap tables of the matches they work on in
a local cache keyed by content digest, so a worker stitching many chunks of one match downloads
each recording once and builds the tables once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from temporalio import activity

from activities.stitch.chunk import stitch_chunk
from activities.stitch.panorama import (
    PanoramaModel,
    StitchMaps,
    build_stitch_maps,
    panorama_model_from_rig,
    pitch_to_panorama,
)
from polyvision.artifacts import (
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.geometry import Rig
from polyvision.heartbeat import heartbeat
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "stitch-1"


@dataclass
class StitchPrepareInput:
    """The match whose panorama geometry to fix."""

    organization_id: str
    match_id: str
    revision: int
    rig_key: str
    scale: float = 1.0


@dataclass
class StitchPrepareOutput:
    """The panorama of the match.

    Attributes:
        panorama_model_key: Object key of the `PanoramaModel` JSON.
        width: Panorama width in pixels.
        height: Panorama height in pixels.
        pitch_polygon: The pitch outline (with a margin) in panorama pixels: where detection
            is worth running.
    """

    panorama_model_key: str
    width: int
    height: int
    pitch_polygon: list[tuple[float, float]]


@dataclass
class StitchChunkInput:
    """One chunk of both recordings to stitch."""

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    left_key: str
    right_key: str
    left_sha256: str
    right_sha256: str
    rig_key: str
    panorama_model_key: str
    start_frame: int
    end_frame: int
    fps: float
    decode_from_left: int | None = None
    decode_from_right: int | None = None


@dataclass
class StitchChunkOutput:
    """The chunk's panorama video."""

    chunk: int
    video_key: str
    sha256: str
    frames: int
    manifest_key: str
    from_manifest: bool = False


def pitch_polygon(model: PanoramaModel, margin_m: float = 3.0) -> list[tuple[float, float]]:
    """The pitch outline plus ``margin_m``, at ground and head height, in panorama pixels."""
    length, width = model.pitch_length_m, model.pitch_width_m
    xs = np.linspace(-margin_m, length + margin_m, 40)
    ys = np.linspace(-margin_m, width + margin_m, 20)
    outline = np.concatenate(
        [
            np.column_stack([xs, np.full_like(xs, -margin_m)]),
            np.column_stack([np.full_like(ys, length + margin_m), ys]),
            np.column_stack([xs[::-1], np.full_like(xs, width + margin_m)]),
            np.column_stack([np.full_like(ys, -margin_m), ys[::-1]]),
        ]
    )
    rings = [
        pitch_to_panorama(model, np.column_stack([outline, np.full(len(outline), z)]))
        for z in (0.0, 2.2)
    ]
    points = np.concatenate(rings)
    points = points[np.isfinite(points).all(axis=1)]
    points[:, 0] = np.clip(points[:, 0], 0, model.width - 1)
    points[:, 1] = np.clip(points[:, 1], 0, model.height - 1)
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    return [(float(x), float(y)) for x, y in hull]


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

    @activity.defn(name="stitch_prepare")
    async def prepare(self, input: StitchPrepareInput) -> StitchPrepareOutput:
        """Fix the panorama geometry of the match from its rig."""
        rig = Rig.from_json((await self._objects.get(input.rig_key)).decode())
        model = panorama_model_from_rig(rig, scale=input.scale)
        key = artifact_key(
            input.organization_id, input.match_id, input.revision, "stitch", "panorama.json"
        )
        await self._objects.put(key, model.to_json().encode(), content_type="application/json")
        return StitchPrepareOutput(key, model.width, model.height, pitch_polygon(model))

    @activity.defn(name="stitch_chunk")
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        """Stitch one chunk of both recordings into a panorama video."""
        stage = artifact_key(input.organization_id, input.match_id, input.revision, "stitch")
        manifest_key = f"{stage}/chunk-{input.chunk:05d}.manifest.json"
        video_key = f"{stage}/chunk-{input.chunk:05d}.mp4"
        rig_json = await self._objects.get(input.rig_key)
        model_json = await self._objects.get(input.panorama_model_key)
        digest = inputs_digest(
            {
                "left": input.left_sha256,
                "right": input.right_sha256,
                "rig": rig_json.decode(),
                "model": model_json.decode(),
                "frames": (input.start_frame, input.end_frame),
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return StitchChunkOutput(
                input.chunk,
                video_key,
                str(done.outputs["sha256"]),
                int(done.outputs["frames"]),
                manifest_key,
                from_manifest=True,
            )
        left = await self._cached(input.left_key, input.left_sha256, ".video")
        right = await self._cached(input.right_key, input.right_sha256, ".video")
        maps = await asyncio.to_thread(self._stitch_maps, rig_json, model_json)
        scratch = Path(tempfile.mkdtemp(prefix="pv-stitch-"))
        loop = asyncio.get_running_loop()

        def progress(frames_done: int) -> None:
            # Called from the stitching thread; heartbeats belong to the activity's loop.
            loop.call_soon_threadsafe(heartbeat, {"frames_done": frames_done})

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
        sha256 = info.sha256 or result.sha256
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="stitch",
                inputs_digest=digest,
                code_version=CODE_VERSION,
                outputs={"video_key": video_key, "sha256": sha256, "frames": result.frames},
            ),
        )
        return StitchChunkOutput(input.chunk, video_key, sha256, result.frames, manifest_key)
