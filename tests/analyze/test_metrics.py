"""Movement metrics: distance with jitter and identity switches, speeds, heatmap grid."""

from __future__ import annotations

import numpy as np
import pytest

from activities.analyze.metrics import distance_per_track, heatmap_grid, speeds

FPS = 25.0


def straight_run(seconds: float = 10.0, speed: float = 5.0, track: int = 7):
    """One track running along x at a constant speed: frames 0..seconds*fps inclusive."""
    frame = np.arange(round(seconds * FPS) + 1)
    x = 20.0 + speed * frame / FPS
    y = np.full(frame.size, 30.0)
    return frame, np.full(frame.size, track), x, y


def test_straight_run_distance() -> None:
    frame, track, x, y = straight_run()
    assert distance_per_track(frame, track, x, y, FPS) == {7: pytest.approx(50.0, rel=0.01)}


def test_input_order_does_not_matter() -> None:
    frame, track, x, y = straight_run()
    shuffle = np.random.default_rng(1).permutation(frame.size)
    result = distance_per_track(frame[shuffle], track[shuffle], x[shuffle], y[shuffle], FPS)
    assert result[7] == pytest.approx(50.0, rel=0.01)


@pytest.mark.parametrize("seed", range(5))
def test_jitter_is_smoothed_away(seed: int) -> None:
    frame, track, x, y = straight_run()
    rng = np.random.default_rng(seed)
    noisy_x = x + rng.uniform(-0.2, 0.2, x.size)
    noisy_y = y + rng.uniform(-0.2, 0.2, y.size)
    smoothed = distance_per_track(frame, track, noisy_x, noisy_y, FPS)[7]
    assert smoothed == pytest.approx(50.0, rel=0.05)
    # Without smoothing the same jitter inflates the distance well past that.
    raw = distance_per_track(frame, track, noisy_x, noisy_y, FPS, smooth_s=0)[7]
    assert raw > 55.0


def test_teleport_is_not_counted() -> None:
    frame, track, x, y = straight_run()
    # Halfway through, the id jumps to a player 30 m away (an identity switch).
    x = x.copy()
    x[frame.size // 2 :] += 30.0
    result = distance_per_track(frame, track, x, y, FPS)
    assert result[7] == pytest.approx(50.0, rel=0.01)


def test_tracks_are_separate_and_gaps_not_bridged() -> None:
    frame_a, track_a, x_a, y_a = straight_run(track=1)
    frame_b, track_b, x_b, y_b = straight_run(seconds=4.0, speed=2.0, track=2)
    # Track 2 unseen for 2 s in the middle: the distance over the gap is unknown.
    seen = (frame_b < 25) | (frame_b >= 75)
    result = distance_per_track(
        np.concatenate([frame_a, frame_b[seen]]),
        np.concatenate([track_a, track_b[seen]]),
        np.concatenate([x_a, x_b[seen]]),
        np.concatenate([y_a, y_b[seen]]),
        FPS,
    )
    assert result[1] == pytest.approx(50.0, rel=0.01)
    # Seen for 24 + 25 frames of steps at 2 m/s.
    assert result[2] == pytest.approx(2.0 * (24 + 25) / FPS, rel=0.01)


def test_nan_points_are_ignored() -> None:
    frame, track, x, y = straight_run()
    x = x.copy()
    x[100] = np.nan
    assert distance_per_track(frame, track, x, y, FPS)[7] == pytest.approx(50.0, rel=0.01)


def test_speeds_are_about_five() -> None:
    frame, track, x, y = straight_run()
    rng = np.random.default_rng(3)
    noisy = speeds(
        frame, track, x + rng.uniform(-0.2, 0.2, x.size), y + rng.uniform(-0.2, 0.2, y.size), FPS
    )
    clean = speeds(frame, track, x, y, FPS)
    assert clean.shape == frame.shape
    assert np.allclose(clean, 5.0)
    assert np.median(noisy) == pytest.approx(5.0, rel=0.03)
    assert np.all(np.abs(noisy - 5.0) < 1.0)


def test_speeds_have_no_spike_at_a_teleport() -> None:
    frame, track, x, y = straight_run()
    x = x.copy()
    x[frame.size // 2 :] += 30.0
    assert np.allclose(speeds(frame, track, x, y, FPS), 5.0)


def test_heatmap_counts_every_point_per_team() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.uniform(-1.0, 106.0, n)  # a few just off the pitch: counted in edge cells
    y = rng.uniform(-1.0, 69.0, n)
    team = rng.integers(-1, 2, n)
    grids = heatmap_grid(x, y, team)
    assert sorted(grids) == [-1, 0, 1]
    for value, grid in grids.items():
        assert grid.shape == (20, 16)
        assert grid.sum() == np.count_nonzero(team == value)
    assert sum(int(grid.sum()) for grid in grids.values()) == n


def test_heatmap_centre_spot() -> None:
    n = 250
    grids = heatmap_grid(np.full(n, 52.5), np.full(n, 34.0), np.zeros(n, dtype=np.int8))
    grid = grids[0]
    assert grid.sum() == n
    # The centre spot sits on the corner of the four central cells (x 9-10, y 7-8).
    ix, iy = np.unravel_index(np.argmax(grid), grid.shape)
    assert ix in (9, 10) and iy in (7, 8)
    assert grid[9:11, 7:9].sum() == n


def test_heatmap_skips_unknown_positions() -> None:
    grids = heatmap_grid([np.nan, 10.0], [5.0, 5.0], [1, 1])
    assert grids[1].sum() == 1
    assert grids[1][1, 1] == 1  # 10 m / 5.25 and 5 m / 4.25 -> cell (1, 1)
