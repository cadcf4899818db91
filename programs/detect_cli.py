"""`polyvision detect`: the detect stage's detector on still images and clips, to try it out.

Same model (``--model``, else the registry's default, else the bundled YOLOX-nano), same tiling
and same defaults as the stage: tile size, overlap and score threshold are read from
`DetectChunkInput`'s defaults, so a retuned stage is tried as it runs. Writes one JSON object
per image or frame, and with ``--draw`` a PNG per image or frame with the boxes drawn.

The pure parts (`stage_defaults`, `detect_image`, `frame_json`, `draw_detections`) are tested
on their own; `run_detect` is the thin handler `programs.cli` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import av
import cv2
import numpy as np
import numpy.typing as npt

from activities.detect.backend import OnnxDetector
from activities.detect.ball_classifier import BallModel, detect_balls
from activities.detect.ball_classifier import load_model as load_ball_model
from activities.detect.contracts import DetectChunkInput
from activities.detect.detections import Detections
from activities.detect.model_spec import class_name
from activities.detect.model_store import ModelStoreError
from activities.detect.registry import ResolvedModel, resolve_stage_model
from activities.detect.tiling import Detector, detect_tiled, plan_tiles
from polyvision.settings import Settings
from polyvision.storage.metadata.engine import normalize_url, sqlite_path

__all__ = [
    "IMAGE_SUFFIXES",
    "DetectInputError",
    "FrameResult",
    "StageDefaults",
    "detect_image",
    "draw_detections",
    "frame_json",
    "iter_sources",
    "run_detect",
    "stage_defaults",
]

NETWORK_BALL_FLOOR: Final = 0.05
"""The network's ball boxes down to this score feed the ball classifier (one of its features;
weak network balls are often real: ``programs/train_ball.py``)."""

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""Read as still images with OpenCV; any other file is decoded as a video with PyAV."""

# BGR: persons green, the ball orange, anything else (a custom class map) grey.
_COLOURS: Final = {Detections.PERSON: (60, 200, 60), Detections.SPORTS_BALL: (0, 140, 255)}


class DetectInputError(Exception):
    """An input cannot be read: missing, not a file, or not decodable."""


@dataclass(frozen=True)
class StageDefaults:
    """The detect stage's tiling and threshold, as `DetectChunkInput` declares them."""

    score_threshold: float
    tile: int
    overlap: int
    upscale: float


def stage_defaults() -> StageDefaults:
    """Read the defaults from `DetectChunkInput` itself, so the CLI follows a retuned stage."""
    defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(DetectChunkInput)}
    return StageDefaults(
        score_threshold=float(defaults["score_threshold"]),
        tile=int(defaults["tile"]),
        overlap=int(defaults["overlap"]),
        upscale=float(defaults["upscale"]),
    )


@dataclass(frozen=True)
class FrameResult:
    """The detections of one image or video frame.

    Attributes:
        source: the input path as given.
        frame: the frame index in a video; None for a still image.
        width: image width in pixels.
        height: image height in pixels.
        detections: boxes in image pixels, with our class ids.
    """

    source: str
    frame: int | None
    width: int
    height: int
    detections: Detections


def detect_image(
    detector: Detector,
    image: npt.NDArray[np.uint8],
    defaults: StageDefaults,
    score: float,
    balls: BallModel | None = None,
) -> Detections:
    """The stage's tiled detection on one BGR image (no region of interest: the whole image).

    With ``balls`` (the committed ball classifier, `load_ball_model`), the ball boxes are
    `detect_balls`': bright round blobs and the network's ball boxes down to
    `NETWORK_BALL_FLOOR`, merged and classified. On a still image motion cannot help, and the
    network alone finds under a quarter of the balls (``bench/ball_real.py``).
    """
    height, width = image.shape[:2]
    tiles = plan_tiles(width, height, defaults.tile, defaults.overlap, upscale=defaults.upscale)
    if balls is None:
        return detect_tiled(detector, image, tiles, score_threshold=score)
    found = detect_tiled(detector, image, tiles, score_threshold=min(score, NETWORK_BALL_FLOOR))
    # The lower floor is for the classifier's ball evidence only: people keep their threshold.
    found = found.filter((found.class_id == Detections.SPORTS_BALL) | (found.score >= score))
    people = found.filter(found.class_id != Detections.SPORTS_BALL)
    return Detections.concat([people, detect_balls(image, found, balls)])


def frame_json(result: FrameResult, model: str) -> dict[str, Any]:
    """One image's or frame's JSON object: where it came from, its size and its boxes."""
    d = result.detections
    return {
        "source": result.source,
        "frame": result.frame,
        "width": result.width,
        "height": result.height,
        "model": model,
        "detections": [
            {
                "class": class_name(int(d.class_id[i])),
                "class_id": int(d.class_id[i]),
                "score": round(float(d.score[i]), 4),
                "box": [round(float(v), 2) for v in d.xyxy[i]],
            }
            for i in range(len(d))
        ],
    }


