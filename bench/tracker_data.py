"""The tracker bench's input: one synthetic match's panorama detections, made once and cached.

The trackers are compared on the detections the pipeline's track stage reads, so they are made
the way the stages make them, in process and without the Temporal stack: the panorama model of
the rig (`panorama_model_from_rig`, the stage's default scale), each 10-second chunk stitched
with the seam and gains the stitch stage would choose for it (`choose_seam_and_gains` on
`sample_camera` frames), and YOLOX-nano tiled over the pitch region (`plan_tiles` with the
panorama's `pitch_polygon`, `frame_rows` at the detect stage's score threshold), torso colours
included. One difference: the stage detects in the encoded panorama video, this in the stitched
frames directly (no H.264 round trip), which changes a few low-score boxes, not the comparison.

The rows have the columns of the analytics ``detections`` table (``frame, class_id, score,
x1, y1, x2, y2, torso_l, torso_a, torso_b``), so a Parquet export of that table from a real
stack's run works as ``--detections`` too, with the stitch stage's panorama model JSON beside it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig
from activities.track.contracts import TrackChunk
from polyvision.geometry import Rig

CHUNK_S = 10.0
"""Chunk length, as ingest cuts a match: our tracker is driven chunk by chunk."""

SCORE_THRESHOLD = 0.3
"""The detect stage's default minimum score (`DetectChunkInput.score_threshold`)."""

DETECTIONS_FILE = "detections.parquet"
PANORAMA_FILE = "panorama.json"
TRUTH_DIR = "truth"
_VIDEOS = ("left.mp4", "right.mp4")
_COLUMNS = ("frame", "class_id", "score", "x1", "y1", "x2", "y2", "torso_l", "torso_a", "torso_b")


@dataclass(frozen=True)
class MatchDetections:
    """A match's panorama detections, row ``i`` one box (every class, as the detect stage
    writes them; each tracker adapter picks what it tracks).

    Attributes:
        frame: ``[N]`` match frame index.
        class_id: ``[N]`` COCO class (0 person, 32 ball).
        score: ``[N]`` detector score.
        xyxy: ``[N, 4]`` panorama pixels.
        torso_lab: ``[N, 3]`` torso colour in Lab, NaN where none (the ball).
    """

    frame: npt.NDArray[np.int64]
    class_id: npt.NDArray[np.int16]
    score: npt.NDArray[np.float32]
    xyxy: npt.NDArray[np.float32]
    torso_lab: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> MatchDetections:
        """The rows picked by a mask or an index array."""
        return MatchDetections(
            self.frame[rows],
            self.class_id[rows],
            self.score[rows],
            self.xyxy[rows],
            self.torso_lab[rows],
        )

    def in_chunk(self, chunk: TrackChunk) -> MatchDetections:
        """The rows of one chunk's frames."""
        first = chunk.first_frame
        return self.select((self.frame >= first) & (self.frame < first + chunk.frames))


