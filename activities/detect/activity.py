"""The detect stage as a Temporal activity: tiled detection over one panorama chunk.

Thin on purpose: it fetches the chunk's video, runs `detect_tiled` frame by frame (`rows`),
checkpoints partial rows so a crashed attempt resumes where its last heartbeat says, writes the
rows into the analytics store as one replaceable (match, revision, chunk) slice, and records its
output last with the stage skeleton (`polyvision.stage.StageStep`), so a retried or replayed
attempt with the same inputs returns at once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pyarrow as pa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.detect.backend import OnnxDetector
from activities.detect.ball_video import BallFinder, ball_diameter_map, pitch_mask
from activities.detect.contracts import DetectChunkInput, DetectChunkOutput
from activities.detect.frames import decode_frames
from activities.detect.inference import build_detector, probe_tensorrt_version, settings_for_machine
from activities.detect.model_spec import ModelSpec
from activities.detect.model_store import ModelStoreError
from activities.detect.pitch_tiles import plan_pitch_tiles
from activities.detect.registry import RegisteredModel, default_model, materialise
from activities.detect.rows import (
    ball_rows,
    concat_rows,
    detection_counts,
    frame_rows,
    last_people,
    rows_from_parquet,
    rows_to_parquet,
)
from activities.detect.tiling import Detector, Tile, plan_tiles
from activities.detect.tuning import DetectTuning
from activities.stitch.panorama import PanoramaModel, player_region_mask
from polyvision.artifacts import artifact_key
from polyvision.capabilities import detect_capabilities
from polyvision.heartbeat import heartbeat, resume_details
from polyvision.stage import StageStep
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectNotFound, ObjectStore
from polyvision.temporal import names

CODE_VERSION = "detect-6"
"""Bump when the same inputs would give different rows (model, tiling or merge changes).

detect-2: person rows carry their torso colour (``torso_l, torso_a, torso_b``).
detect-3: the manifest has the stage skeleton's layout (`polyvision.stage`).
detect-4: tiles may be upscaled for small players (``DetectChunkInput.upscale``).
detect-5: ball rows are the ball candidates (`activities.detect.ball_video.BallFinder`).
detect-6: people on every ``stride``-th match frame only; tiles from the pitch's region mask;
the ball's top-hat with a square, its motion on the luminance."""

BALL_MARGIN_M = 12.0
"""Ball candidates are looked for this far beyond the lines: a lofted ball's image meets the
grass far behind it (the tracker tells flights from spare balls standing there)."""

STAGE = "detect"

CHECKPOINT_FRAMES = 50
"""Partial rows are saved this often, so a crash loses at most this many frames of work."""


