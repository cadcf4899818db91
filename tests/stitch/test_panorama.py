"""The panorama model and stitch maps against the synthetic rig's known geometry."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from activities.stitch.panorama import (
    PanoramaError,
    PanoramaModel,
    StitchMaps,
    build_stitch_maps,
    panorama_model_from_rig,
    panorama_rays,
    panorama_to_pitch,
    pitch_to_panorama,
    stitch_frame,
)
from polyvision.geometry import Rig, project
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M
from synth.pitch import CENTRE_SPOT, PENALTY_SPOTS
from synth.render import Renderer, RenderStyle
from synth.simulation import simulate

LANDMARKS = np.array(
    [
        CENTRE_SPOT,
        *PENALTY_SPOTS,
        (0.0, 0.0),
        (PITCH_LENGTH_M, 0.0),
        (0.0, PITCH_WIDTH_M),
        (PITCH_LENGTH_M, PITCH_WIDTH_M),
        (PITCH_LENGTH_M / 2, 0.0),
        (PITCH_LENGTH_M / 2, PITCH_WIDTH_M),
    ]
)


@pytest.fixture(scope="module")
def stitched_background(rig: Rig, maps: StitchMaps) -> np.ndarray:
    """The empty stadium stitched, from the clean renderer (no noise, shadows or grass pattern)."""
    renderer = Renderer(rig, simulate(0.2, 25.0, 1).agents, seed=1, style=RenderStyle.clean())
    return stitch_frame(renderer.background("left"), renderer.background("right"), maps)


def test_model_json_round_trip(model: PanoramaModel) -> None:
    again = PanoramaModel.from_json(model.to_json())
    assert again == model
    assert json.loads(again.to_json()) == json.loads(model.to_json())


@pytest.mark.parametrize(
    "change",
    [{"version": 2}, {"width": 641}, {"focal_px": -1.0}, {"center": [1.0, 2.0]}, {"cv": "x"}],
)
def test_malformed_model_is_refused(model: PanoramaModel, change: dict[str, object]) -> None:
    data = model.to_dict() | change
    with pytest.raises(PanoramaError):
        PanoramaModel.from_dict(data)
    with pytest.raises(PanoramaError):
        PanoramaModel.from_json("{not json")


def test_size_follows_the_source_and_scale(rig: Rig, model: PanoramaModel) -> None:
    assert model.width == 2 * round(1.9 * 640 / 2)
    assert model.height % 2 == 0 and model.width > 2 * model.height
    half = panorama_model_from_rig(rig, scale=0.5)
    assert half.width == model.width // 2
    assert abs(half.height - model.height / 2) <= 2
    with pytest.raises(PanoramaError):
        panorama_model_from_rig(rig, scale=0.0)


def test_virtual_camera_sits_between_the_cameras(rig: Rig, model: PanoramaModel) -> None:
    midpoint = (rig.cameras["left"].center + rig.cameras["right"].center) / 2
    np.testing.assert_allclose(model.center, midpoint, atol=1e-9)


def test_landmarks_round_trip_through_the_panorama(model: PanoramaModel) -> None:
    pixels = pitch_to_panorama(model, np.column_stack([LANDMARKS, np.zeros(len(LANDMARKS))]))
    assert np.all((pixels >= 0) & (pixels <= [model.width - 1, model.height - 1]))
    back = panorama_to_pitch(model, pixels)
    assert np.abs(back - LANDMARKS).max() < 0.01  # metres
    # Ground points given as (x, y) are the same points.
    np.testing.assert_array_equal(pitch_to_panorama(model, LANDMARKS), pixels)


def test_left_goal_on_the_left_far_side_on_top(model: PanoramaModel) -> None:
    left_goal, right_goal, near, far = pitch_to_panorama(
        model,
        [(0.0, 34.0), (PITCH_LENGTH_M, 34.0), (52.5, 0.0), (52.5, PITCH_WIDTH_M)],
    )
    assert left_goal[0] < right_goal[0]
    assert far[1] < near[1]


def test_rays_agree_with_the_pixel_maps(model: PanoramaModel) -> None:
    rays = panorama_rays(model)
    assert rays.shape == (model.height, model.width, 3)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=-1), 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    v = rng.integers(0, model.height, 200)
    u = rng.integers(0, model.width, 200)
    ground = panorama_to_pitch(model, np.column_stack([u, v]))
    hit = ~np.isnan(ground[:, 0])
    direction = np.column_stack([ground, np.zeros(len(ground))]) - np.asarray(model.center)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    np.testing.assert_allclose(direction[hit], rays[v, u][hit], atol=1e-9)


def test_above_the_horizon_is_nan(model: PanoramaModel) -> None:
    horizon = model.cv
    ground = panorama_to_pitch(model, [(100.0, horizon - 5.0), (100.0, horizon + 5.0)])
    assert np.isnan(ground[0]).all() and np.isfinite(ground[1]).all()
    straight_up = pitch_to_panorama(model, [(*model.center[:2], 50.0)])
    assert np.isnan(straight_up[0, 0])


def test_maps_project_ground_points_exactly(
    rig: Rig, model: PanoramaModel, maps: StitchMaps
) -> None:
    """The fixed-point maps at a panorama pixel point where the camera sees its ground point."""
    for name, parts, valid in (
        ("left", (maps.left_only, maps.left_band), maps.valid_left),
        ("right", (maps.right_band, maps.right_only), maps.valid_right),
    ):
        map1 = np.concatenate([p.map1 for p in parts], axis=1)
        map2 = np.concatenate([p.map2 for p in parts], axis=1)
        start = 0 if name == "left" else maps.band_start
        xy, _ = cv2.convertMaps(map1, map2, cv2.CV_32FC2)
        vv, uu = np.nonzero(valid[:, start : start + map1.shape[1]])
        ground = panorama_to_pitch(model, np.column_stack([uu + start, vv]))
        on_pitch = (
            (ground[:, 0] > -3) & (ground[:, 0] < 108) & (ground[:, 1] > -2) & (ground[:, 1] < 71)
        )
        expected, _ = project(rig.cameras[name], np.column_stack([ground, np.zeros(len(ground))]))
        error = np.abs(xy[vv, uu] - expected)[on_pitch]
        assert on_pitch.sum() > 0.3 * model.width * model.height
        # Fixed point keeps 1/32 px; the maps' grid interpolation adds thousandths.
        assert error.max() < 1 / 32 + 0.01


def test_spots_appear_where_the_model_says(
    model: PanoramaModel, stitched_background: np.ndarray
) -> None:
    grey = cv2.cvtColor(stitched_background, cv2.COLOR_BGR2GRAY).astype(np.float64)
    for spot in PENALTY_SPOTS:
        predicted = pitch_to_panorama(model, [spot])[0]
        u0, v0 = (round(float(c)) for c in predicted)
        r = 6  # the nearest other marking is ~25 px away at this size
        window = grey[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1]
        whiteness = np.clip(window - np.median(window), 0.0, None)
        assert whiteness.max() > 10  # the spot is there at all
        vv, uu = np.mgrid[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1]
        centroid = np.array([(whiteness * uu).sum(), (whiteness * vv).sum()]) / whiteness.sum()
        assert np.hypot(*(centroid - predicted)) < 1.0
    # The centre spot sits on the halfway line: check the line's column just above and below.
    predicted = pitch_to_panorama(model, [CENTRE_SPOT])[0]
    u0, v0 = round(float(predicted[0])), round(float(predicted[1]))
    for row in (v0 - 8, v0 + 8):
        profile = grey[row, u0 - 6 : u0 + 7]
        whiteness = np.clip(profile - np.median(grey[row, u0 - 30 : u0 + 31]), 0.0, None)
        column = (whiteness * np.arange(u0 - 6, u0 + 7)).sum() / whiteness.sum()
        assert abs(column - predicted[0]) < 0.5


def test_no_holes_over_the_pitch(
    model: PanoramaModel, maps: StitchMaps, stitched_background: np.ndarray
) -> None:
    xs, ys = np.meshgrid(np.linspace(-1.0, 106.0, 429), np.linspace(-1.0, 69.0, 281))
    pixels = pitch_to_panorama(model, np.column_stack([xs.ravel(), ys.ravel()]))
    u, v = np.round(pixels).astype(int).T
    assert np.all((u >= 0) & (u < model.width) & (v >= 0) & (v < model.height))
    assert maps.valid[v, u].all()
    assert (stitched_background[v, u].max(axis=1) > 0).all()  # no black pixel
    assert maps.valid.mean() > 0.8


def test_seam_weights(maps: StitchMaps) -> None:
    weight, left, right = maps.weight, maps.valid_left, maps.valid_right
    assert weight.dtype == np.float32 and weight.shape == left.shape
    assert (weight[left & ~right] == 1).all()
    assert (weight[right & ~left] == 0).all()
    both = left & right
    assert ((weight > 0) & (weight < 1))[both].any()
    # Along every row the left weight never rises from left to right over the seen pixels, and
    # the ramp is gradual: no step bigger than the default ramp (2 % of the width) allows.
    ramp = 0.02 * maps.model.width
    for row in range(weight.shape[0]):
        seen = weight[row][left[row] | right[row]]
        steps = np.diff(seen)
        assert (steps <= 1e-6).all()
        overlap = np.flatnonzero(both[row])
        if len(overlap) > ramp and overlap[0] < maps.seam_u < overlap[-1]:
            assert -steps.min() <= 1 / ramp + 1e-5
    # The ramp is centred on the seam where the overlap allows it (the synthetic rig is
    # symmetric: the seam is the middle column).
    assert maps.seam_u == pytest.approx((maps.model.width - 1) / 2)
    middle = weight[both[:, round(maps.seam_u)], round(maps.seam_u)]
    np.testing.assert_allclose(middle, 0.5, atol=0.05)


def test_band_covers_every_blended_pixel(maps: StitchMaps) -> None:
    blended = (maps.weight > 0) & (maps.weight < 1)
    columns = np.flatnonzero(blended.any(axis=0))
    assert maps.band_start <= columns[0] and columns[-1] < maps.band_end
    assert not (
        maps.valid_right[:, : maps.band_start] & (maps.weight[:, : maps.band_start] < 1)
    ).any()
    assert not (maps.valid_left[:, maps.band_end :] & (maps.weight[:, maps.band_end :] > 0)).any()


def test_stitch_matches_a_plain_remap_and_blend(rig: Rig, maps: StitchMaps) -> None:
    """The column split is only an optimisation: it equals warping both whole and blending."""
    rng = np.random.default_rng(5)
    left = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    whole = []
    for parts, image in (
        ((maps.left_only, maps.left_band), left),
        ((maps.right_band, maps.right_only), right),
    ):
        warped = [part.remap(image) for part in parts]
        whole.append(np.concatenate(warped, axis=1))
    # Left maps cover [0, band_end), right maps [band_start, W): pad both to the full width.
    height, width = maps.weight.shape
    full_left = np.zeros((height, width, 3), np.uint8)
    full_right = np.zeros((height, width, 3), np.uint8)
    full_left[:, : maps.band_end] = whole[0]
    full_right[:, maps.band_start :] = whole[1]
    # The native blend's arithmetic, in float32 (see tests/native/test_blend.py).
    w = np.clip(maps.weight, 0, 1)[..., None]
    mixed = w * full_left.astype(np.float32) + (np.float32(1) - w) * full_right.astype(np.float32)
    expected = (mixed + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(stitch_frame(left, right, maps), expected)


def test_wrong_frame_size_is_refused(maps: StitchMaps) -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    with pytest.raises(ValueError, match="left frame"):
        stitch_frame(frame[:-2], frame, maps)


def test_maps_build_for_a_narrower_blend(rig: Rig, model: PanoramaModel) -> None:
    narrow = build_stitch_maps(rig, model, blend_width_px=4.0)
    ramp = (narrow.weight > 0) & (narrow.weight < 1)
    assert ramp.sum(axis=1).max() <= 4
    assert math.isclose(narrow.seam_u, (model.width - 1) / 2)
