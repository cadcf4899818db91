"""Synthetic scenes for the tracker tests: truth boxes per frame, and detections made from them."""

from __future__ import annotations

from dataclasses import dataclass

import motmetrics as mm
import numpy as np

from activities.detect.detections import Detections
from activities.track.bytetrack import box_iou
from activities.track.tracks import Tracks


@dataclass
class Scene:
    """Truth per frame (ids and boxes) and the detections a detector might give for it."""

    truth_ids: list[np.ndarray]
    truth_boxes: list[np.ndarray]
    detections: list[Detections]


def box(cx: float, cy: float, w: float = 30.0, h: float = 80.0) -> list[float]:
    """An ``xyxy`` box of size ``w x h`` centred on ``(cx, cy)``."""
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(boxes, scores=None, class_id: int = Detections.PERSON) -> Detections:
    """Detections of one class; score 0.9 unless given."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    s = np.full(len(b), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Detections.from_arrays(b, s, np.full(len(b), class_id))


def noisy_scene(
    seed: int = 0,
    n_people: int = 12,
    n_frames: int = 150,
    size: tuple[float, float] = (1920.0, 1080.0),
    jitter_px: float = 2.0,
    miss_rate: float = 0.10,
    low_score_rate: float = 0.10,
    false_positives_per_frame: float = 0.3,
) -> Scene:
    """People walking and running (up to 4 px/frame), bouncing off the frame edges.

    Each true box is jittered by ``jitter_px`` per coordinate and missed with ``miss_rate``;
    ``low_score_rate`` of the kept ones get a low score (0.15..0.45, as in occlusion) and the rest
    0.5..0.95. False positives appear at random places with scores 0.3..0.7.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    wh = np.stack([rng.uniform(24, 40, n_people), rng.uniform(70, 110, n_people)], 1)
    pos = np.stack(
        [rng.uniform(60, width - 60, n_people), rng.uniform(80, height - 80, n_people)], 1
    )
    vel = rng.uniform(-4, 4, (n_people, 2))
    scene = Scene([], [], [])
    for _ in range(n_frames):
        boxes = np.concatenate([pos - wh / 2, pos + wh / 2], axis=1)
        scene.truth_ids.append(np.arange(n_people))
        scene.truth_boxes.append(boxes.copy())
        kept = boxes[rng.random(n_people) >= miss_rate]
        kept = kept + rng.normal(0, jitter_px, kept.shape)
        low = rng.random(len(kept)) < low_score_rate
        score = np.where(low, rng.uniform(0.15, 0.45, len(kept)), rng.uniform(0.5, 0.95, len(kept)))
        n_fp = rng.poisson(false_positives_per_frame)
        fp_c = np.stack([rng.uniform(40, width - 40, n_fp), rng.uniform(60, height - 60, n_fp)], 1)
        half = np.array([15.0, 40.0])
        fp = np.concatenate([fp_c - half, fp_c + half], axis=1)
        all_boxes = np.concatenate([kept, fp])
        all_scores = np.concatenate([score, rng.uniform(0.3, 0.7, n_fp)])
        x1y1 = np.minimum(all_boxes[:, :2], all_boxes[:, 2:])
        x2y2 = np.maximum(all_boxes[:, :2], all_boxes[:, 2:])
        scene.detections.append(dets(np.concatenate([x1y1, x2y2], 1), all_scores))
        pos = pos + vel
        bounce = (pos < wh) | (pos > np.array([width, height]) - wh)
        vel = np.where(bounce, -vel, vel)
    return scene


def mot_scores(scene: Scene, tracks: list[Tracks], min_iou: float = 0.5) -> dict[str, float]:
    """MOTA, IDF1 and identity switches from py-motmetrics, matching boxes at ``IoU >= min_iou``."""
    acc = mm.MOTAccumulator(auto_id=True)
    for ids, boxes, tr in zip(scene.truth_ids, scene.truth_boxes, tracks, strict=True):
        # motmetrics' own iou_matrix uses np.asfarray, gone in NumPy 2; give it the distances.
        dist = 1.0 - box_iou(boxes, tr.xyxy)
        dist[dist > 1.0 - min_iou] = np.nan
        acc.update(ids.tolist(), tr.track_id.tolist(), dist)
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "idf1", "num_switches"], name="scene"
    )
    return {k: float(summary[k].iloc[0]) for k in ("mota", "idf1", "num_switches")}
