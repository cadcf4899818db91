"""Ball candidates from appearance: a drawn ball is found with a ball-sized box, a painted line
and a head at the top of a person are not taken for balls, bad input is refused, and a real
panorama gives candidates in time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from activities.detect.ball_appearance import (
    FEATURE_NAMES,
    BallCandidates,
    appearance_candidates,
    diameter_from_people,
    measure_candidates_at,
)
from evaluation.detection import box_iou

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("PV_TEST_DATA", REPO.parent / "shared" / "data"))
V2_DEV = SHARED_DATA / "soccertrack-v2-dev"
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def turf(width: int = 320, height: int = 200, seed: int = 0) -> np.ndarray:
    """Noisy green turf, BGR, like the panoramas' grass."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 4, (height, width, 3))
    return np.clip(noise + np.array([60, 120, 50]), 0, 255).astype(np.uint8)


def draw_ball(image: np.ndarray, cx: float, cy: float, diameter: float) -> np.ndarray:
    """A pale ball, blurred as the compressed panoramas blur it: an anti-aliased disc softened
    by a Gaussian of a third of its radius."""
    disc = np.zeros(image.shape[:2], np.float32)
    cv2.circle(disc, (round(cx * 16), round(cy * 16)), round(diameter / 2 * 16), 1.0, -1,
               cv2.LINE_AA, 4)  # fmt: skip
    alpha = np.asarray(cv2.GaussianBlur(disc, (0, 0), diameter / 6), np.float32)[..., None]
    out = image.astype(np.float32) * (1 - alpha) + np.array([225, 230, 230], np.float32) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def best(candidates: BallCandidates) -> int:
    return int(np.argmax(candidates.score))


@pytest.mark.parametrize(("diameter", "expected"), [(8.0, 4.0), (10.0, 5.0), (14.0, None)])
def test_a_drawn_ball_is_found_where_it_is_with_a_ball_sized_box(
    diameter: float, expected: float | None
) -> None:
    image = draw_ball(turf(), 161.3, 97.6, diameter)
    found = appearance_candidates(image, expected)
    assert len(found)
    k = best(found)
    cx, cy = found.centres[k]
    assert abs(cx - 161.3) < 1.0 and abs(cy - 97.6) < 1.0
    r = diameter / 2
    truth = np.array([[161.3 - r, 97.6 - r, 161.3 + r, 97.6 + r]], np.float32)
    # Tight: about the ball's side (the blur adds a little), an IoU with its own box >= 0.35.
    side = found.xyxy[k, 2:] - found.xyxy[k, :2]
    assert np.all(side >= diameter * 0.8) and np.all(side <= diameter * 1.7)
    assert box_iou(found.xyxy[[k]], truth)[0, 0] >= 0.35


def test_a_far_ball_of_a_few_pixels_is_found() -> None:
    image = draw_ball(turf(), 40.4, 150.2, 4.0)
    found = appearance_candidates(image, 1.5)
    k = best(found)
    assert np.allclose(found.centres[k], (40.4, 150.2), atol=1.0)
    side = found.xyxy[k, 2:] - found.xyxy[k, :2]
    assert np.all(side <= 10)


def test_a_per_pixel_diameter_map_gates_by_size() -> None:
    image = draw_ball(turf(), 100.0, 100.0, 8.0)
    near = np.full(image.shape[:2], 4.0, np.float32)  # 8 px visible: ratio 2, a ball
    far = np.full(image.shape[:2], 0.5, np.float32)  # 16x the expected size: not a ball
    assert len(appearance_candidates(image, near))
    found = appearance_candidates(image, far)
    centres = found.centres
    assert not np.any(np.hypot(centres[:, 0] - 100, centres[:, 1] - 100) < 3)


def test_a_painted_line_gives_no_candidate_along_it() -> None:
    image = turf()
    # Across the whole image, as a pitch line or a logo's stroke crosses a crop: no line ends,
    # which are round-ish and are left to the classifier.
    cv2.line(image, (-10, 40), (330, 60), (235, 235, 235), 3, cv2.LINE_AA)
    image = draw_ball(image, 160.0, 150.0, 8.0)
    found = appearance_candidates(image, 4.0)
    on_ball = np.hypot(found.centres[:, 0] - 160, found.centres[:, 1] - 150) < 2
    line_y = 40 + (found.centres[:, 0] + 10) * 20 / 340
    on_line = np.abs(found.centres[:, 1] - line_y) < 4
    assert on_ball.any()
    assert not on_line.any() or found.score[on_line].max() < found.score[on_ball].max() / 2


