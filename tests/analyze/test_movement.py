"""Paths, distance, speeds, zones, sprints and heatmaps of one identity, on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from activities.analyze.movement import (
    ZONE_NAMES,
    count_sprints,
    heatmap,
    movement_figures,
    trajectory,
)

FPS = 25.0


def test_jitter_and_outliers_do_not_add_distance() -> None:
    rng = np.random.default_rng(1)
    frames = np.arange(0, 1500)  # a minute at 5 m/s along x: 300 m
    x = 10.0 + 5.0 * frames / FPS + rng.normal(0.0, 0.3, frames.size)
    y = 30.0 + rng.normal(0.0, 0.3, frames.size)
    x[::97] += 8.0  # bad detections
    raw = float(np.hypot(np.diff(x), np.diff(y)).sum())
    path = trajectory(frames, x, y, FPS)
    figures = movement_figures(path, FPS)
    assert raw > 400.0  # what a naive sum would report
    assert figures.distance_m == pytest.approx(300.0, rel=0.02)
    assert figures.top_speed_mps == pytest.approx(5.0, abs=0.5)
    # 5 m/s is 18 km/h: a run (14 to 20 km/h) nearly all the way.
    assert dict(zip(ZONE_NAMES, figures.zone_seconds, strict=True))["run"] == pytest.approx(
        60.0, abs=3.0
    )


def test_short_gaps_are_bridged_and_long_ones_cut() -> None:
    frames = np.concatenate([np.arange(0, 100), np.arange(150, 250), np.arange(1000, 1100)])
    x = 2.0 * frames / FPS  # 2 m/s, also through the gaps
    path = trajectory(frames, x, np.full(frames.size, 20.0), FPS)
    assert set(np.unique(path.segment)) == {0, 1}  # 150 frames of gap bridged, 750 not
    assert path.distance_m() == pytest.approx(2.0 * (249 + 99) / FPS, rel=0.01)


def test_a_frame_given_twice_is_averaged() -> None:
    path = trajectory([0, 0, 1], [1.0, 3.0, 2.0], [0.0, 0.0, 0.0], FPS)
    np.testing.assert_allclose(path.xy[0], [2.0, 0.0])


def test_sprints_need_a_second_over_25_kmh() -> None:
    speed = np.zeros(200)
    speed[10:40] = 7.5  # 1.2 s at 27 km/h: a sprint
    speed[60:70] = 8.0  # 0.4 s: not
    speed[100:130] = 7.5  # 1.2 s but broken by a missing frame below
    frames = np.arange(200)
    frames[115:] += 1
    assert count_sprints(frames, speed, FPS) == 1


def test_heatmap_counts_on_a_1m_grid_off_pitch_in_edge_cells() -> None:
    grid = heatmap(np.array([[0.5, 0.5], [104.9, 67.9], [110.0, -3.0], [52.2, 33.7]]))
    assert grid.shape == (105, 68)
    assert grid[0, 0] == 1 and grid[104, 67] == 1 and grid[104, 0] == 1 and grid[52, 33] == 1
    assert grid.sum() == 4
