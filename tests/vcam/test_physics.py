"""The camera head's physics: bounded, dead-zoned, lag-free offline and causal live."""

from __future__ import annotations

import numpy as np
import pytest

from activities.vcam.physics import Motion, follow, smooth

FPS = 25.0
MOTION = Motion(vmax=100.0, amax=200.0, settle_s=0.5)


def _speed_and_accel(x: np.ndarray) -> tuple[float, float]:
    v = np.diff(x) * FPS
    a = np.diff(v) * FPS
    return float(np.abs(v).max()), float(np.abs(a).max())


@pytest.mark.parametrize("causal", [True, False])
def test_a_jump_is_followed_within_the_speed_and_acceleration_bounds(causal: bool) -> None:
    target = np.concatenate([np.zeros(50), np.full(200, 300.0)])
    x = smooth(target, FPS, MOTION, causal=causal)
    speed, accel = _speed_and_accel(x)
    assert speed <= MOTION.vmax * 1.001
    assert accel <= MOTION.amax * 1.001
    # It arrives, and does not overshoot by more than a pixel.
    assert abs(x[-1] - 300.0) < 1.0
    assert x.max() < 301.0 and x.min() > -1.0


def test_the_offline_camera_follows_a_steady_pan_without_lag_and_the_live_one_lags_little() -> None:
    t = np.arange(300) / FPS
    target = 40.0 * t  # well within the bounds
    offline = smooth(target, FPS, MOTION, causal=False)
    live = follow(target, FPS, MOTION)
    middle = slice(100, 200)
    assert np.abs(offline[middle] - target[middle]).max() < 0.5
    # The live spring feeds the target's velocity forward: it settles onto the ramp.
    assert np.abs(live[middle] - target[middle]).max() < 2.0


def test_the_dead_zone_keeps_the_camera_still_while_the_target_wanders_inside_it() -> None:
    rng = np.random.default_rng(3)
    target = 100.0 + rng.uniform(-5, 5, 250)
    x = follow(target, FPS, Motion(100.0, 200.0, 0.5, deadzone=10.0))
    assert np.ptp(x) == 0.0
    # Leaving the band moves it by the excess only.
    moved = follow(np.r_[100.0, np.full(249, 150.0)], FPS, Motion(100.0, 200.0, 0.5, deadzone=10.0))
    assert 139.0 < moved[-1] < 141.0


def test_the_live_camera_never_looks_ahead() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(0, 50, 200).cumsum()
    b = a.copy()
    b[120:] += 500.0
    np.testing.assert_array_equal(follow(a, FPS, MOTION)[:120], follow(b, FPS, MOTION)[:120])
    np.testing.assert_array_equal(
        smooth(a, FPS, MOTION, causal=True), smooth(a, FPS, MOTION, causal=True)
    )


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="vmax"):
        Motion(vmax=0.0, amax=1.0)
    with pytest.raises(ValueError, match="deadzone"):
        Motion(vmax=1.0, amax=1.0, deadzone=float("nan"))
