"""The camera modes on a scripted play: the Director keeps the ball in a tight view, Zones cut
with hysteresis, Centered frames the players; every path stays inside the panorama."""

from __future__ import annotations

import math

import numpy as np
import pytest

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from activities.vcam.modes import (
    CameraScene,
    ZonesParams,
    footprints,
    params_for,
    plan_camera,
    plan_zones,
    width_for_area,
)
from activities.vcam.plan import VcamPath
from activities.vcam.view import ViewGeometry, view_corners, view_extents
from evaluation.vcam import points_in_quads

FPS = 25.0
MODEL = PanoramaModel(
    width=2838,
    height=826,
    center=(52.5, -15.0, 13.0),
    heading_rad=math.pi / 2,
    focal_px=882.8,
    cu=1418.5,
    cv=-57.3,
    far_wall_y_m=78.0,
    pitch_length_m=105.0,
    pitch_width_m=68.0,
)


def _ball_path(frames: int) -> np.ndarray:
    """Dribbles, a long pass across the pitch and back towards the far touchline."""
    t = np.arange(frames) / FPS
    x = 30 + 2.0 * t + 35 * np.clip((t - 6) / 1.5, 0, 1) - 25 * np.clip((t - 12) / 2, 0, 1)
    y = 20 + 8 * np.sin(t / 2) + 30 * np.clip((t - 12) / 2, 0, 1)
    return np.column_stack([x, y])


def _scene(frames: int = 500, *, ball_seen: float = 0.8, seed: int = 0) -> CameraScene:
    rng = np.random.default_rng(seed)
    ball = _ball_path(frames)
    offsets = rng.normal(0, 10, (20, 2))
    player_frame = np.repeat(np.arange(frames), 20)
    # Players drift after the ball, lagging a second.
    lag = np.clip(np.arange(frames) - 25, 0, None)
    player_xy = (ball[lag][:, None, :] + offsets[None]).reshape(-1, 2)
    seen = rng.random(frames) < ball_seen
    frame = np.flatnonzero(seen)
    xy = ball[frame] + rng.normal(0, 0.4, (len(frame), 2))
    return CameraScene(frames, FPS, MODEL, player_frame, player_xy, frame, xy)


def _inside_panorama(path: VcamPath) -> bool:
    g = ViewGeometry.of(MODEL)
    half, top, bottom = view_extents(g, path.cy, path.width)
    return bool(
        (path.cx - half >= -0.51).all()
        and (path.cx + half <= MODEL.width - 0.49).all()
        and (top >= -0.51).all()
        and (bottom <= MODEL.height - 0.49).all()
    )


def _quads(path: VcamPath) -> np.ndarray:
    corners = view_corners(ViewGeometry.of(MODEL), path.cx, path.cy, path.width)
    return panorama_to_pitch(MODEL, corners.reshape(-1, 2)).reshape(-1, 4, 2)


@pytest.mark.parametrize("causal", [False, True])
def test_the_director_keeps_the_ball_in_a_tight_view(causal: bool) -> None:
    scene = _scene()
    path = plan_camera(scene, CameraSettings(mode="director", causal=causal))
    assert path.frames == scene.frames and _inside_panorama(path)
    ball = _ball_path(scene.frames)
    inside = points_in_quads(ball, _quads(path))
    assert inside.mean() >= (0.95 if causal else 0.99)
    area = footprints(MODEL, path.cy, path.width)
    assert np.median(area) <= 2500.0
    # It follows the ball: the view is not simply wide.
    assert np.median(area) < 0.5 * MODEL.pitch_length_m * MODEL.pitch_width_m