def test_a_head_at_the_top_of_a_person_is_flagged_and_feet_are_not() -> None:
    image = turf(seed=1)
    # A player: a dark box with a pale round head on top, the ball at his feet.
    cv2.rectangle(image, (150, 70), (166, 130), (90, 40, 30), -1)
    image = draw_ball(image, 158.0, 64.0, 8.0)  # the head
    image = draw_ball(image, 170.0, 131.0, 8.0)  # the ball
    person = np.array([[146.0, 58.0, 172.0, 136.0]])
    found = appearance_candidates(image, 4.0, people_xyxy=person)
    head = np.hypot(found.centres[:, 0] - 158, found.centres[:, 1] - 64) < 2
    ball = np.hypot(found.centres[:, 0] - 170, found.centres[:, 1] - 131) < 2
    assert head.any() and ball.any()
    assert np.all(found.features[head, COL["in_person_top"]] == 1)
    assert np.all(found.features[ball, COL["in_person_top"]] == 0)
    assert found.score[head].max() < found.score[ball].max()


def test_the_diameter_is_fitted_from_people() -> None:
    feet = np.array([500.0, 550.0, 600.0, 650.0, 700.0, 760.0, 620.0])
    heights = 0.16 * feet - 68  # the v2-dev panoramas' people (height against the feet's row)
    boxes = np.stack([np.full(7, 10.0), feet - heights, np.full(7, 20.0), feet], 1)
    boxes = np.concatenate([boxes, [[0, 600, 30, 700]]])  # an outlier: two players in one box
    a, b = diameter_from_people(boxes)  # type: ignore[misc]
    assert a + b * 700 == pytest.approx((0.16 * 700 - 68) * 0.22 / 1.8, rel=0.05)
    assert diameter_from_people(boxes[:2]) is None


def test_network_boxes_are_measured_like_blobs() -> None:
    image = draw_ball(turf(), 80.0, 60.0, 8.0)
    found = measure_candidates_at(image, [[75, 55, 85, 65]], [4.0])
    assert len(found) == 1
    assert found.features.shape == (1, len(FEATURE_NAMES))
    assert np.allclose(found.centres[0], (80, 60), atol=1.0)


@pytest.mark.parametrize(
    ("image", "diameter", "match"),
    [
        (np.zeros((50, 50, 3), np.float32), None, "uint8"),
        (np.zeros((50, 50), np.uint8), None, r"\[H>=8, W>=8, 3\]"),
        (np.zeros((50, 50, 4), np.uint8), None, r"\[H>=8, W>=8, 3\]"),
        (np.zeros((50, 50, 3), np.uint8), np.ones((40, 50), np.float32), "shape"),
        (np.zeros((50, 50, 3), np.uint8), np.ones((50, 50), np.int32), "floating"),
        (np.zeros((50, 50, 3), np.uint8), -2.0, "positive"),
    ],
)
def test_bad_input_is_refused_clearly(image: np.ndarray, diameter: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        appearance_candidates(image, diameter)  # type: ignore[arg-type]


def test_an_empty_image_gives_no_candidates_of_the_right_shapes() -> None:
    found = appearance_candidates(np.full((60, 80, 3), 90, np.uint8))
    assert len(found) == 0
    assert found.xyxy.shape == (0, 4) and found.features.shape == (0, len(FEATURE_NAMES))


def test_a_real_panorama_gives_its_balls_in_time() -> None:
    images = sorted((V2_DEV / "images").glob("*1st_6_000*.jpg"))
    if not images:
        pytest.skip(f"SoccerTrack-v2 panoramas not at {V2_DEV} (set PV_TEST_DATA)")
    raw = cv2.imread(str(images[0]))
    assert raw is not None
    image = np.asarray(raw, np.uint8)
    label = V2_DEV / "labels" / f"{images[0].stem}.txt"
    rows = np.array(label.read_text().split(), np.float64).reshape(-1, 5)
    balls = rows[rows[:, 0] == 1]
    truth = np.stack(
        [
            (balls[:, 1] - balls[:, 3] / 2) * 2160,
            (balls[:, 2] - balls[:, 4] / 2) * 1080,
            (balls[:, 1] + balls[:, 3] / 2) * 2160,
            (balls[:, 2] + balls[:, 4] / 2) * 1080,
        ],
        1,
    )
    appearance_candidates(image)  # warm up
    started = time.perf_counter()
    found = appearance_candidates(image)
    seconds = time.perf_counter() - started
    # Most of this frame's labelled balls are among the candidates (5 of 6 when written).
    hit = (box_iou(truth, found.xyxy).max(axis=1) >= 0.3).sum()
    assert hit >= len(truth) // 2
    assert seconds < 1.0  # ~0.1 s on one core; generous for a loaded machine
