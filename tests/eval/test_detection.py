"""Detection precision and recall on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import BALL_CLASS, PERSON_CLASS, Results, box_iou, evaluate
from evaluation.detection import DetectionScore
from tests.eval.helpers import make_detections, make_truth

A = (100.0, 100.0, 150.0, 250.0)
B = (300.0, 100.0, 350.0, 250.0)
BALL = (500.0, 500.0, 510.0, 510.0)
ELSEWHERE = (800.0, 100.0, 850.0, 250.0)


def scores_by_class(truth_rows, det_rows, space: str = "left") -> dict[str, DetectionScore]:
    report = evaluate(
        make_truth(truth_rows, frames=2), Results(detections=make_detections(det_rows))
    )
    assert report.detection is not None
    return {s.name: s for s in report.detection[space]}


def truth_two_frames():
    """Frame 0: people at A and B and the ball; frame 1: the person at A."""
    return [
        (0, 1, "home", (10.0, 10.0, 0.0), A),
        (0, 2, "away", (20.0, 10.0, 0.0), B),
        (0, 0, "ball", (30.0, 10.0, 0.11), BALL),
        (1, 1, "home", (10.0, 10.0, 0.0), A),
    ]


def test_box_iou():
    iou = box_iou(
        np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    )
    np.testing.assert_allclose(iou, [[1 / 3, 1.0, 0.0]], rtol=0, atol=1e-15)


def test_perfect_detections():
    dets = [(0, "left", PERSON_CLASS, 0.9, A), (0, "left", PERSON_CLASS, 0.8, B)]
    dets += [(0, "left", BALL_CLASS, 0.7, BALL), (1, "left", PERSON_CLASS, 0.9, A)]
    s = scores_by_class(truth_two_frames(), dets)
    assert (s["person"].tp, s["person"].fp, s["person"].fn) == (3, 0, 0)
    assert (s["person"].precision, s["person"].recall) == (1.0, 1.0)
    assert (s["ball"].precision, s["ball"].recall) == (1.0, 1.0)


def test_one_false_positive_one_false_negative():
    # Frame 1's person at A is missed (FN) and a box where nobody stands appears (FP):
    # person TP = 2, FP = 1, FN = 1 -> precision = recall = 2/3; the ball stays perfect.
    dets = [(0, "left", PERSON_CLASS, 0.9, A), (0, "left", PERSON_CLASS, 0.8, B)]
    dets += [(0, "left", BALL_CLASS, 0.7, BALL), (1, "left", PERSON_CLASS, 0.6, ELSEWHERE)]
    s = scores_by_class(truth_two_frames(), dets)
    assert (s["person"].tp, s["person"].fp, s["person"].fn) == (2, 1, 1)
    assert s["person"].precision == pytest.approx(2 / 3, abs=1e-15)
    assert s["person"].recall == pytest.approx(2 / 3, abs=1e-15)
    assert (s["ball"].tp, s["ball"].fp, s["ball"].fn) == (1, 0, 0)


# Two people side by side (boxes as 1-D intervals of height 10): GA = [0, 10], GB = [6, 16].
# P1 = [2.5, 13] overlaps GA with IoU 7.5/13 = 0.577 and GB with IoU 7/13.5 = 0.519;
# P2 = [0, 10] overlaps GA with IoU 1 and GB with IoU 4/16 = 0.25.
GA, GB = (0.0, 0.0, 10.0, 10.0), (6.0, 0.0, 16.0, 10.0)
P1, P2 = (2.5, 0.0, 13.0, 10.0), (0.0, 0.0, 10.0, 10.0)
SIDE_BY_SIDE = [(0, 1, "home", (1.0, 1.0, 0.0), GA), (0, 2, "home", (2.0, 1.0, 0.0), GB)]


def test_greedy_matching_follows_score_order():
    # P1 scores higher, takes its best box GA; P2's only match GA is taken and GB is at 0.25:
    # TP 1, FP 1, FN 1 (an optimal assignment would have found 2 TPs; greedy is the standard).
    dets = [(0, "left", PERSON_CLASS, 0.9, P1), (0, "left", PERSON_CLASS, 0.8, P2)]
    s = scores_by_class(SIDE_BY_SIDE, dets)["person"]
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)


def test_taken_best_box_falls_back_to_next_free_one():
    # P2 scores higher and takes GA; P1's best box GA is taken, so it falls back to GB (IoU
    # 0.519 >= 0.5): TP 2. Plain VOC would call P1 a duplicate (TP 1, FP 1, FN 1).
    dets = [(0, "left", PERSON_CLASS, 0.8, P1), (0, "left", PERSON_CLASS, 0.9, P2)]
    s = scores_by_class(SIDE_BY_SIDE, dets)["person"]
    assert (s.tp, s.fp, s.fn) == (2, 0, 0)


def test_duplicate_detection_is_a_false_positive():
    dets = [(0, "left", PERSON_CLASS, 0.9, GA), (0, "left", PERSON_CLASS, 0.8, GA)]
    s = scores_by_class(SIDE_BY_SIDE[:1], dets)["person"]
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)


def test_only_visible_truth_counts_and_classes_do_not_mix():
    # Person 2 is not visible in the left image: no FN for it, and a box on it is an FP.
    # A box labelled ball on person 1 is a ball FP and leaves person 1 an FN.
    truth = [(0, 1, "home", (1.0, 1.0, 0.0), A), (0, 2, "away", (2.0, 1.0, 0.0), None)]
    dets = [(0, "left", BALL_CLASS, 0.9, A), (0, "left", PERSON_CLASS, 0.9, B)]
    s = scores_by_class(truth, dets)
    assert (s["person"].tp, s["person"].fp, s["person"].fn) == (0, 1, 1)
    assert (s["ball"].tp, s["ball"].fp, s["ball"].fn) == (0, 1, 0)
    assert s["ball"].recall is None  # no ball in the truth
    assert s["person"].precision == 0.0


def test_spaces_are_scored_separately_and_unknown_spaces_noted():
    dets = [(0, "left", PERSON_CLASS, 0.9, A), (0, "right", PERSON_CLASS, 0.9, A)]
    dets += [(0, "panorama", PERSON_CLASS, 0.9, A)]
    truth = [(0, 1, "home", (1.0, 1.0, 0.0), A)]
    report = evaluate(make_truth(truth, frames=1), Results(detections=make_detections(dets)))
    assert report.detection is not None
    assert sorted(report.detection) == ["left", "right"]
    left, right = report.detection["left"][0], report.detection["right"][0]
    assert (left.tp, left.fp, left.fn) == (1, 0, 0)
    # Nothing is visible in the right image of this truth.
    assert (right.tp, right.fp, right.fn) == (0, 1, 0)
    assert any("panorama" in note for note in report.notes)
