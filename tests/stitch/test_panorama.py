"""The panorama model and the stitch maps against the synthetic rig's known geometry."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from activities.stitch.maps import StitchMaps, build_stitch_maps
from activities.stitch.panorama import (
    PanoramaError,
    PanoramaModel,
    panorama_model_from_rig,
    panorama_rays,
    panorama_size,
    panorama_to_pitch,
    pitch_to_panorama,
)
from activities.stitch.stitch_plan import StitchPlan, stitch_frame
from polyvision.geometry import Rig, project
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M
from synth.pitch import CENTRE_SPOT, PENALTY_SPOTS
from synth.render import Renderer, RenderStyle
from synth.rig import default_rig
from synth.simulation import simulate
from tests.stitch.helpers import straight_seam

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
def stitched_background(rig: Rig, plan: StitchPlan) -> np.ndarray:
    """The empty stadium stitched, from the clean renderer (no noise, shadows or grass pattern)."""
    renderer = Renderer(rig, simulate(0.2, 25.0, 1).agents, seed=1, style=RenderStyle.clean())
    return stitch_frame(renderer.background("left"), renderer.background("right"), plan)


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


def test_size_follows_the_reference_rig() -> None:
    # The reference: two 3856x2180 cameras give 5700x1669; H.264 4:2:0 needs even
    # sizes, so the odd height loses its last row.
    assert panorama_size(3856, 2180) == (5700, 1668)
    assert panorama_size(3072, 1728) == (4540, 1322)  # SoccerTrack: round(1.4782 * 3072) = 4541
    assert panorama_size(1920, 1080) == (2838, 826)
    assert panorama_size(3856, 2180, scale=0.5) == (2850, 834)
    with pytest.raises(PanoramaError):
        panorama_size(0, 2180)


def test_reference_rig_gives_5700_wide_panorama_filled_by_the_pitch() -> None:
    model = panorama_model_from_rig(default_rig(3856, 2180))
    assert (model.width, model.height) == (5700, 1668)
    # The pitch (and its margins) fills the panorama in one dimension: here the height, from
    # the lowest ground seen to the stand; the width holds both goals with room to spare.
    corners = pitch_to_panorama(
        model, [(0.0, 0.0), (PITCH_LENGTH_M, 0.0), (0.0, PITCH_WIDTH_M), (PITCH_LENGTH_M, 68.0)]
    )
    assert (corners[:, 0] > 0).all() and (corners[:, 0] < model.width - 1).all()
    assert (corners[:, 1] > 0).all() and (corners[:, 1] < model.height - 1).all()
    goal_span = corners[1, 0] - corners[0, 0]
    assert goal_span > 0.75 * model.width


def test_size_follows_the_source_and_scale(rig: Rig, model: PanoramaModel) -> None:
    assert (model.width, model.height) == panorama_size(640, 360) == (946, 276)
    half = panorama_model_from_rig(rig, scale=0.5)
    assert (half.width, half.height) == panorama_size(640, 360, 0.5) == (472, 138)
    assert half.focal_px == pytest.approx(model.focal_px / 2, rel=0.01)
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
    for name, valid in (("left", maps.valid_left), ("right", maps.valid_right)):
        map1, map2 = getattr(maps, f"{name}_map1"), getattr(maps, f"{name}_map2")
        assert map1.shape == (model.height, model.width, 2) and map1.dtype == np.int16
        assert map2.shape == (model.height, model.width) and map2.dtype == np.uint16
        # Unseen pixels hold -16, seen ones a coordinate inside the image.
        assert (map1[~valid] == -16).all() and (map2[~valid] == 0).all()
        xy, _ = cv2.convertMaps(map1, map2, cv2.CV_32FC2)
        vv, uu = np.nonzero(valid)
        ground = panorama_to_pitch(model, np.column_stack([uu, vv]))
        on_pitch = (
            (ground[:, 0] > -3) & (ground[:, 0] < 108) & (ground[:, 1] > -2) & (ground[:, 1] < 71)
        )
        expected, _ = project(rig.cameras[name], np.column_stack([ground, np.zeros(len(ground))]))
        error = np.abs(xy[vv, uu] - expected)[on_pitch]
        assert on_pitch.sum() > 0.3 * model.width * model.height
        # Fixed point keeps 1/32 px; the maps' grid interpolation adds thousandths.
        assert error.max() < 1 / 32 + 0.01


def test_spots_appear_where_the_model_says(rig: Rig) -> None:
    # At twice the default size, so the far penalty spots stand clear of the goal-area lines.
    model = panorama_model_from_rig(rig, scale=2.0)
    maps = build_stitch_maps(rig, model)
    renderer = Renderer(rig, simulate(0.2, 25.0, 1).agents, seed=1, style=RenderStyle.clean())
    plan = StitchPlan.from_maps(maps, straight_seam(maps))
    background = stitch_frame(renderer.background("left"), renderer.background("right"), plan)
    grey = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY).astype(np.float64)
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


def test_the_overlap_holds_the_geometric_seam(maps: StitchMaps) -> None:
    first, end = maps.overlap_columns
    assert first < maps.anchor_u < end
    # The synthetic rig is symmetric: the geometric seam is the middle column.
    assert maps.anchor_u == pytest.approx((maps.width - 1) / 2)
    anchor = round(maps.anchor_u)
    assert maps.overlap[:, anchor].mean() > 0.9
