"""How well YOLOX-nano (tiled) sees the synthetic players: person recall and precision.

The synthetic match is only useful if a COCO person detector recognises its figures the way it
recognises real players; the issue's target is 80 % recall of visible players. Frames are read
back from the encoded MP4s (what the pipeline will see), tiles cover the pitch region only, and
the scoring is `evaluation`'s (IoU 0.5, greedy by score).

Run: ``python -m bench.synth_detect_recall [--truth DIR] [--every N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

from activities.detect.model_store import resolve_model
from activities.detect.tiling import detect_tiled, plan_tiles
from activities.detect.yolox import YoloxDetector
from bench.results_file import write_results
from evaluation.detection import evaluate_detections
from evaluation.formats import Detections, Truth, load_truth
from polyvision.geometry import CameraModel, Rig, project
from synth.generate import SynthConfig, generate_match

REPO = Path(__file__).resolve().parents[1]


def pitch_polygon(
    camera: CameraModel, length: float, width: float, margin: float = 3.0
) -> np.ndarray:
    """The pitch outline plus a margin, at ground and head height, as an image polygon.

    Densely sampled so that lens distortion bends the outline as it does the image.
    """
    xs = np.linspace(-margin, length + margin, 60)
    ys = np.linspace(-margin, width + margin, 40)
    outline = np.concatenate(
        [
            np.stack([xs, np.full_like(xs, -margin)], 1),
            np.stack([np.full_like(ys, length + margin), ys], 1),
            np.stack([xs[::-1], np.full_like(xs, width + margin)], 1),
            np.stack([np.full_like(ys, -margin), ys[::-1]], 1),
        ]
    )
    points = []
    for height in (0.0, 2.2):
        world = np.column_stack([outline, np.full(len(outline), height)])
        pixels, in_front = project(camera, world)
        points.append(pixels[in_front])
    w, h = camera.image_size
    all_points = np.clip(np.concatenate(points), [-w, -h], [2 * w, 2 * h]).astype(np.float32)
    hull: np.ndarray = cv2.convexHull(all_points).reshape(-1, 2)
    return hull


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--truth", type=Path, default=None, help="a polyvision synth directory")
    parser.add_argument("--every", type=int, default=10, help="score every Nth frame")
    args = parser.parse_args(argv)
    models_dir = Path(os.environ.get("PV_MODELS_DIR", REPO.parent / "shared" / "data" / "models"))
    detector = YoloxDetector(resolve_model(models_dir, url=None))

    with tempfile.TemporaryDirectory() as scratch:
        truth_dir = args.truth
        if truth_dir is None:
            truth_dir = Path(scratch) / "match"
            generate_match(SynthConfig(seconds=4.0), truth_dir)
        truth = load_truth(truth_dir)
        rig = Rig.load(truth_dir / "rig.json")
        frames: list[np.ndarray] = []
        spaces: list[np.ndarray] = []
        classes: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        boxes: list[np.ndarray] = []
        tiles_per_frame = {}
        started = time.perf_counter()
        scored_frames = 0
        for camera_name, camera in rig.cameras.items():
            width, height = camera.image_size
            roi = pitch_polygon(camera, rig.pitch_length_m, rig.pitch_width_m)
            tiles = plan_tiles(width, height, roi=roi, roi_margin=16)
            tiles_per_frame[camera_name] = len(tiles)
            with av.open(str(truth_dir / f"{camera_name}.mp4")) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    if index % args.every:
                        continue
                    image = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
                    found = detect_tiled(detector, image, tiles)
                    count = len(found)
                    frames.append(np.full(count, index, np.int32))
                    spaces.append(np.full(count, camera_name, dtype=object))
                    classes.append(found.class_id)
                    scores.append(found.score)
                    boxes.append(found.xyxy)
                    scored_frames += 1
        elapsed = time.perf_counter() - started

    sampled = np.isin(truth.frame, np.unique(np.concatenate(frames)))
    sampled_truth = _subset(truth, sampled)
    predictions = Detections(
        frame=np.concatenate(frames),
        space=np.concatenate(spaces),
        class_id=np.concatenate(classes).astype(np.int16),
        score=np.concatenate(scores).astype(np.float32),
        boxes=np.concatenate(boxes).astype(np.float32),
    )
    figures: dict[str, object] = {
        "frames_scored_per_camera": scored_frames // len(rig.cameras),
        "size": list(truth.size),
        "tiles_per_frame": tiles_per_frame,
        "seconds_per_camera_frame": round(elapsed / scored_frames, 3),
    }
    for camera_name in rig.cameras:
        for score in evaluate_detections(sampled_truth, predictions, camera_name):
            key = f"{camera_name}_{score.name}"
            figures[key] = {
                "recall": None if score.recall is None else round(score.recall, 3),
                "precision": None if score.precision is None else round(score.precision, 3),
                "tp": score.tp,
                "fp": score.fp,
                "fn": score.fn,
            }
            print(
                f"{camera_name:>5} {score.name:<11} recall {score.recall or 0:6.1%}  "
                f"precision {score.precision or 0:6.1%}  (tp {score.tp}, fp {score.fp}, "
                f"fn {score.fn})"
            )
    path = write_results("synth_detect_recall", figures)
    print(f"results: {path}")


def _subset(truth: Truth, mask: np.ndarray) -> Truth:
    return replace(
        truth,
        frame=truth.frame[mask],
        id=truth.id[mask],
        team=truth.team[mask],
        role=truth.role[mask],
        position=truth.position[mask],
        boxes={k: v[mask] for k, v in truth.boxes.items()},
        visible={k: v[mask] for k, v in truth.visible.items()},
        in_play=None if truth.in_play is None else truth.in_play[mask],
    )


if __name__ == "__main__":
    main()
