"""Track points and the ball, pitch metres to panorama pixels for the planner."""

from __future__ import annotations

import math

import numpy as np

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.vcam.points import ball_panorama_points

MODEL = PanoramaModel(
    width=640,
    height=192,
    center=(52.5, -15.0, 12.0),
    heading_rad=math.pi / 2,
    focal_px=237.0,
    cu=319.5,
    cv=-19.0,
    far_wall_y_m=78.0,
    pitch_length_m=105.0,
    pitch_width_m=68.0,
)


def test_ball_is_mapped_at_its_height_and_unusable_rows_are_left_out() -> None:
    frame = np.array([0, 1, 2, 3, 9])
    x = np.array([52.5, 52.5, np.nan, 40.0, 40.0])
    y = np.array([34.0, 34.0, 34.0, 20.0, 20.0])
    z = np.array([0.11, 5.0, 0.11, np.nan, 0.11])

    points = ball_panorama_points(MODEL, frame, x, y, z, frames=5)

    # Frame 2 has no position, frame 9 is past the plan.
    assert points.frame.tolist() == [0, 1, 3]
    expected = pitch_to_panorama(MODEL, np.array([[52.5, 34.0, 0.11], [52.5, 34.0, 5.0]]))
    np.testing.assert_allclose(points.xy[:2], expected, rtol=1e-5)
    # The lofted ball is seen higher in the image (smaller v) than its ground point.
    assert points.xy[1, 1] < points.xy[0, 1] - 5
    # A missing height reads as on the grass.
    ground = pitch_to_panorama(MODEL, np.array([[40.0, 20.0, 0.0]]))[0]
    np.testing.assert_allclose(points.xy[2], ground, rtol=1e-5)
