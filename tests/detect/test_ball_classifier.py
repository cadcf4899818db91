"""The ball classifier: the committed weights load and score deterministically, the fit is
deterministic and separates a separable toy set, and the merge joins network boxes to blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from activities.detect.ball_appearance import (
    FEATURE_NAMES,
    BallCandidates,
    appearance_candidates,
)
from activities.detect.ball_classifier import (
    DEFAULT_THRESHOLD,
    DESIGN_NAMES,
    WEIGHTS_PATH,
    BallModel,
    classify_balls,
    detect_balls,
    fit_logistic,
    load_model,
    merge_network,
)
from activities.detect.detections import Detections
from tests.detect.test_ball_appearance import draw_ball, turf

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def toy_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random features where a ball is a round, contrasted blob (the first half)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 1, (n, len(FEATURE_NAMES))).astype(np.float32)
    labels = np.arange(n) < n // 2
    features[labels, COL["roundness"]] += 3
    features[labels, COL["log_contrast"]] += 3
    return features, labels


def test_the_committed_weights_load_small_and_score_deterministically() -> None:
    assert WEIGHTS_PATH.stat().st_size < 200_000
    model = load_model()
    features, _ = toy_features(50, 0)
    first = model.probability(features)
    second = load_model().probability(features.copy())
    assert first.dtype == np.float32 and first.shape == (50,)
    assert np.array_equal(first, second)
    assert np.all((first >= 0) & (first <= 1))


def test_the_committed_model_prefers_a_drawn_ball_to_bare_turf() -> None:
    image = draw_ball(turf(seed=3), 120.0, 80.0, 9.0)
    found = appearance_candidates(image, 4.5)
    prob = load_model().probability(found.features)
    on_ball = np.hypot(found.centres[:, 0] - 120, found.centres[:, 1] - 80) < 2
    assert on_ball.any()
    assert prob[on_ball].max() >= prob[~on_ball].max(initial=0.0)


def test_fitting_is_deterministic_and_separates_a_toy_set() -> None:
    features, labels = toy_features(300, 1)
    a = fit_logistic(features, labels, positive_weight=1.0, l2=1e-2)
    b = fit_logistic(features, labels, positive_weight=1.0, l2=1e-2)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias
    test, truth = toy_features(200, 2)
    prob = a.probability(test)
    assert np.mean((prob >= 0.5) == truth) > 0.9


def test_a_model_round_trips_through_its_file(tmp_path: Path) -> None:
    features, labels = toy_features(200, 4)
    model = fit_logistic(features, labels)
    path = tmp_path / "m.npz"
    model.save(path)
    again = load_model(path)
    assert np.allclose(again.probability(features), model.probability(features), atol=1e-5)


def test_a_file_for_other_features_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    d = len(DESIGN_NAMES) - 1
    np.savez(path, names=np.array(DESIGN_NAMES[:-1]), mean=np.zeros(d), scale=np.ones(d),
             weights=np.zeros(d), bias=np.float32(0))  # fmt: skip
    with pytest.raises(ValueError, match="trained on features"):
        load_model(path)


def test_fitting_needs_both_classes() -> None:
    features, _ = toy_features(20, 5)
    with pytest.raises(ValueError, match="both positive and negative"):
        fit_logistic(features, np.zeros(20, bool))


def test_the_merge_gives_a_blob_the_network_score_and_adds_lone_network_boxes() -> None:
    image = draw_ball(draw_ball(turf(), 60.0, 60.0, 8.0), 250.0, 140.0, 8.0)
    blobs = appearance_candidates(image, 4.0)
    net_xyxy = np.array([[55, 55, 65, 65], [20, 150, 30, 160]], np.float32)  # on a blob; alone
    merged = merge_network(blobs, image, net_xyxy, np.array([0.4, 0.3], np.float32))
    assert len(merged) == len(blobs) + 1
    on_first = np.hypot(merged.centres[:, 0] - 60, merged.centres[:, 1] - 60) < 2
    assert merged.features[on_first, COL["net_score"]].max() == pytest.approx(0.4)
    lone = merged.features[:, COL["from_network"]] == 1
    assert lone.sum() == 1 and merged.features[lone, COL["net_score"]][0] == pytest.approx(0.3)
    assert np.array_equal(merged.xyxy[lone][0], net_xyxy[1])
    with pytest.raises(ValueError, match="scores"):
        merge_network(blobs, image, net_xyxy, np.array([0.4], np.float32))


def test_classify_keeps_the_probable_ones_best_first() -> None:
    features, labels = toy_features(40, 6)
    model: BallModel = fit_logistic(features, labels, positive_weight=1.0)
    boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (40, 1))
    candidates = BallCandidates(boxes, np.zeros(40, np.float32), features)
    kept = classify_balls(candidates, model, DEFAULT_THRESHOLD)
    assert len(kept) and np.all(kept.score >= DEFAULT_THRESHOLD)
    assert np.all(np.diff(kept.score) <= 0)
    assert len(classify_balls(BallCandidates.empty(), model)) == 0


def test_detect_balls_returns_ball_detections_with_a_diameter_map() -> None:
    image = draw_ball(turf(seed=7), 150.0, 90.0, 8.0)
    people = Detections.from_arrays([[40, 20, 60, 80]], [0.9], [Detections.PERSON])
    diameter = np.full(image.shape[:2], 4.0, np.float32)  # e.g. from the rig's panorama model
    found = detect_balls(image, people, load_model(), diameter, threshold=0.0)
    assert np.all(found.class_id == Detections.SPORTS_BALL)
    assert np.all(np.diff(found.score) <= 0)
    centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
    assert np.hypot(centres[0, 0] - 150, centres[0, 1] - 90) < 2  # the best one is the ball
