"""Ground points of boxes and the pitch filter."""

from __future__ import annotations

import numpy as np

from activities.track.ground import ground_points, on_pitch


def test_the_ground_point_is_raised_by_a_fraction_of_the_box_height() -> None:
    boxes = np.array([[10.0, 100.0, 30.0, 200.0], [0.0, 0.0, 4.0, 10.0]])
    np.testing.assert_allclose(ground_points(boxes, lift=0.1), [[20.0, 190.0], [2.0, 9.0]])
    np.testing.assert_allclose(ground_points(boxes, lift=0.0)[:, 1], [200.0, 10.0])
    assert ground_points(np.zeros((0, 4))).shape == (0, 2)


def test_only_points_on_the_pitch_plus_the_margin_pass() -> None:
    xy = np.array([[0.0, 0.0], [-2.9, 70.9], [-3.1, 30.0], [50.0, 72.0], [np.nan, 3.0]])
    assert on_pitch(xy, margin_m=3.0).tolist() == [True, True, False, False, False]
