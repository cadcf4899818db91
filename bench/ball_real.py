"""Ball recall and precision on the real panoramas: the network, the blobs, and both classified.

The 48 labelled SoccerTrack-v2 panoramas (2160x1080, ``../shared/data/soccertrack-v2-dev``, or
``$PV_TEST_DATA``; 140 ball boxes, the match ball and spare balls) are scored at IoU 0.3 and 0.5
with `evaluation.detection.detection_pr` (greedy by score), for:

- **network**: the detect stage as it runs (YOLOX-nano, its tiling and score threshold from
  ``DetectChunkInput``), COCO class 32 boxes only;
- **blobs**: :func:`~activities.detect.ball_appearance.appearance_candidates` alone (people
  from the same network pass), candidates with the hand-set prior >= 0.5;
- **classified**: blobs merged with the network's balls down to score 0.05
  (``programs.train_ball.NET_BALL_FLOOR``; same inference as the stage, one threshold lower for
  class 32) by :func:`~activities.detect.ball_classifier.merge_network` and scored by
  :func:`~activities.detect.ball_classifier.classify_balls` at ``DEFAULT_THRESHOLD``: with the
  committed weights (trained on these frames too, so optimistic) and **leave-one-clip-out**
  (refitted per clip on the synthetic frames plus the three other clips, as
  ``programs.train_ball`` fits it: **the figure to trust**), with the whole curve over a 0.05
  grid of thresholds. Also leave-one-clip-out with the stage's balls only (its 0.2 threshold,
  what the stage gives without the lower ball floor), and with the "spare balls excused"
  precision: a box at a spot where a ball is labelled in another frame of the same clip, with
  no labelled ball of its own frame there, is dropped instead of counted false (spare balls
  lie still and are labelled in only some frames; the plain precision is the honest lower
  bound, this one an estimate of what the labels miss).

Two scopes, as ``bench/detect_real.py``: **image** (every box) and **pitch** (boxes whose bottom
centre lies in :data:`bench.detect_real.PITCH_POLYGON` grown by 16 px; truth is not filtered, so
a ball off the pitch still counts as missed).

Seconds per image, one OpenCV thread (a shared machine: other work ran beside it): the
network pass at the stage's tiling (for reference), the appearance part on the whole image and
on the pitch's rows only (``roi_mask``), the merge and classification, and the whole
:func:`~activities.detect.ball_classifier.detect_balls` call (what the pipeline runs; it
searches the whole image even with a region, see its docstring). ``c_detect_balls`` is scored
from that call's own output.

Run: ``python -m bench.ball_real`` (``--images N`` for a quick subset). Writes
``bench/results/ball_real.json``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import cv2
import numpy as np

from activities.detect.ball_appearance import BallCandidates, appearance_candidates
from activities.detect.ball_classifier import (
    DEFAULT_THRESHOLD,
    BallModel,
    classify_balls,
    detect_balls,
    load_model,
    merge_network,
)
from activities.detect.detections import Detections
from bench.detect_real import DATASET, FEET_MARGIN, PITCH_POLYGON, feet_mask, load_frames
from bench.results_file import write_results
from evaluation.detection import detection_pr
from evaluation.formats import BALL_CLASS
from programs.train_ball import (
    CLIPS,
    SPOT_RADIUS,
    SYNTH_SEED,
    Example,
    fit,
    label_candidates,
    stage_detections,
    stage_detector,
    synth_examples,
)

IOUS = (0.3, 0.5)
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
BLOB_PRIOR = 0.5


def score(
    truth: list[np.ndarray],
    boxes: list[np.ndarray],
    scores: list[np.ndarray],
    feet: np.ndarray | None,
    excuse: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Ball recall/precision at each IoU; ``feet``: keep only boxes with feet on it.

    ``excuse``: per image, spots (``[K, 2]`` px) where a ball is labelled in another frame
    of the same clip; a box there with no labelled ball of its own frame near it is dropped
    rather than counted false (a spare ball the labellers skipped in this frame).
    """
    kept_b, kept_s = [], []
    for i, (b, s) in enumerate(zip(boxes, scores, strict=True)):
        if feet is not None and len(b):
            h, w = feet.shape
            fx = np.clip(((b[:, 0] + b[:, 2]) / 2).astype(int), 0, w - 1)
            fy = np.clip(b[:, 3].astype(int), 0, h - 1)
            on = feet[fy, fx]
            b, s = b[on], s[on]
        if excuse is not None and len(b) and len(excuse[i]):
            centre = (b[:, :2] + b[:, 2:]) / 2
            own = (truth[i][:, :2] + truth[i][:, 2:]) / 2
            at_spot = _near(centre, excuse[i]) & ~_near(centre, own)
            b, s = b[~at_spot], s[~at_spot]
        kept_b.append(np.asarray(b, np.float64).reshape(-1, 4))
        kept_s.append(np.asarray(s, np.float64).reshape(-1))
    out: dict[str, Any] = {}
    for iou in IOUS:
        (found,) = [
            x
            for x in detection_pr(
                np.concatenate([np.full(len(t), i) for i, t in enumerate(truth)]),
                np.full(sum(len(t) for t in truth), BALL_CLASS),
                np.concatenate(truth),
                np.concatenate([np.full(len(b), i) for i, b in enumerate(kept_b)]),
                np.full(sum(len(b) for b in kept_b), BALL_CLASS),
                np.concatenate(kept_s),
                np.concatenate(kept_b),
                space="panorama",
                iou_threshold=iou,
            )
            if x.tp + x.fn > 0
        ]
        out[f"ball@{iou}"] = {
            "recall": None if found.recall is None else round(found.recall, 4),
            "precision": None if found.precision is None else round(found.precision, 4),
            "tp": found.tp,
            "fp": found.fp,
            "fn": found.fn,
        }
    return out


