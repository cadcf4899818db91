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


def test_the_lift_is_measured_per_column_band_from_boxes_of_known_height() -> None:
    from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
    from activities.track.ground import PERSON_HEIGHT_M, calibrate_lift

    model = PanoramaModel(
        width=1900,
        height=550,
        center=(52.5, -15.0, 13.0),
        heading_rad=np.pi / 2,
        focal_px=588.0,
        cu=949.5,
        cv=-38.0,
        far_wall_y_m=78.0,
        pitch_length_m=105.0,
        pitch_width_m=68.0,
    )
    rng = np.random.default_rng(4)
    feet = np.column_stack([rng.uniform(5, 100, 400), rng.uniform(5, 63, 400), np.zeros(400)])
    heads = feet + np.array([0.0, 0.0, PERSON_HEIGHT_M])
    foot_px, head_px = pitch_to_panorama(model, feet), pitch_to_panorama(model, heads)
    height = foot_px[:, 1] - head_px[:, 1]
    # A shadow on the left half of the panorama reaches 20 % of the figure below the feet.
    shadow = np.where(foot_px[:, 0] < 950, 0.2, 0.05) * height
    boxes = np.column_stack(
        [foot_px[:, 0] - 3, head_px[:, 1], foot_px[:, 0] + 3, foot_px[:, 1] + shadow]
    )
    lift = calibrate_lift(model, boxes)
    ground = ground_points(boxes, lift)
    usable = (boxes[:, 3] - boxes[:, 1]) >= 12
    np.testing.assert_allclose(ground[usable, 1], foot_px[usable, 1], atol=1.0)
    assert abs(ground_points(boxes, 0.0)[usable, 1] - foot_px[usable, 1]).max() > 3.0
