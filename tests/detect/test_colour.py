"""Torso colour of person boxes."""

from __future__ import annotations

import cv2
import numpy as np

from activities.detect.colour import torso_lab
from activities.detect.detections import Detections
from activities.detect.rows import detections_table, person_colours

GRASS_BGR = (40, 140, 60)
RED_BGR = (35, 25, 200)
BLUE_BGR = (205, 75, 30)


def _lab(bgr: tuple[int, int, int]) -> np.ndarray:
    pixel = np.array([[bgr]], np.float32) / 255.0
    return np.asarray(cv2.cvtColor(pixel, cv2.COLOR_BGR2Lab)[0, 0])


def _person(image: np.ndarray, x: int, y: int, shirt: tuple[int, int, int]) -> list[float]:
    """A 20 x 60 person at (x, y): skin head, shirt, white shorts; returns its box."""
    image[y : y + 10, x + 6 : x + 14] = (150, 190, 240)
    image[y + 10 : y + 32, x + 3 : x + 17] = shirt
    image[y + 32 : y + 44, x + 4 : x + 16] = (245, 245, 245)
    return [float(x), float(y), float(x + 20), float(y + 60)]


def test_red_and_blue_shirts_give_their_lab_colours() -> None:
    image = np.empty((200, 300, 3), np.uint8)
    image[:] = GRASS_BGR
    boxes = [_person(image, 40, 50, RED_BGR), _person(image, 200, 100, BLUE_BGR)]
    lab = torso_lab(image, boxes)
    assert lab.shape == (2, 3) and lab.dtype == np.float32
    np.testing.assert_allclose(lab[0], _lab(RED_BGR), atol=2.0)
    np.testing.assert_allclose(lab[1], _lab(BLUE_BGR), atol=2.0)
    assert lab[0, 1] > 40 and lab[1, 2] < -40  # red: high a*; blue: low b*


def test_degenerate_and_outside_boxes_are_nan() -> None:
    image = np.full((100, 100, 3), 128, np.uint8)
    boxes: list[list[float]] = [
        [10, 10, 10, 50],  # zero width
        [10, 10, 30, 10],  # zero height
        [200, 200, 220, 260],  # outside
        [np.nan, 0, 10, 10],
        [0.0, 0.0, 20.0, 60.0],
    ]
    lab = torso_lab(image, boxes)
    assert np.isnan(lab[:4]).all()
    assert np.isfinite(lab[4]).all()
    assert torso_lab(image, np.zeros((0, 4))).shape == (0, 3)


def test_only_person_rows_get_a_colour() -> None:
    image = np.empty((200, 300, 3), np.uint8)
    image[:] = GRASS_BGR
    box = _person(image, 40, 50, RED_BGR)
    found = Detections.from_arrays(
        np.array([box, [100, 100, 110, 110]], np.float32),
        np.array([0.9, 0.8], np.float32),
        np.array([Detections.PERSON, Detections.SPORTS_BALL]),
    )
    table = detections_table(7, found, person_colours(image, found))
    assert table.column("torso_a").to_numpy()[0] > 40
    assert np.isnan(table.column("torso_l").to_numpy()[1])
    assert np.isnan(detections_table(7, found).column("torso_b").to_numpy()).all()
