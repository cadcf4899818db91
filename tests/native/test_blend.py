"""The native feather blend against a NumPy reference: bit-exact, shapes checked."""

from __future__ import annotations

import numpy as np
import pytest

import native


def reference_blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    w = np.clip(weight.astype(np.float32), 0.0, 1.0)[..., None]
    v = w * a.astype(np.float32) + (np.float32(1.0) - w) * b.astype(np.float32)
    return (v + np.float32(0.5)).astype(np.uint8)


def test_matches_numpy_reference_bit_exact() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    weight = rng.uniform(-0.2, 1.2, size=(37, 53)).astype(np.float32)
    np.testing.assert_array_equal(native.feather_blend(a, b, weight), reference_blend(a, b, weight))


def test_extreme_weights_pick_one_image() -> None:
    a = np.full((4, 4, 3), 250, np.uint8)
    b = np.full((4, 4, 3), 7, np.uint8)
    assert (native.feather_blend(a, b, np.ones((4, 4), np.float32)) == 250).all()
    assert (native.feather_blend(a, b, np.zeros((4, 4), np.float32)) == 7).all()
    # Out-of-range weights are clamped, never wrapped.
    assert (native.feather_blend(a, b, np.full((4, 4), 3.0, np.float32)) == 250).all()
    assert (native.feather_blend(a, b, np.full((4, 4), -3.0, np.float32)) == 7).all()


def test_half_weight_rounds_half_up() -> None:
    a = np.full((1, 1, 1), 3, np.uint8)
    b = np.full((1, 1, 1), 0, np.uint8)
    assert native.feather_blend(a, b, np.full((1, 1), 0.5, np.float32))[0, 0, 0] == 2


def test_non_contiguous_inputs_are_accepted() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, size=(20, 40, 3), dtype=np.uint8)[:, ::2]
    b = rng.integers(0, 256, size=(20, 40, 3), dtype=np.uint8)[:, ::2]
    weight = rng.uniform(0, 1, size=(20, 20)).astype(np.float64)
    np.testing.assert_array_equal(native.feather_blend(a, b, weight), reference_blend(a, b, weight))


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "w_shape", "message"),
    [
        ((4, 4, 3), (4, 5, 3), (4, 4), "differ in shape"),
        ((4, 4, 3), (4, 4, 3), (4, 5), "weight must be HxW"),
        ((4, 4), (4, 4), (4, 4), "HxWxC"),
    ],
)
def test_shape_mismatch_is_a_clear_value_error(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], w_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        native.feather_blend(
            np.zeros(a_shape, np.uint8), np.zeros(b_shape, np.uint8), np.zeros(w_shape, np.float32)
        )
