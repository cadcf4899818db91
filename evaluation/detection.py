"""Detection precision and recall per class at an IoU threshold, in one image space.

Matching is greedy in descending score order, within each frame and class: each prediction takes
the still-unmatched truth box it overlaps most, if that IoU is at least the threshold, and is a
true positive; otherwise it is a false positive. Truth boxes left unmatched are false negatives.
This is the PASCAL VOC rule except for one detail, taken from COCO: a prediction whose best truth
box is already taken falls back to its best *free* one instead of counting as a duplicate, which
matters when players overlap. Boxes are continuous (area ``(x2 - x1) * (y2 - y1)``, no ``+1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from evaluation.formats import BALL_CLASS, PERSON_CLASS, Detections, Truth

CLASS_NAMES = {PERSON_CLASS: "person", BALL_CLASS: "ball"}


@dataclass(frozen=True)
class DetectionScore:
    """Detection counts and rates for one class in one image space.

    ``precision`` is None when there are no predictions, ``recall`` when there is no truth.
    """

    space: str
    class_id: int
    tp: int
    fp: int
    fn: int

    @property
    def name(self) -> str:
        return CLASS_NAMES.get(self.class_id, str(self.class_id))

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def box_iou(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """IoU of every box in ``a`` ``[N, 4]`` with every box in ``b`` ``[M, 4]``, as ``[N, M]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: npt.NDArray[np.float64] = np.divide(
        inter, union, out=np.zeros_like(inter), where=union > 0
    )
    return out


def _match_frame(
    truth_boxes: npt.NDArray[np.floating],
    pred_boxes: npt.NDArray[np.floating],
    pred_scores: npt.NDArray[np.floating],
    iou_threshold: float,
) -> int:
    """Greedy score-ordered matching in one frame and class; returns the true positives."""
    if truth_boxes.shape[0] == 0 or pred_boxes.shape[0] == 0:
        return 0
    iou = box_iou(pred_boxes, truth_boxes)
    taken = np.zeros(truth_boxes.shape[0], dtype=np.bool_)
    tp = 0
    # A stable sort keeps export order among equal scores, so results are deterministic.
    for p in np.argsort(-np.asarray(pred_scores, dtype=np.float64), kind="stable"):
        candidates = np.where(taken, -1.0, iou[p])
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            taken[best] = True
            tp += 1
    return tp


def detection_pr(
    truth_frame: npt.NDArray[np.integer],
    truth_class: npt.NDArray[np.integer],
    truth_boxes: npt.NDArray[np.floating],
    pred_frame: npt.NDArray[np.integer],
    pred_class: npt.NDArray[np.integer],
    pred_score: npt.NDArray[np.floating],
    pred_boxes: npt.NDArray[np.floating],
    *,
    space: str,
    classes: tuple[int, ...] = (PERSON_CLASS, BALL_CLASS),
    iou_threshold: float = 0.5,
) -> list[DetectionScore]:
    """Precision and recall per class for boxes that are all in one image space.

    Args:
        truth_frame: ``[N]`` frame of each truth box (only objects visible in this space).
        truth_class: ``[N]`` COCO class of each truth box.
        truth_boxes: ``[N, 4]`` ``x1, y1, x2, y2``.
        pred_frame: ``[M]`` frame of each predicted box.
        pred_class: ``[M]`` predicted COCO class.
        pred_score: ``[M]`` confidence; higher scores are matched first.
        pred_boxes: ``[M, 4]`` ``x1, y1, x2, y2``.
        space: Name of the image space, copied into the scores.
        classes: Classes to score; predictions of other classes are ignored.
        iou_threshold: Minimum IoU for a match (inclusive).

    Returns:
        One `DetectionScore` per class in ``classes``.
    """
    scores = []
    for cls in classes:
        t_mask = truth_class == cls
        p_mask = pred_class == cls
        # Sort both sides by frame once so each frame is a slice (matches can be long).
        t_order = np.argsort(truth_frame[t_mask], kind="stable")
        p_order = np.argsort(pred_frame[p_mask], kind="stable")
        t_frame, t_boxes = truth_frame[t_mask][t_order], truth_boxes[t_mask][t_order]
        p_frame = pred_frame[p_mask][p_order]
        p_boxes, p_score = pred_boxes[p_mask][p_order], pred_score[p_mask][p_order]
        tp = 0
        for f in np.intersect1d(t_frame, p_frame):
            t0, t1 = np.searchsorted(t_frame, f, "left"), np.searchsorted(t_frame, f, "right")
            p0, p1 = np.searchsorted(p_frame, f, "left"), np.searchsorted(p_frame, f, "right")
            tp += _match_frame(t_boxes[t0:t1], p_boxes[p0:p1], p_score[p0:p1], iou_threshold)
        n_truth, n_pred = int(t_mask.sum()), int(p_mask.sum())
        scores.append(DetectionScore(space, int(cls), tp=tp, fp=n_pred - tp, fn=n_truth - tp))
    return scores


def evaluate_detections(
    truth: Truth, detections: Detections, space: str, *, iou_threshold: float = 0.5
) -> list[DetectionScore]:
    """Score the detections in one image space against the truth objects visible in it.

    Truth people (players and referees) are class person, the ball is class ball.

    Raises:
        KeyError: The truth has no boxes for ``space``.
    """
    visible = truth.visible[space]
    person, ball = truth.is_person & visible, truth.is_ball & visible
    keep = person | ball
    truth_class = np.where(person, PERSON_CLASS, BALL_CLASS)[keep]
    in_space = detections.space == space
    return detection_pr(
        truth.frame[keep],
        truth_class,
        truth.boxes[space][keep],
        detections.frame[in_space],
        detections.class_id[in_space],
        detections.score[in_space],
        detections.boxes[in_space],
        space=space,
        iou_threshold=iou_threshold,
    )
