"""The ``Tracks`` data type and foot points."""

from __future__ import annotations

import numpy as np
import pytest

from activities.track.tracks import Tracks, foot_points


def test_converts_dtypes_and_reports_length() -> None:
    t = Tracks.from_arrays([3, 1], [[0, 0, 10, 20], [5, 5, 6, 9]], [0.5, 1.0], [0, 0])
    assert len(t) == 2
    assert [t.track_id.dtype, t.xyxy.dtype, t.score.dtype, t.class_id.dtype] == [
        np.dtype(np.int32),
        np.dtype(np.float32),
        np.dtype(np.float32),
        np.dtype(np.int16),
    ]
    assert len(Tracks.empty()) == 0
    assert Tracks.from_arrays([], [], [], []).xyxy.shape == (0, 4)


@pytest.mark.parametrize(
    ("track_id", "xyxy", "message"),
    [
        ([1, 1], [[0, 0, 1, 1], [0, 0, 1, 1]], "unique"),
        ([0], [[0, 0, 1, 1]], ">= 1"),
        ([1.5], [[0, 0, 1, 1]], "int32"),
        ([1], [[2, 0, 1, 1]], "x2 >= x1"),
        ([1], [[0, 0, np.nan, 1]], "finite"),
        ([1, 2], [[0, 0, 1, 1]], "shape"),
        ([1], [[0, 0, 1]], "shape"),
    ],
)
def test_rejects_invalid(track_id: list[float], xyxy: list[list[float]], message: str) -> None:
    n = len(xyxy)
    with pytest.raises(ValueError, match=message):
        Tracks.from_arrays(track_id, xyxy, np.ones(n), np.zeros(n, np.int16))


def test_foot_points_are_bottom_centres() -> None:
    xyxy = np.array([[10, 20, 30, 100], [0, 0, 1, 1]], np.float32)
    expected = np.array([[20, 100], [0.5, 1]], np.float32)
    np.testing.assert_array_equal(foot_points(xyxy), expected)
    t = Tracks.from_arrays([1, 2], xyxy, [1, 1], [0, 0])
    np.testing.assert_array_equal(t.foot_points(), expected)
    assert foot_points(np.zeros((0, 4))).shape == (0, 2)