def test_the_director_widens_when_the_ball_is_lost_and_then_turns_to_the_players() -> None:
    scene = _scene()
    lost = (scene.ball_frame < 200) | (scene.ball_frame > 420)
    blind = CameraScene(
        scene.frames,
        FPS,
        MODEL,
        scene.player_frame,
        scene.player_xy,
        scene.ball_frame[lost],
        scene.ball_xy[lost],
    )
    seen = plan_camera(scene, CameraSettings(mode="director"))
    unseen = plan_camera(blind, CameraSettings(mode="director"))
    middle = slice(290, 330)  # more than three seconds from any sighting
    assert np.median(footprints(MODEL, unseen.cy[middle], unseen.width[middle])) > 1.3 * np.median(
        footprints(MODEL, seen.cy[middle], seen.width[middle])
    )
    players = scene.player_xy.reshape(scene.frames, 20, 2).mean(axis=1)
    assert points_in_quads(players[middle], _quads(unseen)[middle]).all()


def test_the_live_director_does_not_look_at_future_frames() -> None:
    scene = _scene(300)
    cut = 150
    early = scene.ball_frame < cut
    changed = scene.ball_xy.copy()
    changed[~early] += np.array([40.0, 0.0])
    other = CameraScene(
        scene.frames, FPS, MODEL, scene.player_frame, scene.player_xy, scene.ball_frame, changed
    )
    live = CameraSettings(mode="director", causal=True)
    a, b = plan_camera(scene, live), plan_camera(other, live)
    np.testing.assert_array_equal(a.cx[:cut], b.cx[:cut])
    np.testing.assert_array_equal(a.width[:cut], b.width[:cut])


def test_zones_cut_with_hysteresis() -> None:
    frames = 400
    t = np.arange(frames)
    third = MODEL.pitch_length_m / 3
    # The ball wanders 2 m either side of the left/centre boundary, then goes deep right.
    x = np.where(t < 250, third + 2.0 * np.sin(t / 5.0), 90.0)
    ball = np.column_stack([x, np.full(frames, 34.0)])
    scene = CameraScene(
        frames, FPS, MODEL, np.zeros(0, np.int64), np.zeros((0, 2)), t.astype(np.int64), ball
    )
    path = plan_zones(scene, ZonesParams())
    # No cut while the ball hovers within the margin: the camera holds one shot.
    assert np.ptp(path.cx[30:200]) < 1.0  # (offline, the cut at 250 is anticipated)
    # Deep in the right third, it cuts to the right shot (centre of the right third).
    right = np.array([[5 * MODEL.pitch_length_m / 6, 34.0]])
    assert points_in_quads(right, _quads(path)[-1:]).all()
    assert path.cx[-1] > path.cx[200] + 300


def test_every_mode_is_deterministic_inside_the_panorama_and_copes_with_an_empty_scene() -> None:
    scene = _scene(200)
    empty = CameraScene(
        50,
        FPS,
        MODEL,
        np.zeros(0, np.int64),
        np.zeros((0, 2)),
        np.zeros(0, np.int64),
        np.zeros((0, 2)),
    )
    for mode in CAMERA_MODES:
        a = plan_camera(scene, CameraSettings(mode=mode))
        b = plan_camera(scene, CameraSettings(mode=mode))
        np.testing.assert_array_equal(a.cx, b.cx)
        assert _inside_panorama(a)
        idle = plan_camera(empty, CameraSettings(mode=mode))
        assert idle.frames == 50 and _inside_panorama(idle)


def test_width_for_area_hits_the_area() -> None:
    cy = np.array([150.0, 300.0, 600.0])
    width = width_for_area(MODEL, cy, np.array([800.0, 1500.0, 2500.0]))
    np.testing.assert_allclose(footprints(MODEL, cy, width), [800.0, 1500.0, 2500.0], rtol=1e-3)


def test_parameters_are_checked() -> None:
    assert params_for("director", {"area_m2": 1200}).area_m2 == 1200.0  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown camera mode"):
        params_for("orbit")
    with pytest.raises(ValueError, match="unknown parameter 'zoom'"):
        params_for("zones", {"zoom": 1.0})
    with pytest.raises(ValueError, match="finite"):
        params_for("centered", {"margin": float("inf")})
    with pytest.raises(ValueError, match="finite"):
        params_for("director", {"area_m2": -5})