def draw_detections(image: npt.NDArray[np.uint8], detections: Detections) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with each box and its class and score drawn."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 1000))
    for box, score, class_id in zip(
        detections.xyxy, detections.score, detections.class_id, strict=True
    ):
        colour = _COLOURS.get(int(class_id), (160, 160, 160))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        label = f"{class_name(int(class_id))} {float(score):.2f}"
        # Small text on purpose: players are often 10-25 px tall, a bigger label hides them.
        cv2.putText(
            out,
            label,
            (x1, max(y1 - 3, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            colour,
            1,
            cv2.LINE_AA,
        )
    return out


def _check_inputs(paths: Sequence[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise DetectInputError(f"no such file: {path}")
        if not path.is_file():
            raise DetectInputError(f"not a file: {path}")


def _image(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DetectInputError(f"cannot read image {path} (not an image OpenCV can decode)")
    return np.asarray(image, dtype=np.uint8)


def _video_frames(
    path: Path, every: int, max_frames: int | None
) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    """Every ``every``-th frame of the first video stream, at most ``max_frames`` of them."""
    taken = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DetectInputError(f"{path} has no video stream")
            for index, frame in enumerate(container.decode(video=0)):
                if max_frames is not None and taken >= max_frames:
                    return
                if index % every:
                    continue  # skipped frames are never converted to BGR
                taken += 1
                yield index, np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DetectInputError(f"cannot decode video {path}: {exc}") from exc


def iter_sources(
    paths: Sequence[Path], every: int = 1, max_frames: int | None = None
) -> Iterator[tuple[Path, int | None, npt.NDArray[np.uint8]]]:
    """``(path, frame index or None, BGR image)`` for every image and selected video frame.

    Raises:
        DetectInputError: a path is missing or cannot be decoded (raised when reached).
    """
    for path in paths:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            yield path, None, _image(path)
        else:
            for index, image in _video_frames(path, every, max_frames):
                yield path, index, image


def _drawing_name(path: Path, frame: int | None, used: set[str]) -> str:
    stem = path.stem if frame is None else f"{path.stem}_f{frame:06d}"
    name, n = f"{stem}.png", 1
    while name in used:  # two inputs with one name (a/x.jpg, b/x.jpg) keep both drawings
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return name


async def _resolve(settings: Settings, ref: str | None) -> ResolvedModel:
    """The stage's model: ``ref``, else the registry's default, else the bundled one.

    An embedded SQLite database that does not exist yet has no registry to read: nothing is
    created just to find that out.
    """
    from programs.models_cli import model_cache_dir, open_registry

    database = sqlite_path(normalize_url(settings.database_url))
    if ref is None and database is not None and not database.exists():
        return await resolve_stage_model(
            sessions=None,
            objects=None,
            cache_dir=model_cache_dir(settings),
            models_dir=settings.models_dir,
        )
    async with open_registry(settings) as (sessions, objects):
        return await resolve_stage_model(
            sessions=sessions,
            objects=objects,
            cache_dir=model_cache_dir(settings),
            models_dir=settings.models_dir,
            ref=ref,
        )


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"polyvision detect: {' '.join(message.splitlines())}\n")
    return code


def run_detect(settings: Settings, args: argparse.Namespace) -> int:
    """`polyvision detect`: exit 0; 2 for a missing or unreadable input, bad options or no
    model; 1 when the model registry's database refused."""
    from sqlalchemy.exc import SQLAlchemyError

    from programs.models_cli import database_refused

    paths = [Path(p) for p in args.inputs]
    defaults = stage_defaults()
    score = defaults.score_threshold if args.score is None else float(args.score)
    if args.every < 1 or (args.max_frames is not None and args.max_frames < 1):
        return _fail("--every and --max-frames must be at least 1")
    if not 0.0 <= score <= 1.0:
        return _fail(f"--score must be within [0, 1], got {score}")
    try:
        _check_inputs(paths)
        model = asyncio.run(_resolve(settings, args.model))
        detector = OnnxDetector(model.path, model.spec)
        ball_model = None if args.network_balls else load_ball_model()
    except (DetectInputError, ModelStoreError, ValueError) as exc:
        return _fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:  # OSError: asyncpg could not connect at all
        return _fail(database_refused(exc), 1)
    draw_dir = Path(args.draw) if args.draw else None
    if draw_dir is not None:
        draw_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    objects: list[dict[str, Any]] = []
    try:
        for path, frame, image in iter_sources(paths, args.every, args.max_frames):
            found = detect_image(detector, image, defaults, score, ball_model)
            height, width = image.shape[:2]
            result = FrameResult(str(path), frame, width, height, found)
            objects.append(frame_json(result, model.spec.ref))
            persons = len(found.of_class(Detections.PERSON))
            balls = len(found.of_class(Detections.SPORTS_BALL))
            where = str(path) if frame is None else f"{path} frame {frame}"
            line = f"{where}: {persons} person(s), {balls} ball(s)"
            if draw_dir is not None:
                drawing = draw_dir / _drawing_name(path, frame, used)
                if not cv2.imwrite(str(drawing), draw_detections(image, found)):
                    return _fail(f"cannot write {drawing}")
                line += f" -> {drawing}"
            sys.stderr.write(f"{line}\n")
    except DetectInputError as exc:
        return _fail(str(exc))
    # A JSON array with one image or frame per line: valid JSON, and still readable by eye.
    text = "[\n" + ",\n".join(json.dumps(obj) for obj in objects) + "\n]" if objects else "[]"
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"{text}\n")
        sys.stderr.write(
            f"{len(objects)} image(s) with {model.spec.ref} (tile {defaults.tile}, overlap "
            f"{defaults.overlap}, score > {score}) -> {args.json}\n"
        )
    else:
        sys.stdout.write(f"{text}\n")
    return 0
