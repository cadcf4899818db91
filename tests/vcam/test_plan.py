"""The "Centered" virtual-camera plan: following, smoothness, clamping, zoom, holding, storage."""

from __future__ import annotations

import numpy as np
import pytest

from activities.vcam.plan import (
    ASPECT,
    FramePoints,
    VcamParams,
    VcamPath,
    ground_quad,
    ground_quads,
    plan_centered,
    window_corners,
    window_corners_all,
)

PANO = (3648, 1100)
FPS = 25.0
PARAMS = VcamParams()
MAX_W = min(PARAMS.max_width * PANO[0], PANO[1] * ASPECT)
MIN_W = PARAMS.min_width * PANO[0]


def cluster(centres_x, centre_y=600.0, n=12, spread=150.0, noise=0.0, seed=0):
    """One [n, 2] array per frame: a fixed formation around each frame's centre, plus noise."""
    rng = np.random.default_rng(seed)
    half = rng.uniform(-spread, spread, (n // 2, 2)) * [1.0, 0.4]
    offsets = np.concatenate([half, -half])  # symmetric: mean and trimmed mean at the centre
    per_frame = []
    for cx in centres_x:
        jitter = rng.uniform(-noise, noise, (n, 2)) if noise else 0.0
        per_frame.append(offsets + np.array([cx, centre_y]) + jitter)
    return per_frame


def ramp(frames, start, stop, x0, x1):
    t = np.clip((np.arange(frames) - start) / (stop - start), 0, 1)
    return x0 + (x1 - x0) * t


def test_follows_a_fast_move_lagging_then_converging():
    # 2000 px in 2 s is faster than the pan speed limit (0.25 * 3648 = 912 px/s).
    frames = 400
    target = ramp(frames, 100, 150, 800.0, 2800.0)
    path = plan_centered(frames, cluster(target), PANO, FPS, PARAMS)
    cx = path.cx.astype(np.float64)
    assert abs(cx[0] - 800) < 1
    assert np.all(np.diff(cx) >= -1e-3)  # pans right only: no overshoot and swing back
    # Zero-phase smoothing eases in a little before the play moves, but not a second early.
    assert int(np.argmax(cx > 820)) > 100 - FPS
    assert np.max(target - cx) > 200  # it lags the fast move...
    assert abs(cx[-1] - 2800) < 2  # ...and comes to rest centred on the players
    settled = int(np.argmax(np.abs(cx - 2800) < 10))
    assert settled < 150 + 2 * FPS  # within 2 s of the players stopping


def test_speed_and_acceleration_are_bounded():
    frames = 600
    # Back and forth faster than the limits allow.
    target = 1824 + 1200 * np.sign(np.sin(np.arange(frames) / 60.0))
    path = plan_centered(frames, cluster(target), PANO, FPS, PARAMS)
    cx = path.cx.astype(np.float64)
    speed = np.abs(np.diff(cx)) * FPS
    accel = np.abs(np.diff(cx, 2)) * FPS**2
    assert speed.max() <= PARAMS.pan_speed_max * PANO[0] * 1.01
    assert accel.max() <= PARAMS.pan_accel_max * PANO[0] * 1.05
    assert speed.max() > 0.5 * PARAMS.pan_speed_max * PANO[0]  # it did pan, fast


def test_noise_is_filtered_out():
    frames = 500
    target = 1200 + 600 * np.sin(np.arange(frames) / 100.0)  # smooth play, one reversal
    noisy = cluster(target, noise=20.0, seed=1)
    path = plan_centered(frames, noisy, PANO, FPS, PARAMS)
    cx = path.cx.astype(np.float64)
    raw = np.array([pts[:, 0].mean() for pts in noisy])
    # High-frequency energy (second differences) far below the input's.
    assert np.sum(np.diff(cx, 2) ** 2) < 1e-3 * np.sum(np.diff(raw, 2) ** 2)
    # No jittery reversals: the velocity changes sign at most where the play turns.
    v = np.diff(cx)
    moving = v[np.abs(v) > 1e-3]
    assert np.count_nonzero(np.diff(np.sign(moving))) <= 2
    assert np.max(np.abs(cx - target)) < 120  # still following the play


def test_still_play_with_noise_keeps_the_camera_still():
    frames = 300
    path = plan_centered(frames, cluster(np.full(frames, 1500.0), noise=20.0), PANO, FPS)
    assert np.ptp(path.cx) < 2.0
    assert np.ptp(path.cy) < 2.0
    assert np.ptp(path.width) < 2.0


@pytest.mark.parametrize("x", [5.0, 3640.0])
def test_window_is_clamped_inside_the_panorama(x):
    frames = 100
    path = plan_centered(frames, cluster(np.full(frames, x), centre_y=1095.0), PANO, FPS)
    corners = window_corners_all(path)
    assert corners[..., 0].min() >= -1e-2
    assert corners[..., 0].max() <= PANO[0] + 1e-2
    assert corners[..., 1].min() >= -1e-2
    assert corners[..., 1].max() <= PANO[1] + 1e-2
    # Pressed against the edge the players are at.
    if x < 100:
        assert np.allclose(path.cx, path.width / 2, atol=0.5)
    else:
        assert np.allclose(path.cx, PANO[0] - path.width / 2, atol=0.5)
    assert np.allclose(path.cy, PANO[1] - path.height / 2, atol=0.5)


def test_zoom_follows_the_spread_within_bounds():
    frames = 200
    tight = plan_centered(frames, cluster(np.full(frames, 1800.0), spread=20), PANO, FPS)
    assert np.allclose(tight.width, MIN_W, rtol=1e-4)
    wide = plan_centered(frames, cluster(np.full(frames, 1800.0), spread=3000), PANO, FPS)
    assert np.allclose(wide.width, MAX_W, rtol=1e-4)
    # Two groups 1000 px apart: the window spans both plus the margin.
    groups = [np.array([[1300.0, 600.0]] * 5 + [[2300.0, 600.0]] * 5)] * frames
    mid = plan_centered(frames, groups, PANO, FPS)
    expected = 1000 * (1 + PARAMS.margin)
    assert MIN_W < expected < MAX_W
    assert np.allclose(mid.width[50:-50], expected, rtol=0.02)
    for path in (tight, wide, mid):
        assert path.width.min() >= MIN_W * (1 - 1e-5)
        assert path.width.max() <= MAX_W * (1 + 1e-5)


def test_zoom_change_is_gradual():
    frames = 400
    spread = np.where(np.arange(frames) < 150, 20.0, 3000.0)
    rng = np.random.default_rng(3)
    unit = rng.uniform(-1, 1, (12, 2)) * [1.0, 0.4]
    per_frame = [unit * s + [1824.0, 550.0] for s in spread]
    path = plan_centered(frames, per_frame, PANO, FPS, PARAMS)
    log_w = np.log(path.width.astype(np.float64))
    assert np.abs(np.diff(log_w)).max() * FPS <= PARAMS.zoom_speed_max * 1.01
    assert np.abs(np.diff(log_w, 2)).max() * FPS**2 <= PARAMS.zoom_accel_max * 1.05
    assert path.width[0] == pytest.approx(MIN_W, rel=5e-3)
    assert path.width[-1] == pytest.approx(MAX_W, rel=5e-3)


def test_frames_without_detections_hold_the_aim():
    frames = 300
    per_frame: list[np.ndarray | None] = list(cluster(np.full(frames, 1000.0)))
    for f in range(100, 200):
        per_frame[f] = None
    for f in range(40):
        per_frame[f] = np.zeros((0, 2))
    path = plan_centered(frames, per_frame, PANO, FPS)
    reference = plan_centered(frames, cluster(np.full(frames, 1000.0)), PANO, FPS)
    np.testing.assert_allclose(path.cx, reference.cx, atol=1e-3)
    np.testing.assert_allclose(path.width, reference.width, atol=1e-3)


def test_no_detections_at_all_shows_the_whole_panorama():
    path = plan_centered(50, [None] * 50, PANO, FPS)
    assert np.allclose(path.cx, PANO[0] / 2)
    assert np.allclose(path.width, MAX_W)


def test_ball_pulls_the_aim_and_stays_in_view():
    frames = 200
    players = cluster(np.full(frames, 1200.0), spread=20)
    ball = FramePoints(np.arange(frames, dtype=np.int32), np.tile([[2000.0, 600.0]], (frames, 1)))
    path = plan_centered(frames, players, PANO, FPS, ball=ball)
    mid = slice(50, 150)
    assert np.allclose(path.cx[mid], 1600, atol=30)  # halfway with ball_weight 0.5
    assert np.all(path.cx[mid] + path.width[mid] / 2 > 2000)  # ball inside the window
    # The ball alone (no players) is followed too.
    alone = plan_centered(frames, [None] * frames, PANO, FPS, ball=ball)
    assert np.allclose(alone.cx[mid], 2000, atol=5)


def test_input_layouts_agree():
    per_frame = cluster(np.linspace(900, 1500, 80), noise=5.0)
    rows = np.concatenate(
        [np.column_stack([np.full(len(p), f), p]) for f, p in enumerate(per_frame)]
    )
    shuffled = rows[np.random.default_rng(0).permutation(len(rows))]
    a = plan_centered(80, per_frame, PANO, FPS)
    b = plan_centered(80, FramePoints.from_rows(shuffled), PANO, FPS)
    np.testing.assert_allclose(a.cx, b.cx, atol=1e-3)
    np.testing.assert_allclose(a.width, b.width, rtol=1e-5)
    with pytest.raises(ValueError, match="frame 79 >= 50"):
        plan_centered(50, FramePoints.from_rows(rows), PANO, FPS)


def test_table_round_trip():
    path = plan_centered(60, cluster(np.linspace(900, 1500, 60)), PANO, FPS)
    table = path.to_table()
    assert table.column_names == ["frame", "cx", "cy", "width"]
    back = VcamPath.from_table(table.take(np.random.default_rng(0).permutation(60)))
    for name in ("cx", "cy", "width"):
        np.testing.assert_array_equal(getattr(back, name), getattr(path, name))
        assert getattr(back, name).dtype == np.float32
    with pytest.raises(ValueError, match="exactly once"):
        VcamPath.from_table(table.slice(1))


def test_window_corners_and_ground_quad():
    path = VcamPath(np.array([800.0, 1000.0]), np.array([450.0, 500.0]), np.array([1600.0, 320.0]))
    np.testing.assert_allclose(window_corners(path, 0), [[0, 0], [1600, 0], [1600, 900], [0, 900]])
    np.testing.assert_allclose(
        window_corners(path, 1), [[840, 410], [1160, 410], [1160, 590], [840, 590]]
    )
    np.testing.assert_allclose(window_corners_all(path)[1], window_corners(path, 1))
    with pytest.raises(IndexError):
        window_corners(path, 2)

    def to_pitch(points):  # 100 px per 3 m, pitch origin at panorama pixel (100, 50)
        return (points - [100.0, 50.0]) * 0.03

    quad = ground_quad(path, 1, to_pitch)
    np.testing.assert_allclose(quad, [[22.2, 10.8], [31.8, 10.8], [31.8, 16.2], [22.2, 16.2]])
    np.testing.assert_allclose(ground_quads(path, to_pitch)[1], quad)

    def to_pitch_3d(points):  # a mapping that also returns z is accepted
        return np.column_stack([to_pitch(points), np.zeros(len(points))])

    np.testing.assert_allclose(ground_quad(path, 1, to_pitch_3d), quad)
