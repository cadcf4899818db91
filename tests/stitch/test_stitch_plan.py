"""The frame stitcher: the OpenCV reference against the contract, and the native kernel's seat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import native
from activities.stitch import stitch_plan
from activities.stitch.maps import StitchMaps
from activities.stitch.stitch_plan import (
    StitchPlan,
    StitchPlanError,
    default_band_half,
    has_native_stitcher,
    left_weight,
    stitch_frame,
    stitch_frame_opencv,
)
from tests.stitch.helpers import naive_stitch, straight_seam

GAINS = np.array([[1.1, 0.95, 1.3], [0.9, 1.05, 0.8]], np.float32)


def wiggly_plan(maps: StitchMaps, band_half: int = 3) -> StitchPlan:
    rows = np.arange(maps.height)
    seam = np.round(maps.anchor_u + 25 * np.sin(rows / 17)).astype(np.int32)
    return StitchPlan.from_maps(maps, seam, GAINS, band_half)


def random_frames(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (360, 640, 3), dtype=np.uint8),
        rng.integers(0, 256, (360, 640, 3), dtype=np.uint8),
    )


def test_default_band_is_a_few_pixels() -> None:
    assert default_band_half(5700) == 6
    assert default_band_half(2838) == 3
    assert default_band_half(946) == 2


@pytest.mark.parametrize("band_half", [1, 3, 8])
def test_opencv_stitcher_is_the_contract_exactly(maps: StitchMaps, band_half: int) -> None:
    plan = wiggly_plan(maps, band_half)
    left, right = random_frames(band_half)
    np.testing.assert_array_equal(
        stitch_frame_opencv(left, right, plan), naive_stitch(left, right, plan)
    )


def test_weights_follow_the_seam_and_the_validity(maps: StitchMaps) -> None:
    plan = wiggly_plan(maps, 4)
    weight = left_weight(plan)
    left, right = maps.valid_left, maps.valid_right
    assert (weight[left & ~right] == 1).all()
    assert (weight[~left] == 0).all()
    both = left & right
    columns = np.arange(maps.width)[None, :]
    seam = plan.seam[:, None]
    assert (weight[both & (columns <= seam - 4)] == 1).all()
    assert (weight[both & (columns >= seam + 4)] == 0).all()
    ramp = both & (np.abs(columns - seam) < 4)
    assert ((weight[ramp] > 0) & (weight[ramp] < 1)).all()
    # On the seam itself the cameras weigh the same.
    rows = np.flatnonzero(both[np.arange(maps.height), plan.seam])
    np.testing.assert_allclose(weight[rows, plan.seam[rows]], 0.5)


def test_unit_gains_away_from_the_seam_are_a_plain_warp(maps: StitchMaps) -> None:
    plan = StitchPlan.from_maps(maps, straight_seam(maps))
    left, right = random_frames(7)
    out = stitch_frame(left, right, plan)
    np.testing.assert_array_equal(out[:, :100], maps.remap("left", left, slice(0, 100)))
    np.testing.assert_array_equal(out[:, -100:], maps.remap("right", right, slice(-100, None)))
    assert (out[~maps.valid] == 0).all()


def test_out_is_written_in_place(maps: StitchMaps) -> None:
    plan = wiggly_plan(maps)
    left, right = random_frames(3)
    out = np.full((maps.height, maps.width, 3), 7, np.uint8)
    assert stitch_frame_opencv(left, right, plan, out) is out
    np.testing.assert_array_equal(out, naive_stitch(left, right, plan))
    with pytest.raises(StitchPlanError):
        stitch_frame_opencv(left, right, plan, out[:, :-2])


def test_wrong_frames_and_plans_are_refused(maps: StitchMaps) -> None:
    plan = wiggly_plan(maps)
    frame = np.zeros((360, 640, 3), np.uint8)
    with pytest.raises(StitchPlanError, match="left frame"):
        stitch_frame(frame[:-2], frame, plan)
    with pytest.raises(StitchPlanError, match="seam"):
        StitchPlan.from_maps(maps, plan.seam[:-1])
    with pytest.raises(StitchPlanError, match="gains"):
        StitchPlan.from_maps(maps, plan.seam, np.zeros((2, 3)))
    with pytest.raises(StitchPlanError, match="band_half"):
        StitchPlan.from_maps(maps, plan.seam, band_half=0)


def test_stitch_frame_hands_the_plan_to_the_native_kernel_when_present(
    maps: StitchMaps, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = wiggly_plan(maps)
    left, right = random_frames(4)
    calls: list[dict[str, Any]] = []

    def fake(*args: Any, **kwargs: Any) -> np.ndarray:
        calls.append({"args": args, "kwargs": kwargs})
        return stitch_frame_opencv(args[0], args[1], plan)

    monkeypatch.setattr(native, "stitch_panorama", fake, raising=False)
    assert stitch_plan.has_native_stitcher()
    stitch_frame(left, right, plan)
    (call,) = calls
    assert call["args"][2] is plan.left_map1 and call["args"][6] is plan.seam
    assert call["args"][7] == plan.band_half and call["args"][8] is plan.gains
    assert call["kwargs"] == {"out": None, "threads": 0}


@pytest.mark.skipif(
    not has_native_stitcher(), reason="native.stitch_panorama is not built into this core yet"
)
@pytest.mark.parametrize("band_half", [1, 3, 8])
def test_native_kernel_agrees_with_the_opencv_reference(maps: StitchMaps, band_half: int) -> None:
    plan = wiggly_plan(maps, band_half)
    left, right = random_frames(10 + band_half)
    expected = stitch_frame_opencv(left, right, plan)
    got = native.stitch_panorama(
        left,
        right,
        plan.left_map1,
        plan.left_map2,
        plan.right_map1,
        plan.right_map2,
        plan.seam,
        plan.band_half,
        plan.gains,
        out=None,
        threads=0,
    )
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(np.int16) - expected).max() <= 1
