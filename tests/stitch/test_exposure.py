"""Gains: the two cameras' exposure and white balance matched in the overlap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from activities.stitch.exposure import UNIT_GAINS, blend_gains, estimate_gains
from activities.stitch.maps import StitchMaps
from activities.stitch.stitch_plan import choose_seam_and_gains
from polyvision.geometry import Rig
from synth.render import Renderer, RenderStyle
from synth.simulation import simulate

RATIO = np.array([0.9, 1.05, 1.18])  # right / left, BGR


def textured(seed: int, shape: tuple[int, int] = (200, 300)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, (*shape, 3), dtype=np.uint8)


def test_gains_recover_a_per_channel_ratio() -> None:
    left = textured(0)
    right = np.clip(np.round(left * RATIO), 0, 255).astype(np.uint8)
    gains = estimate_gains(left, right, np.ones(left.shape[:2], bool))
    assert gains.dtype == np.float32 and gains.shape == (2, 3)
    # Matched: gains[0] * left == gains[1] * right, and the overall level is kept.
    np.testing.assert_allclose(gains[0] / gains[1], RATIO, rtol=0.005)
    np.testing.assert_allclose(gains[0] * gains[1], 1.0, rtol=1e-5)


def test_moving_saturated_and_misaligned_pixels_are_left_out() -> None:
    left = textured(1)
    right = np.clip(np.round(left * RATIO), 0, 255).astype(np.uint8)
    usable = np.ones(left.shape[:2], bool)
    # A player in one camera only, excluded by the mask...
    right[20:80, 30:60] = (20, 20, 230)
    usable[20:80, 30:60] = False
    # ...clipped highlights in both...
    left[100:120, :] = 255
    right[100:120, :] = 255
    # ...and misaligned edges the mask does not know of (a few per cent of the pixels).
    right[150:158, 100:200] = 255 - right[150:158, 100:200]
    gains = estimate_gains(left, right, usable)
    np.testing.assert_allclose(gains[0] / gains[1], RATIO, rtol=0.01)


def test_too_few_pixels_give_unit_gains() -> None:
    left = textured(2, (10, 10))
    gains = estimate_gains(left, left, np.ones((10, 10), bool))
    np.testing.assert_array_equal(gains, UNIT_GAINS)
    with pytest.raises(ValueError):
        estimate_gains(left, left[:5], np.ones((10, 10), bool))


def test_blended_gains_lie_between() -> None:
    a = np.full((2, 3), 1.2, np.float32)
    b = np.full((2, 3), 0.8, np.float32)
    mixed = blend_gains(a, b, keep=0.5)
    np.testing.assert_allclose(mixed, np.sqrt(1.2 * 0.8), rtol=1e-6)
    np.testing.assert_allclose(blend_gains(a, b, keep=0.0), a)


def test_a_chunk_recovers_a_gain_applied_to_one_camera(rig: Rig, maps: StitchMaps) -> None:
    """Both cameras exposed alike, then the right one's channels scaled: the chunk's gains undo
    exactly that ratio."""
    style = dataclasses.replace(RenderStyle(), exposure=False, sensor_noise=1.5)
    renderer = Renderer(rig, simulate(2.0, 25.0, 1).agents, seed=2, style=style)
    simulation = simulate(2.0, 25.0, 1)
    lefts, rights = [], []
    for frame in (0, 12, 24, 36, 48):
        images = renderer.render(frame, simulation)
        lefts.append(images["left"])
        scaled = np.clip(np.round(images["right"] * RATIO), 0, 255).astype(np.uint8)
        rights.append(scaled)
    choice = choose_seam_and_gains(maps, lefts, rights)
    np.testing.assert_allclose(choice.gains[0] / choice.gains[1], RATIO, rtol=0.01)
    np.testing.assert_allclose(choice.gains[0] * choice.gains[1], 1.0, rtol=1e-5)
