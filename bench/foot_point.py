"""Where a box's person stands: ground-point estimators against a synthetic match's truth.

The track stage maps each person box to the pitch through a ground point. This bench matches
every confident detection of a synthetic match to the truth person whose feet project nearest
its bottom centre (within 8 px) and prints, for each estimator, the mean error vector (the
bias), its length, the median error and the share of points more than 1 m off (what costs
MOTA at a 1 m match distance):

- the box's bottom centre (the old stage);
- the bottom raised by a fixed share of the box height (`FOOT_LIFT`);
- the top edge at an average person's height (`PERSON_HEIGHT_M`);
- the stage's estimator: the bottom raised by a lift measured per panorama cell on each chunk's
  own boxes (`calibrate_lift`), which follows the sun's shadows.

The peer is the old stage's bottom centre: ratios are its share of points more than 1 m off
over each estimator's. Run: ``python -m bench.foot_point [--truth DIR --detections FILE]``
(without them, the trackers bench's cached synthetic match is used or made).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch, pitch_to_panorama
from activities.track.ground import FOOT_LIFT, PERSON_HEIGHT_M, calibrate_lift, ground_points
from bench.results_file import write_results
from bench.tracker_data import BenchInput, chunk_spans, load_input
from bench.trackers import CACHE_DIR, MODELS_DIR
from evaluation.formats import load_truth

F64 = npt.NDArray[np.float64]
NEAREST_PX = 8.0
HIGH_SCORE = 0.5


def matched_boxes(bench: BenchInput) -> tuple[F64, F64, npt.NDArray[np.int64]]:
    """Confident person boxes with the truth ground position of their person, and frames."""
    truth = load_truth(bench.truth_dir)
    det = bench.detections
    boxes: list[F64] = []
    positions: list[F64] = []
    frames: list[int] = []
    for frame in np.unique(truth.frame):
        people = truth.is_person & (truth.frame == frame)
        feet = pitch_to_panorama(
            bench.model, np.column_stack([truth.position[people, :2], np.zeros(people.sum())])
        )
        rows = np.flatnonzero(
            (det.frame == frame) & (det.class_id == 0) & (det.score >= HIGH_SCORE)
        )
        if not len(rows):
            continue
        xyxy = det.xyxy[rows].astype(np.float64)
        bottom = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]])
        for foot, where in zip(feet, truth.position[people, :2], strict=True):
            distance = np.linalg.norm(bottom - foot, axis=1)
            if distance.min() < NEAREST_PX:
                boxes.append(xyxy[distance.argmin()])
                positions.append(where)
                frames.append(int(frame))
    return np.array(boxes).reshape(-1, 4), np.array(positions).reshape(-1, 2), np.array(frames)


def _top_estimate(model: PanoramaModel, boxes: F64) -> F64:
    u = (boxes[:, 0] + boxes[:, 2]) / 2
    return panorama_to_pitch(model, np.column_stack([u, boxes[:, 1]]), PERSON_HEIGHT_M)


def _calibrated(bench: BenchInput, boxes: F64, frames: npt.NDArray[np.int64], fps: float) -> F64:
    """The stage's estimator: the lift measured per chunk on the chunk's confident boxes."""
    det = bench.detections
    out = np.full((len(boxes), 2), np.nan)
    frame_count = int(det.frame.max()) + 1 if len(det) else 0
    for chunk in chunk_spans(frame_count, fps):
        span = (det.frame >= chunk.first_frame) & (det.frame < chunk.first_frame + chunk.frames)
        confident = span & (det.class_id == 0) & (det.score >= HIGH_SCORE)
        lift = calibrate_lift(bench.model, det.xyxy[confident].astype(np.float64))
        mine = (frames >= chunk.first_frame) & (frames < chunk.first_frame + chunk.frames)
        out[mine] = panorama_to_pitch(bench.model, ground_points(boxes[mine], lift))
    return out


def figures(estimate: F64, truth: F64) -> dict[str, float]:
    error = estimate - truth
    length = np.hypot(error[:, 0], error[:, 1])
    bias = error.mean(axis=0)
    return {
        "bias_x_m": round(float(bias[0]), 3),
        "bias_y_m": round(float(bias[1]), 3),
        "bias_m": round(float(np.hypot(*bias)), 3),
        "median_error_m": round(float(np.median(length)), 3),
        "share_over_1m": round(float(np.mean(length > 1.0)), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--truth", type=Path, default=None, help="a polyvision synth directory")
    parser.add_argument("--detections", type=Path, default=None, help="its panorama detections")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    bench = load_input(
        cache_dir=CACHE_DIR,
        models_dir=MODELS_DIR,
        truth_dir=args.truth,
        detections_path=args.detections,
        seconds=args.seconds,
        size=(1280, 720),
        seed=args.seed,
    )
    fps = float(load_truth(bench.truth_dir).fps)
    boxes, truth, frames = matched_boxes(bench)
    u = (boxes[:, 0] + boxes[:, 2]) / 2
    estimators = {
        "bottom centre (peer)": panorama_to_pitch(bench.model, np.column_stack([u, boxes[:, 3]])),
        f"fixed lift {FOOT_LIFT}": panorama_to_pitch(bench.model, ground_points(boxes, FOOT_LIFT)),
        f"top at {PERSON_HEIGHT_M} m": _top_estimate(bench.model, boxes),
        "calibrated lift (stage)": _calibrated(bench, boxes, frames, fps),
    }
    results = {name: figures(estimate, truth) for name, estimate in estimators.items()}
    peer = results["bottom centre (peer)"]["share_over_1m"]
    print(f"{len(boxes)} detections matched to the truth of {bench.truth_dir}")
    print(
        f"{'estimator':26s} {'bias x':>7s} {'bias y':>7s} {'|bias|':>7s} {'median':>7s}"
        f" {'>1 m':>6s} ratio"
    )
    for name, row in results.items():
        ratio = peer / row["share_over_1m"] if row["share_over_1m"] > 0 else float("inf")
        row["ratio_over_1m_vs_peer"] = round(ratio, 2)
        print(
            f"{name:26s} {row['bias_x_m']:+7.2f} {row['bias_y_m']:+7.2f} {row['bias_m']:7.2f}"
            f" {row['median_error_m']:7.2f} {row['share_over_1m']:6.3f} {ratio:5.2f}x"
        )
    write_results("foot_point", {"truth": str(bench.truth_dir), "matched": len(boxes), **results})


if __name__ == "__main__":
    main()