def _near(points: np.ndarray, spots: np.ndarray) -> np.ndarray:
    if not len(spots):
        return np.zeros(len(points), bool)
    d = points[:, None, :] - spots[None, :, :]
    return np.asarray((np.hypot(d[..., 0], d[..., 1]) < SPOT_RADIUS).any(axis=1), bool)


def classified(
    candidates: list[BallCandidates], models: list[BallModel], threshold: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each image's kept boxes and scores."""
    kept = [classify_balls(c, m, threshold) for c, m in zip(candidates, models, strict=True)]
    return [k.xyxy for k in kept], [k.score for k in kept]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=None, help="first N images only")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # seconds per image on one core
    frames = load_frames(DATASET, args.images)
    width, height = 2160, 1080
    feet = feet_mask(PITCH_POLYGON, width, height, FEET_MARGIN)
    detector = stage_detector()
    model = load_model()
    truth: list[np.ndarray] = []
    net_b, net_s, blob_b, blob_s = [], [], [], []
    merged: dict[str, list[BallCandidates]] = {"floor": [], "stage": []}
    examples: dict[str, list[Example]] = {"floor": [], "stage": []}
    seconds: dict[str, list[float]] = {
        k: []
        for k in (
            "network",
            "appearance_image",
            "appearance_pitch",
            "merge_classify",
            "detect_balls_image",
            "detect_balls_pitch",
        )
    }
    pipeline: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
        "image": ([], []),
        "pitch": ([], []),
    }
    for i, frame in enumerate(frames):
        raw = cv2.imread(str(frame.path))
        if raw is None:
            raise FileNotFoundError(frame.path)
        image = np.asarray(raw, np.uint8)
        t0 = time.perf_counter()
        det = stage_detections(detector, image)  # balls down to NET_BALL_FLOOR
        t1 = time.perf_counter()
        people = det.of_class(Detections.PERSON).xyxy
        balls = det.of_class(Detections.SPORTS_BALL)
        blobs = appearance_candidates(image, people_xyxy=people)
        t2 = time.perf_counter()
        appearance_candidates(image, people_xyxy=people, roi_mask=feet)
        t3 = time.perf_counter()
        cand = merge_network(blobs, image, balls.xyxy, balls.score, people_xyxy=people)
        classify_balls(cand, model, DEFAULT_THRESHOLD)
        t4 = time.perf_counter()
        # What the pipeline runs: one call, committed weights (the pitch as its region).
        whole = detect_balls(image, det, model)
        t5 = time.perf_counter()
        pitch = detect_balls(image, det, model, roi_mask=feet)
        t6 = time.perf_counter()
        for found, key in ((whole, "image"), (pitch, "pitch")):
            pipeline[key][0].append(found.xyxy)
            pipeline[key][1].append(found.score)
        times = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
        for key, dt in zip(seconds, times, strict=True):
            seconds[key].append(dt)
        # The stage exactly as it runs today (every class at its threshold): the network
        # figures, and the classifier fed with those balls only.
        stage = stage_detections(detector, image, None).of_class(Detections.SPORTS_BALL)
        stage_cand = merge_network(blobs, image, stage.xyxy, stage.score, people_xyxy=people)
        t = frame.boxes[frame.classes == BALL_CLASS].astype(np.float32)
        truth.append(t)
        net_b.append(stage.xyxy)
        net_s.append(stage.score)
        good = blobs.score >= BLOB_PRIOR
        blob_b.append(blobs.xyxy[good])
        blob_s.append(blobs.score[good])
        clip = next(c for c in CLIPS if f"_{c}_" in frame.path.name)
        for key, c in (("floor", cand), ("stage", stage_cand)):
            merged[key].append(c)
            examples[key].append(Example(frame.path.stem, clip, c, label_candidates(c, t), t))
        print(f"  image {i + 1}/{len(frames)}", end="\r", flush=True)
    print()
    synth = list(synth_examples(SYNTH_SEED))
    loco: dict[str, list[BallModel]] = {}
    for key, exs in examples.items():
        per_clip = {c: fit(synth + [e for e in exs if e.clip != c]) for c in CLIPS}
        loco[key] = [per_clip[e.clip] for e in exs]
    committed = [model] * len(frames)
    clips = [e.clip for e in examples["floor"]]

    centres = [(t[:, :2] + t[:, 2:]) / 2 for t in truth]
    spots = [
        np.concatenate(
            [np.zeros((0, 2))]
            + [c for j, c in enumerate(centres) if j != i and clips[j] == clips[i]]
        )
        for i in range(len(truth))
    ]
    results: dict[str, Any] = {}
    for scope, mask in {"image": None, "pitch": feet}.items():
        curve = []
        for thr in THRESHOLDS:
            point = score(truth, *classified(merged["floor"], loco["floor"], float(thr)), mask)
            curve.append({"threshold": float(thr), **point})
        results[scope] = {
            "a_network_stage_default": score(truth, net_b, net_s, mask),
            "b_blobs_prior": score(truth, blob_b, blob_s, mask),
            "c_classified_committed_weights": score(
                truth, *classified(merged["floor"], committed, DEFAULT_THRESHOLD), mask
            ),
            "c_detect_balls_committed_weights": score(truth, *pipeline[scope], mask),
            "c_classified_leave_one_clip_out": score(
                truth, *classified(merged["floor"], loco["floor"], DEFAULT_THRESHOLD), mask
            ),
            "c_classified_leave_one_clip_out_spare_balls_excused": score(
                truth,
                *classified(merged["floor"], loco["floor"], DEFAULT_THRESHOLD),
                mask,
                spots,
            ),
            "c_classified_leave_one_clip_out_stage_balls_only": score(
                truth, *classified(merged["stage"], loco["stage"], DEFAULT_THRESHOLD), mask
            ),
            "c_leave_one_clip_out_per_clip": {
                c: score(
                    [t for t, k in zip(truth, clips, strict=True) if k == c],
                    *classified(
                        [m for m, k in zip(merged["floor"], clips, strict=True) if k == c],
                        [m for m, k in zip(loco["floor"], clips, strict=True) if k == c],
                        DEFAULT_THRESHOLD,
                    ),
                    mask,
                )
                for c in CLIPS
                if c in clips
            },
            "c_leave_one_clip_out_curve": [
                f"{p['threshold']:.2f}: R/P@0.3 {p['ball@0.3']['recall']:.3f}/"
                f"{p['ball@0.3']['precision'] or 0:.3f}, @0.5 {p['ball@0.5']['recall']:.3f}/"
                f"{p['ball@0.5']['precision'] or 0:.3f}"
                for p in curve
            ],
        }
    figures = {
        "data": f"{DATASET.name}: {len(frames)} images, {sum(len(t) for t in truth)} balls",
        "threshold": DEFAULT_THRESHOLD,
        "blob_prior_threshold": BLOB_PRIOR,
        "seconds_per_image_one_thread": {
            k: round(float(np.mean(v)), 4) for k, v in seconds.items()
        },
        "scopes": {
            "image": "every box",
            "pitch": f"boxes with their bottom centre in the pitch polygon (+{FEET_MARGIN} px)",
        },
        "results": results,
    }
    path = write_results("ball_real", figures)
    print(f"seconds per image: {figures['seconds_per_image_one_thread']}")
    for scope, r in results.items():
        print(f"\nscope {scope} (threshold {DEFAULT_THRESHOLD}):")
        for key in [k for k in r if not k.startswith("c_leave")]:
            print(
                f"  {key:<50} "
                + ", ".join(
                    f"{k} R/P {v['recall']:.3f}/{v['precision'] or 0:.3f}"
                    for k, v in r[key].items()
                )
            )
        for clip, v in r["c_leave_one_clip_out_per_clip"].items():
            print(
                f"  leave out {clip}: R/P@0.3 {v['ball@0.3']['recall']:.3f}/"
                f"{v['ball@0.3']['precision'] or 0:.3f}"
            )
        for line in r["c_leave_one_clip_out_curve"]:
            print(f"    {line}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