class DetectActivities:
    """The detect activity, bound to the worker's stores and model sources.

    Which model runs is decided once per worker, on the first chunk it detects: the registry's
    default (``polyvision models set-default``) when ``sessions`` is given and one is set, else
    the bundled YOLOX-nano from ``models_dir``. Once per worker, not per chunk, so a worker does
    not switch models halfway through a match; workers that start detecting after a
    ``set-default`` run the new default. A registered model's identity is part of each chunk's
    manifest inputs, so a recorded result is never reused for another model; the file itself is
    fetched and loaded only when a chunk has work to do, so a replayed chunk answers from its
    manifest without a model, as it always did.

    Args:
        objects: Object store holding the panorama chunks, the manifests and registered models.
        analytics: Analytics store receiving the detection rows.
        models_dir: Directory holding the bundled ONNX model (``PV_MODELS_DIR``).
        detector_factory: Builds the detector (tests inject a counting one); by default the
            chosen model on ONNX Runtime, created once per worker and shared by its threads
            (ONNX Runtime sessions are safe to call concurrently).
        sessions: The metadata store holding the model registry; None: bundled model only.
        cache_dir: Local cache of registered models (the worker's data directory).
        tuning: How much detection each frame gets (`activities.detect.tuning`).
    """

    def __init__(
        self,
        objects: ObjectStore,
        analytics: AnalyticsStore,
        models_dir: Path,
        detector_factory: Callable[[], Detector] | None = None,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        cache_dir: Path | None = None,
        tuning: DetectTuning | None = None,
    ) -> None:
        self._objects = objects
        self._analytics = analytics
        self._models_dir = models_dir
        self._factory = detector_factory
        self._sessions = sessions
        self._cache_dir = cache_dir or Path(tempfile.gettempdir()) / "polyvision-model-cache"
        self._detector: Detector | None = None
        self._chosen: tuple[RegisteredModel | None] | None = None
        self._lock: asyncio.Lock | None = None
        self._tuning = tuning or DetectTuning()

    async def _registered(self) -> RegisteredModel | None:
        """The registered model this worker runs, read once (None: the bundled model)."""
        if self._factory is not None or self._sessions is None:
            return None
        if self._chosen is None:
            # Concurrent first chunks may both read it: the same row, so no lock is needed.
            self._chosen = (await default_model(self._sessions),)
        return self._chosen[0]

    async def _load(self, registered: RegisteredModel | None) -> Detector:
        """The worker's detector, fetching and loading its model on first use."""
        if self._detector is not None:
            return self._detector
        # Created here, not in __init__: a lock binds to the loop that first waits on it.
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._detector is None:
                if self._factory is not None:
                    self._detector = await asyncio.to_thread(self._factory)
                else:
                    self._detector = await self._load_model(registered)
        return self._detector

    async def _load_model(self, registered: RegisteredModel | None) -> Detector:
        try:
            model = await materialise(
                self._objects,
                registered,
                cache_dir=self._cache_dir,
                models_dir=self._models_dir,
            )
            return await asyncio.to_thread(self._build_detector, model.path, model.spec)
        except ModelStoreError as exc:
            # A missing or corrupt model will not appear by retrying: fail the match at once,
            # with the message that names the file, its sha256 and how to provide one.
            raise ApplicationError(str(exc), type="ModelNotFound", non_retryable=True) from exc

    def _build_detector(self, path: Path, spec: ModelSpec) -> Detector:
        """The model on ONNX Runtime, laid out as the tuning says.

        "auto": the machine's best (`settings_for_machine`): TensorRT or CUDA on a GPU, else one
        single-thread session per core, the tiles of a frame spread over them. "ort-default":
        one session with ONNX Runtime's own threads (the naive baseline of ``bench/pipeline``).
        """
        if self._tuning.inference_layout == "ort-default":
            return OnnxDetector(path, spec, providers=["CPUExecutionProvider"])
        gpus = [gpu.name for gpu in detect_capabilities().gpus]
        settings = settings_for_machine(
            os.cpu_count() or 1,
            ort.get_available_providers(),
            gpus,
            cache_dir=self._cache_dir / "tensorrt",
        )
        return build_detector(
            path,
            spec,
            settings,
            device_name=gpus[0] if gpus else "",
            trt_version=probe_tensorrt_version() or "",
        )

    @activity.defn(name=names.DETECT_CHUNK)
    async def detect_chunk(self, input: DetectChunkInput) -> DetectChunkOutput:
        """Detect people and the ball in every frame of one panorama chunk."""
        registered = await self._registered()
        step = self._step(input, registered)
        if (done := await step.recorded()) is not None:
            return done
        detector = await self._load(registered)
        partial_key = self._partial_key(input)
        scratch = Path(tempfile.mkdtemp(prefix="pv-detect-"))
        try:
            video = scratch / "chunk.mp4"
            await self._objects.download_file(input.video_key, video)
            table, frames = await self._detect_video(input, detector, video, partial_key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        persons, balls = detection_counts(table)
        await asyncio.to_thread(
            self._analytics.replace_slice,
            "detections",
            input.organization_id,
            input.match_id,
            input.revision,
            input.chunk,
            table,
        )
        output = DetectChunkOutput(
            input.chunk, frames, persons, balls, step.manifest_key, stride=self._tuning.stride
        )
        await step.record(output, {"rows": len(table)})
        # After the manifest: a crash in between leaves a stray checkpoint, never lost work.
        await self._objects.delete(partial_key)
        return output

    def _step(
        self, input: DetectChunkInput, registered: RegisteredModel | None = None
    ) -> StageStep[DetectChunkOutput]:
        """The chunk's stage step; its inputs are everything the rows depend on."""
        inputs: dict[str, Any] = {
            "video_sha256": input.video_sha256,
            "first_frame": input.first_frame,
            "roi": input.roi,
            "score_threshold": input.score_threshold,
            "tile": input.tile,
            "overlap": input.overlap,
            "upscale": input.upscale,
            "stride": self._tuning.stride,
            "tiles": self._tuning.tiles,
        }
        if registered is not None:
            # Only registered models are named: manifests written with the bundled model
            # before the registry existed keep matching.
            inputs["model"] = registered.identity
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=inputs,
            code_version=CODE_VERSION,
            output_type=DetectChunkOutput,
            folder=(f"chunk-{input.chunk:05d}",),
        )

    @staticmethod
    def _partial_key(input: DetectChunkInput) -> str:
        """Where the rows of a chunk in progress are checkpointed."""
        name = f"chunk-{input.chunk:05d}.partial.parquet"
        return artifact_key(input.organization_id, input.match_id, input.revision, STAGE, name)

    async def _resume(self, partial_key: str) -> tuple[int, list[pa.Table]]:
        details = resume_details() or {}
        frames_done = int(details.get("frames_done", 0))
        if frames_done <= 0:
            return 0, []
        try:
            data = await self._objects.get(partial_key)
        except ObjectNotFound:  # checkpoint lost: start the chunk over
            return 0, []
        partial = rows_from_parquet(data)
        if partial is None:  # saved by older code: start over
            return 0, []
        return frames_done, [partial]

    async def _checkpoint(self, partial_key: str, tables: list[pa.Table], frames_done: int) -> None:
        await self._objects.put(partial_key, rows_to_parquet(tables))
        heartbeat({"frames_done": frames_done})

    async def _panorama_model(self, input: DetectChunkInput) -> PanoramaModel | None:
        """The stitch stage's panorama model of the match's revision (None: a chunk detected
        outside a match, without one)."""
        key = artifact_key(
            input.organization_id, input.match_id, input.revision, "stitch", "panorama.json"
        )
        try:
            return PanoramaModel.from_json((await self._objects.get(key)).decode())
        except ObjectNotFound:
            return None

    @staticmethod
    def _ball_finder(model: PanoramaModel | None) -> BallFinder | None:
        """The chunk's ball finder, sized by the panorama model; without one the ball rows are
        the detector's alone."""
        if model is None:
            return None
        return BallFinder(ball_diameter_map(model), pitch_mask(model, BALL_MARGIN_M))

    def _tiles(
        self, input: DetectChunkInput, model: PanoramaModel | None, width: int, height: int
    ) -> list[Tile]:
        """The tiles every detected frame of the chunk is inferred on (`DetectTuning.tiles`).

        "sized": bands scaled to the players' size (`plan_pitch_tiles`); "pitch": the input's
        one upscale over the region a player on the pitch can be seen in (`player_region_mask`,
        not the polygon's convex hull, which holds the stands above a curved far touchline);
        "all": every tile. Without a panorama model (a chunk detected outside a match) the
        input's polygon, if any, is the region.
        """
        scope = self._tuning.tiles
        if scope == "all":
            return plan_tiles(width, height, input.tile, input.overlap, upscale=input.upscale)
        if model is None or (model.width, model.height) != (width, height):
            return plan_tiles(
                width, height, input.tile, input.overlap, roi=input.roi, upscale=input.upscale
            )
        region = player_region_mask(model)
        if scope == "sized":
            return plan_pitch_tiles(
                model, region, tile=input.tile, overlap=input.overlap, max_upscale=input.upscale
            )
        return plan_tiles(
            width, height, input.tile, input.overlap, roi=region, upscale=input.upscale
        )

    async def _detect_video(
        self, input: DetectChunkInput, detector: Detector, video: Path, partial_key: str
    ) -> tuple[pa.Table, int]:
        frames_done, tables = await self._resume(partial_key)
        checkpointed = frames_done
        frames = decode_frames(video)
        model = await self._panorama_model(input)
        balls = await asyncio.to_thread(self._ball_finder, model)
        tiles: list[Tile] | None = None
        # The people of the last fully detected frame: between two, the ball finder keeps
        # ignoring bright spots on shirts where the players just were (they move a few cm).
        people = last_people(tables, input.first_frame + frames_done)
        index = 0
        while (image := await asyncio.to_thread(next, frames, None)) is not None:
            frame = input.first_frame + index
            if index < frames_done:  # detected by an earlier attempt, recorded in the partial
                if balls is not None:  # the motion model still needs the frame
                    await asyncio.to_thread(balls.skip, image)
                index += 1
                continue
            if tiles is None:
                height, width = image.shape[:2]
                tiles = await asyncio.to_thread(self._tiles, input, model, width, height)
            if self._tuning.detects(frame):
                table, people = await asyncio.to_thread(
                    frame_rows, detector, image, tiles, frame, input.score_threshold, balls
                )
            else:
                table = await asyncio.to_thread(ball_rows, image, frame, balls, people)
            tables.append(table)
            index += 1
            if index % CHECKPOINT_FRAMES == 0:
                await self._checkpoint(partial_key, tables, index)
                checkpointed = index
            else:
                # Details always name the last saved checkpoint; the frame is progress only.
                heartbeat({"frames_done": checkpointed, "frame": index})
        return concat_rows(tables), index
