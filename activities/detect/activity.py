"""The detect stage as a Temporal activity: tiled YOLOX over one panorama chunk.

Thin on purpose: it fetches the chunk's video, runs `detect_tiled` frame by frame, checkpoints
partial rows so a crashed attempt resumes where its last heartbeat says, writes the rows into
the analytics store as one replaceable (match, revision, chunk) slice, and writes its manifest
last so a retried or replayed attempt with the same inputs returns at once.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.detect.colour import torso_lab
from activities.detect.detections import Detections
from activities.detect.model_store import YOLOX_NANO_NAME, ModelStoreError, resolve_model
from activities.detect.tiling import Detector, Tile, detect_tiled, plan_tiles
from activities.detect.yolox import YoloxDetector
from polyvision.artifacts import (
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.heartbeat import heartbeat
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectNotFound, ObjectStore

CODE_VERSION = "detect-2"
"""Bump when the same inputs would give different rows (model, tiling or merge changes).

detect-2: person rows carry their torso colour (``torso_l, torso_a, torso_b``)."""

CHECKPOINT_FRAMES = 50
"""Partial rows are saved this often, so a crash loses at most this many frames of work."""

DETECTION_COLUMNS = (
    "frame",
    "class_id",
    "score",
    "x1",
    "y1",
    "x2",
    "y2",
    "torso_l",
    "torso_a",
    "torso_b",
)


@dataclass
class DetectChunkInput:
    """One chunk of panorama video to detect people and the ball in.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk: Chunk index within the revision.
        video_key: Object key of the chunk's panorama video.
        video_sha256: Its digest (part of the manifest's inputs).
        first_frame: Match frame index of the chunk's first frame.
        roi: Panorama polygon ``[(x, y), ...]`` worth detecting in (the pitch); None: all.
        score_threshold: Minimum detection score kept.
        tile: Tile size in pixels (the model's input size).
        overlap: Tile overlap in pixels.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk: int
    video_key: str
    video_sha256: str
    first_frame: int
    roi: list[tuple[float, float]] | None = None
    score_threshold: float = 0.3
    tile: int = 416
    overlap: int = 96


@dataclass
class DetectChunkOutput:
    """What the chunk produced.

    Attributes:
        chunk: Chunk index.
        frames: Frames processed.
        persons: Person detections written.
        balls: Ball detections written.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    chunk: int
    frames: int
    persons: int
    balls: int
    manifest_key: str
    from_manifest: bool = False


def detections_table(
    frame_index: int, detections: Detections, torso: np.ndarray | None = None
) -> pa.Table:
    """One frame's detections as rows of the analytics `detections` columns.

    Args:
        frame_index: Match frame index of the rows.
        detections: The frame's detections.
        torso: ``[N, 3]`` Lab torso colour per detection (`torso_lab`); None: all NaN.
    """
    count = len(detections)
    lab = np.full((count, 3), np.nan, np.float32) if torso is None else torso
    lab = np.asarray(lab, np.float32).reshape(count, 3)
    return pa.table(
        {
            "frame": pa.array(np.full(count, frame_index, np.uint32)),
            "class_id": pa.array(detections.class_id.astype(np.uint8)),
            "score": pa.array(detections.score),
            "x1": pa.array(detections.xyxy[:, 0]),
            "y1": pa.array(detections.xyxy[:, 1]),
            "x2": pa.array(detections.xyxy[:, 2]),
            "y2": pa.array(detections.xyxy[:, 3]),
            "torso_l": pa.array(lab[:, 0]),
            "torso_a": pa.array(lab[:, 1]),
            "torso_b": pa.array(lab[:, 2]),
        }
    )


def person_colours(image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
    """``[N, 3]`` torso Lab colour of each person detection; NaN for the ball (and others)."""
    out = np.full((len(detections), 3), np.nan, np.float32)
    people = np.flatnonzero(detections.class_id == Detections.PERSON)
    if len(people):
        out[people] = torso_lab(image_bgr, detections.xyxy[people])
    return out


def _detect_frame(
    detector: Detector,
    image: np.ndarray,
    tiles: list[Tile],
    frame_index: int,
    score_threshold: float,
) -> pa.Table:
    found = detect_tiled(detector, image, tiles, score_threshold=score_threshold)
    return detections_table(frame_index, found, person_colours(image, found))


def _empty_table() -> pa.Table:
    return detections_table(0, Detections.empty())


def _decode_frames(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)


class DetectActivities:
    """The detect activity, bound to the worker's stores and model directory.

    Args:
        objects: Object store holding the panorama chunks and the manifests.
        analytics: Analytics store receiving the detection rows.
        models_dir: Directory holding the ONNX model (``PV_MODELS_DIR``).
        detector_factory: Builds the detector (tests inject a counting one); by default
            YOLOX-nano from ``models_dir``, created once per worker and shared by its threads
            (ONNX Runtime sessions are safe to call concurrently).
    """

    def __init__(
        self,
        objects: ObjectStore,
        analytics: AnalyticsStore,
        models_dir: Path,
        detector_factory: Callable[[], Detector] | None = None,
    ) -> None:
        self._objects = objects
        self._analytics = analytics
        self._models_dir = models_dir
        self._factory = detector_factory or self._yolox
        self._detector: Detector | None = None

    def _yolox(self) -> Detector:
        try:
            return YoloxDetector(resolve_model(self._models_dir, YOLOX_NANO_NAME))
        except ModelStoreError as exc:
            # A missing or corrupt model will not appear by retrying: fail the match at once,
            # with the message that names the file, its sha256 and PV_MODELS_DIR.
            raise ApplicationError(str(exc), type="ModelNotFound", non_retryable=True) from exc

    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = self._factory()
        return self._detector

    @activity.defn(name="detect_chunk")
    async def detect_chunk(self, input: DetectChunkInput) -> DetectChunkOutput:
        """Detect people and the ball in every frame of one panorama chunk."""
        stage_key = artifact_key(input.organization_id, input.match_id, input.revision, "detect")
        manifest_key = f"{stage_key}/chunk-{input.chunk:05d}.manifest.json"
        digest = inputs_digest(
            {
                "video_sha256": input.video_sha256,
                "first_frame": input.first_frame,
                "roi": input.roi,
                "score_threshold": input.score_threshold,
                "tile": input.tile,
                "overlap": input.overlap,
            }
        )
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return DetectChunkOutput(
                chunk=input.chunk,
                frames=int(done.outputs["frames"]),
                persons=int(done.outputs["persons"]),
                balls=int(done.outputs["balls"]),
                manifest_key=manifest_key,
                from_manifest=True,
            )
        partial_key = f"{stage_key}/chunk-{input.chunk:05d}.partial.parquet"
        detector = await asyncio.to_thread(self.detector)
        scratch = Path(tempfile.mkdtemp(prefix="pv-detect-"))
        try:
            video = scratch / "chunk.mp4"
            await self._objects.download_file(input.video_key, video)
            table, frames = await self._detect_video(input, detector, video, partial_key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        class_ids = table.column("class_id").to_numpy()
        balls = int((class_ids == Detections.SPORTS_BALL).sum())
        persons = int(len(class_ids) - balls)
        await asyncio.to_thread(
            self._analytics.replace_slice,
            "detections",
            input.organization_id,
            input.match_id,
            input.revision,
            input.chunk,
            table,
        )
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="detect",
                inputs_digest=digest,
                code_version=CODE_VERSION,
                outputs={"frames": frames, "persons": persons, "balls": balls, "rows": len(table)},
            ),
        )
        await self._objects.delete(partial_key)
        return DetectChunkOutput(input.chunk, frames, persons, balls, manifest_key)

    async def _resume(self, partial_key: str) -> tuple[int, list[pa.Table]]:
        details = activity.info().heartbeat_details if activity.in_activity() else ()
        if not details or not isinstance(details[0], dict):
            return 0, []
        frames_done = int(details[0].get("frames_done", 0))
        if frames_done <= 0:
            return 0, []
        try:
            data = await self._objects.get(partial_key)
        except ObjectNotFound:  # checkpoint lost: start the chunk over
            return 0, []
        partial = pq.read_table(io.BytesIO(data))
        if not partial.schema.equals(_empty_table().schema):  # saved by older code: start over
            return 0, []
        return frames_done, [partial]

    async def _checkpoint(self, partial_key: str, tables: list[pa.Table], frames_done: int) -> None:
        buffer = io.BytesIO()
        pq.write_table(pa.concat_tables(tables) if tables else _empty_table(), buffer)
        await self._objects.put(partial_key, buffer.getvalue())
        heartbeat({"frames_done": frames_done})

    async def _detect_video(
        self, input: DetectChunkInput, detector: Detector, video: Path, partial_key: str
    ) -> tuple[pa.Table, int]:
        frames_done, tables = await self._resume(partial_key)
        checkpointed = frames_done
        frames = _decode_frames(video)
        tiles = None
        index = 0
        while (image := await asyncio.to_thread(next, frames, None)) is not None:
            if index < frames_done:  # detected by an earlier attempt, recorded in the partial
                index += 1
                continue
            if tiles is None:
                height, width = image.shape[:2]
                tiles = plan_tiles(width, height, input.tile, input.overlap, roi=input.roi)
            tables.append(
                await asyncio.to_thread(
                    _detect_frame,
                    detector,
                    image,
                    tiles,
                    input.first_frame + index,
                    input.score_threshold,
                )
            )
            index += 1
            if index % CHECKPOINT_FRAMES == 0:
                await self._checkpoint(partial_key, tables, index)
                checkpointed = index
            else:
                # Details always name the last saved checkpoint; the frame is progress only.
                heartbeat({"frames_done": checkpointed, "frame": index})
        table = pa.concat_tables(tables) if tables else _empty_table()
        return table, index