def read_detections(path: Path) -> MatchDetections:
    """Rows from Parquet with the analytics ``detections`` columns (extra columns ignored)."""
    table = pq.read_table(path)
    missing = [c for c in _COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")

    def column(name: str, dtype: npt.DTypeLike) -> npt.NDArray[np.generic]:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

    frame = column("frame", np.int64).astype(np.int64)
    xyxy = np.column_stack([column(c, np.float32) for c in ("x1", "y1", "x2", "y2")])
    lab = np.column_stack([column(c, np.float32) for c in ("torso_l", "torso_a", "torso_b")])
    rows = MatchDetections(
        frame=frame,
        class_id=column("class_id", np.int16).astype(np.int16),
        score=column("score", np.float32).astype(np.float32),
        xyxy=xyxy.reshape(-1, 4).astype(np.float32),
        torso_lab=lab.reshape(-1, 3).astype(np.float32),
    )
    return rows.select(np.argsort(frame, kind="stable"))


def chunk_spans(frames: int, fps: float, seconds: float = CHUNK_S) -> list[TrackChunk]:
    """Regular chunks of about ``seconds`` over ``frames`` frames (the last holds the rest)."""
    size = max(1, round(seconds * fps))
    return [
        TrackChunk(chunk=i, first_frame=first, frames=min(size, frames - first))
        for i, first in enumerate(range(0, frames, size))
    ]


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _frames(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)


def ensure_truth(truth_dir: Path, seconds: float, size: tuple[int, int], seed: int) -> None:
    """Generate the synthetic match into ``truth_dir`` unless its truth and videos are there."""
    if (truth_dir / "truth.parquet").is_file() and all((truth_dir / v).is_file() for v in _VIDEOS):
        return
    from synth.generate import SynthConfig, generate_match

    _log(f"generating a {seconds:g} s synthetic match (seed {seed}) in {truth_dir}")
    config = SynthConfig(seconds=seconds, width=size[0], height=size[1], seed=seed)
    generate_match(config, truth_dir, progress=True)


def detect_match(truth_dir: Path, models_dir: Path, out_dir: Path) -> None:
    """Stitch and detect the synthetic match in ``truth_dir``; writes the detections and the
    panorama model into ``out_dir`` (see the module docstring for how)."""
    from activities.detect.model_store import YOLOX_NANO_NAME, resolve_model
    from activities.detect.rows import concat_rows, frame_rows
    from activities.detect.tiling import plan_tiles
    from activities.detect.yolox import YoloxDetector
    from activities.stitch.maps import build_stitch_maps
    from activities.stitch.panorama import pitch_polygon
    from activities.stitch.samples import sample_camera
    from activities.stitch.stitch_plan import choose_seam_and_gains, stitch_frame

    meta = json.loads((truth_dir / "match.json").read_text())
    fps, frame_count = float(meta["fps"]), int(meta["frames"])
    rig = Rig.load(truth_dir / "rig.json")
    model = panorama_model_from_rig(rig)
    maps = build_stitch_maps(rig, model)
    tiles = plan_tiles(model.width, model.height, roi=pitch_polygon(model))
    detector = YoloxDetector(resolve_model(models_dir, YOLOX_NANO_NAME, url=None))
    left_path, right_path = (truth_dir / v for v in _VIDEOS)
    _log(
        f"detecting {frame_count} frames: panorama {model.width}x{model.height}, "
        f"{len(tiles)} tiles per frame"
    )
    started = time.perf_counter()
    tables: list[pa.Table] = []
    lefts, rights = _frames(left_path), _frames(right_path)
    for chunk in chunk_spans(frame_count, fps):
        end = chunk.first_frame + chunk.frames
        choice = choose_seam_and_gains(
            maps,
            sample_camera(left_path, chunk.first_frame, end, fps),
            sample_camera(right_path, chunk.first_frame, end, fps),
        )
        plan = choice.plan(maps)
        panorama = np.empty((model.height, model.width, 3), np.uint8)
        for index in range(chunk.first_frame, end):
            stitch_frame(next(lefts), next(rights), plan, out=panorama)
            tables.append(frame_rows(detector, panorama, tiles, index, SCORE_THRESHOLD)[0])
        _log(f"  chunk {chunk.chunk}: frames to {end}, {time.perf_counter() - started:.0f} s")
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(concat_rows(tables), out_dir / DETECTIONS_FILE)
    (out_dir / PANORAMA_FILE).write_text(model.to_json())


@dataclass(frozen=True)
class BenchInput:
    """Everything the trackers are run and scored on.

    Attributes:
        truth_dir: The synthetic match (``truth.parquet``, ``match.json``).
        detections: Its panorama detections.
        model: The panorama model the detections' pixels are in.
    """

    truth_dir: Path
    detections: MatchDetections
    model: PanoramaModel


def load_input(
    *,
    cache_dir: Path,
    models_dir: Path,
    truth_dir: Path | None,
    detections_path: Path | None,
    seconds: float,
    size: tuple[int, int],
    seed: int,
) -> BenchInput:
    """The bench's input, made when missing.

    With ``detections_path`` the detections are read from it (and the panorama model from the
    ``panorama.json`` beside it, else derived from the truth's rig as the stitch stage does),
    against ``truth_dir``. Otherwise the synthetic match of ``seconds``/``size``/``seed`` (or the
    one in ``truth_dir``) is detected once and cached under ``cache_dir``; the cache keeps
    the detections, the panorama model and the truth, not the videos. The cache does not know
    the detector's version: delete it after changing the stitch or detect stage.
    """
    if detections_path is not None:
        if truth_dir is None:
            raise ValueError("--detections needs --truth: the match those detections are of")
        model_path = detections_path.parent / PANORAMA_FILE
        model = (
            PanoramaModel.from_json(model_path.read_text())
            if model_path.is_file()
            else panorama_model_from_rig(Rig.load(truth_dir / "rig.json"))
        )
        return BenchInput(truth_dir, read_detections(detections_path), model)
    if truth_dir is None:
        work = cache_dir / f"synth-seed{seed}-{seconds:g}s-{size[0]}x{size[1]}"
        truth = work / TRUTH_DIR
    else:
        # Keyed by the match's path and description, so another match in a folder of the same
        # name is detected anew.
        identity = f"{truth_dir.resolve()}\n{(truth_dir / 'match.json').read_text()}"
        work = cache_dir / f"truth-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
        truth = truth_dir
    wanted = [work / DETECTIONS_FILE, work / PANORAMA_FILE, truth / "truth.parquet"]
    if not all(path.is_file() for path in wanted):
        if truth_dir is None:
            ensure_truth(truth, seconds, size, seed)
        detect_match(truth, models_dir, work)
        if truth_dir is None:  # our own copy: the videos are not needed any more
            for video in _VIDEOS:
                (truth / video).unlink(missing_ok=True)
    model = PanoramaModel.from_json((work / PANORAMA_FILE).read_text())
    return BenchInput(truth, read_detections(work / DETECTIONS_FILE), model)
