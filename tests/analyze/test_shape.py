"""Team shape per minute on known formations."""

from __future__ import annotations

import numpy as np
import pytest

from activities.analyze.shape import frame_shape, team_shapes

FPS = 25.0


def test_a_rectangle_of_players() -> None:
    # Six players on a 20 x 10 rectangle's corners and long-side midpoints.
    xy = np.array([[40, 20], [50, 20], [60, 20], [40, 30], [50, 30], [60, 30]], dtype=float)
    cx, cy, width, depth, compactness, area = frame_shape(xy)
    assert (cx, cy, width, depth, area) == pytest.approx((50.0, 25.0, 10.0, 20.0, 200.0))
    assert compactness == pytest.approx((4 * np.hypot(10, 5) + 2 * 5) / 6)


def test_minutes_and_teams_with_too_few_players_skipped() -> None:
    frames = np.arange(0, int(90 * FPS))  # a minute and a half
    rows = []
    for f in frames:
        shift = 0.0 if f < 60 * FPS else 10.0  # the block moves up the pitch in minute 1
        for k in range(6):
            rows.append((f, 0, 30.0 + shift + 2.0 * k, 20.0 + k))
        rows.append((f, 1, 70.0, 30.0))  # one player of team 1: no shape
    frame, team, x, y = (np.asarray(c) for c in zip(*rows, strict=True))
    shapes = team_shapes(frame, team, x, y, FPS)
    assert [(s.team, s.minute) for s in shapes] == [(0, 0), (0, 1)]
    assert shapes[0].samples == 60 * 5 and shapes[1].samples == 30 * 5
    assert shapes[0].centroid_x == pytest.approx(35.0)
    assert shapes[1].centroid_x == pytest.approx(45.0)
    assert shapes[0].depth_m == pytest.approx(10.0) and shapes[0].width_m == pytest.approx(5.0)
    assert shapes[0].hull_area_m2 == pytest.approx(0.0)  # all on one line
