"""Inputs for the stitch kernel's tests, and the reference it is checked against.

The reference follows the kernel's contract literally: ``cv2.remap`` (INTER_LINEAR, fixed-point
maps, black border) of each frame, each camera valid where its ``map1`` lies inside its frame,
then the seam weight and the gains in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
Int16Array = npt.NDArray[np.int16]
UInt16Array = npt.NDArray[np.uint16]
Int32Array = npt.NDArray[np.int32]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
StitchArgs = tuple[
    UInt8Array,
    UInt8Array,
    Int16Array,
    UInt16Array,
    Int16Array,
    UInt16Array,
    Int32Array,
    int,
    Float32Array,
]

# Largest allowed difference, in grey levels, between two implementations of the kernel (and
# between the kernel and the float reference): rounding ties and the 16.16 fixed-point gains.
TOLERANCE = 1


@dataclass(frozen=True)
class StitchCase:
    left: UInt8Array
    right: UInt8Array
    left_map1: Int16Array
    left_map2: UInt16Array
    right_map1: Int16Array
    right_map2: UInt16Array
    seam: Int32Array
    band_half: int
    gains: Float32Array

    @property
    def args(self) -> StitchArgs:
        """The positional arguments of `native.stitch_panorama`."""
        return (
            self.left,
            self.right,
            self.left_map1,
            self.left_map2,
            self.right_map1,
            self.right_map2,
            self.seam,
            self.band_half,
            self.gains,
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        height, width = self.left_map2.shape
        return height, width, 3


def _camera_maps(
    rng: np.random.Generator,
    height: int,
    width: int,
    frame: tuple[int, int],
    first_column: float,
    last_column: float,
) -> tuple[Int16Array, UInt16Array]:
    """A smooth, rotated and curved warp of panorama columns [first, last] onto a frame, slightly
    overshooting its edges (bilinear footprints on the border), with a hole it does not see."""
    frame_h, frame_w = frame
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u = (xx - first_column) / max(last_column - first_column, 1.0)  # 0..1 across its columns
    v = yy / max(height - 1, 1)
    angle = rng.uniform(-0.15, 0.15)
    bow = rng.uniform(-0.08, 0.08)
    mx = (u * 1.04 - 0.02) * (frame_w - 1) + angle * (v - 0.5) * frame_h
    my = (v * 1.04 - 0.02 + bow * (u - 0.5) ** 2) * (frame_h - 1) - angle * (u - 0.5) * frame_w
    mx += 1.5 * np.sin(yy / 7.0 + rng.uniform(0, 6))
    my += 1.5 * np.cos(xx / 9.0 + rng.uniform(0, 6))
    # The camera does not see outside its columns, nor inside an elliptic hole.
    centre_x = first_column + (last_column - first_column) * rng.uniform()
    across = (xx - centre_x) / (0.15 * width + 1)
    down = (yy - height / 2) / (0.2 * height + 1)
    hole = across**2 + down**2
    unseen = (u < 0) | (u > 1) | (hole < 1)
    mx[unseen] = -16
    my[unseen] = -16
    map1, map2 = cv2.convertMaps(mx.astype(np.float32), my.astype(np.float32), cv2.CV_16SC2)
    return np.asarray(map1, np.int16), np.asarray(map2, np.uint16)


def make_case(
    seed: int,
    panorama: tuple[int, int] = (90, 160),
    left_frame: tuple[int, int] = (70, 110),
    right_frame: tuple[int, int] = (64, 100),
    band_half: int = 9,
    gains: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (1.1, 0.93, 1.0),
        (0.85, 1.21, 1.04),
    ),
) -> StitchCase:
    """Random frames, two overlapping warps (~25 % overlap) and a wavy seam in the overlap."""
    rng = np.random.default_rng(seed)
    height, width = panorama
    left = rng.integers(0, 256, (*left_frame, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (*right_frame, 3), dtype=np.uint8)
    left_map1, left_map2 = _camera_maps(rng, height, width, left_frame, 0, 0.62 * width)
    right_map1, right_map2 = _camera_maps(rng, height, width, right_frame, 0.38 * width, width - 1)
    rows = np.arange(height)
    seam = np.round(width / 2 + 0.06 * width * np.sin(rows / 6.0 + rng.uniform(0, 6)))
    return StitchCase(
        left=left,
        right=right,
        left_map1=left_map1,
        left_map2=left_map2,
        right_map1=right_map1,
        right_map2=right_map2,
        seam=seam.astype(np.int32),
        band_half=band_half,
        gains=np.asarray(gains, np.float32),
    )


def _warp(
    frame: UInt8Array, map1: Int16Array, map2: UInt16Array
) -> tuple[Float64Array, npt.NDArray[np.bool_]]:
    warped = cv2.remap(frame, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    height, width = frame.shape[:2]
    x, y = map1[..., 0], map1[..., 1]
    seen = (x >= 0) & (y >= 0) & (x < width) & (y < height)
    return np.asarray(warped, np.float64), seen


def reference_value(case: StitchCase) -> Float64Array:
    """The contract's value before rounding, in float64 (0 where neither camera sees)."""
    left, seen_l = _warp(case.left, case.left_map1, case.left_map2)
    right, seen_r = _warp(case.right, case.right_map1, case.right_map2)
    width = case.left_map2.shape[1]
    x = np.arange(width, dtype=np.float64)[None, :]
    seam = case.seam.astype(np.float64)[:, None]
    if case.band_half > 0:
        w = np.clip((seam + case.band_half - x) / (2 * case.band_half), 0.0, 1.0)
    else:
        w = (x < seam).astype(np.float64)
    w = np.where(seen_l & seen_r, w, np.where(seen_l, 1.0, 0.0))[..., None]
    gains = case.gains.astype(np.float64)
    value = w * gains[0] * left + (1.0 - w) * gains[1] * right
    return np.where((seen_l | seen_r)[..., None], value, 0.0)


def reference(case: StitchCase) -> UInt8Array:
    """The contract's panorama: the float value rounded half up and saturated."""
    return np.minimum(np.floor(reference_value(case) + 0.5), 255).astype(np.uint8)


def assert_close(actual: UInt8Array, expected: UInt8Array, tolerance: int = TOLERANCE) -> None:
    """Same shape and dtype, and no channel more than ``tolerance`` grey levels apart."""
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype == np.uint8
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    assert int(diff.max()) <= tolerance, (
        f"max diff {int(diff.max())} > {tolerance} at {worst}: "
        f"{int(actual[worst])} vs {int(expected[worst])}; "
        f"{int((diff > tolerance).sum())} values differ by more"
    )
