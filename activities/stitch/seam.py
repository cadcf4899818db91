"""Where the seam runs: a minimum-cost path through the overlap, one column per panorama row.

The seam is chosen per chunk from a few frames sampled in and around the chunk, warped into the
overlap of the two cameras (`OverlapSamples`). Its cost (`seam_cost`) adds up, per pixel:

* the disagreement of the two cameras' backgrounds (per-pixel temporal medians of the samples,
  after exposure compensation), box-filtered over the feather band: low on grass and painted
  lines (the ground is exact in both cameras), high where parallax misaligns things off the
  ground (the stand, standing players);
* a large penalty on moving pixels: the share of samples in which a pixel differs from its
  camera's background in either camera, widened by the feather band, so the band avoids the
  players seen moving in the chunk;
* a small penalty per column away from a prior seam (the previous chunk's, or the geometric
  middle): consecutive chunks keep their seam where nothing tells it to move;
* an effectively infinite cost where the two cameras do not both see the pixel, or where the
  feather band would leave the overlap.

`min_cost_seam` finds the path of least total cost by dynamic programming: the column changes by
at most ``max_step`` per row, each column of change costing ``step_cost``; ties go to the
straighter path, then to the leftmost column, so the result depends only on its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
Int32Array = npt.NDArray[np.int32]

OUTSIDE_COST = 1.0e6
"""Cost of a seam pixel where the two cameras do not both see: never chosen while any other path
exists (a row's total stays far below it)."""


@dataclass(frozen=True)
class SeamWeights:
    """The terms of the seam's cost, in grey levels per row.

    Attributes:
        motion: Cost of a pixel that moves in every sample (scaled by the share of samples).
        motion_threshold: Difference from a camera's background (max over channels, grey
            levels) above which a pixel counts as moving in a sample.
        prior: Cost per column away from the prior seam, per row.
        step: Cost per column the seam moves from one row to the next.
        max_step: Largest change of column from one row to the next.
        smooth_px: Side of the box filter applied to the disagreement (panorama pixels).
    """

    motion: float = 400.0
    motion_threshold: float = 20.0
    prior: float = 0.05
    step: float = 0.5
    max_step: int = 2
    smooth_px: int = 5


DEFAULT_WEIGHTS = SeamWeights()


@dataclass(frozen=True, eq=False)
class OverlapSamples:
    """Frames sampled from a chunk, warped into the panorama columns around the overlap.

    Attributes:
        columns: ``(first, end)``: the panorama columns the arrays cover.
        left: ``uint8 [K, H, w, 3]`` the left camera's warped samples.
        right: ``uint8 [K', H, w, 3]`` the right camera's (not necessarily the same instants).
        valid_left: ``[H, w]`` where the left camera sees.
        valid_right: ``[H, w]`` where the right camera sees.
        factor: Panorama pixels per array pixel (the arrays may be reduced for speed).
    """

    columns: tuple[int, int]
    left: UInt8Array
    right: UInt8Array
    valid_left: BoolArray
    valid_right: BoolArray
    factor: int = 1

    @property
    def both(self) -> BoolArray:
        return np.asarray(self.valid_left & self.valid_right)

    @cached_property
    def background(self) -> tuple[UInt8Array, UInt8Array]:
        """Each camera's per-pixel temporal median of the samples (the lower median if even)."""
        return _median(self.left), _median(self.right)

    def motion(self, threshold: float) -> Float32Array:
        """``[H, w]`` share of samples in which the pixel differs from its camera's background by
        more than ``threshold`` (max over channels); the larger of the two cameras' shares."""
        background = self.background
        shares = []
        for stack, bg, valid in (
            (self.left, background[0], self.valid_left),
            (self.right, background[1], self.valid_right),
        ):
            moving = np.zeros(stack.shape[1:3], np.float32)
            for sample in stack:
                moving += (cv2.absdiff(sample, bg).max(axis=2) > threshold) & valid
            shares.append(moving / len(stack))
        return np.maximum(shares[0], shares[1]).astype(np.float32)


def _median(stack: UInt8Array) -> UInt8Array:
    if len(stack) == 1:
        return np.asarray(stack[0])
    middle = (len(stack) - 1) // 2
    return np.asarray(np.partition(stack, middle, axis=0)[middle])


def seam_cost(
    samples: OverlapSamples,
    gains: Float32Array,
    band_half: int,
    weights: SeamWeights = DEFAULT_WEIGHTS,
    prior: Float64Array | None = None,
    motion: Float32Array | None = None,
) -> tuple[Float64Array, Float32Array]:
    """The cost of every pixel of the sampled columns as a seam pixel (see the module docstring).

    Args:
        samples: The warped samples.
        gains: ``[2, 3]`` per-camera BGR gains applied before comparing the cameras.
        band_half: Half-width of the feather band in panorama pixels.
        weights: The cost's terms.
        prior: ``[H]`` prior seam in the arrays' columns (``None``: no prior term).
        motion: ``samples.motion(weights.motion_threshold)`` if already at hand.

    Returns:
        ``float64 [H, w]`` cost, and the ``[H, w]`` motion share it penalised (before widening).
    """
    band = max(1, -(-band_half // samples.factor))
    bg_left, bg_right = samples.background
    left = bg_left.astype(np.float32) * gains[0].astype(np.float32)
    right = bg_right.astype(np.float32) * gains[1].astype(np.float32)
    disagreement = np.abs(left - right).mean(axis=2)
    size = max(1, weights.smooth_px // samples.factor) | 1
    disagreement = cv2.blur(disagreement, (max(size, 2 * band + 1), size))
    if motion is None:
        motion = samples.motion(weights.motion_threshold)
    # The band reaches band_half either side of the seam: a seam pixel that close to a moving
    # one would feather it. Grow the motion by the band (and a little more vertically).
    kernel = np.ones((3, 2 * band + 3), np.uint8)
    widened = cv2.dilate(motion, kernel)
    cost = disagreement.astype(np.float64) + weights.motion * widened.astype(np.float64)
    both = samples.both
    # Keep the whole band inside the overlap where the overlap is wide enough for it.
    inner = np.asarray(
        cv2.erode(both.astype(np.uint8), np.ones((1, 2 * band + 1), np.uint8)), dtype=np.bool_
    )
    rows_with_inner: BoolArray = np.asarray(inner.any(axis=1))
    allowed = np.where(rows_with_inner[:, None], inner, both)
    cost[~allowed] = OUTSIDE_COST
    # Rows where the cameras do not overlap: the seam does not matter there; only the prior
    # holds it (cost 0 otherwise), so it neither wanders nor blocks the rows around.
    cost[~both.any(axis=1)] = 0.0
    if prior is not None:
        columns = np.arange(cost.shape[1], dtype=np.float64)
        cost += weights.prior * samples.factor * np.abs(columns[None, :] - prior[:, None])
    return cost, motion


def min_cost_seam(cost: Float64Array, max_step: int = 2, step_cost: float = 0.5) -> Int32Array:
    """The column of each row of the path of least total cost, top to bottom.

    Args:
        cost: ``[H, w]`` cost of each pixel as a path pixel.
        max_step: Largest change of column between consecutive rows (>= 1).
        step_cost: Cost added per column of change between consecutive rows.

    Returns:
        ``int32 [H]`` column of the path in each row.
    """
    if max_step < 1:
        raise ValueError(f"max_step must be at least 1, got {max_step}")
    height, width = cost.shape
    # Straight first, then nearer moves: with strict improvements only, ties keep the earlier.
    offsets = [0]
    for step in range(1, max_step + 1):
        offsets += [-step, step]
    total = np.asarray(cost[0], dtype=np.float64).copy()
    back = np.zeros((height, width), np.int8)
    best = np.empty(width, np.float64)
    candidate = np.empty(width, np.float64)
    for row in range(1, height):
        best.fill(np.inf)
        choice = back[row]
        for offset in offsets:
            # Column x of this row continues column x + offset of the previous row.
            candidate.fill(np.inf)
            if offset >= 0:
                candidate[: width - offset] = total[offset:]
            else:
                candidate[-offset:] = total[: width + offset]
            candidate += step_cost * abs(offset)
            better = candidate < best
            best[better] = candidate[better]
            choice[better] = offset
        total = best + cost[row]
    path = np.empty(height, np.int32)
    column = int(np.argmin(total))
    path[-1] = column
    for row in range(height - 1, 0, -1):
        column += int(back[row, column])
        path[row - 1] = column
    return path


def upsample_seam(path: Int32Array, factor: int, first_column: int, height: int) -> Int32Array:
    """A seam found on arrays reduced by ``factor`` as panorama columns for ``height`` rows.

    Row ``r`` of the reduced arrays covers panorama rows ``[f r, f r + f)`` and its column ``c``
    panorama columns ``[f c, f c + f)``; the seam goes through the centres and is interpolated
    linearly between rows, so its slope stays that of the reduced path.
    """
    if factor == 1:
        return np.asarray(path + first_column, dtype=np.int32)
    centres = factor * np.arange(len(path), dtype=np.float64) + (factor - 1) / 2
    columns = factor * path.astype(np.float64) + (factor - 1) / 2
    rows = np.arange(height, dtype=np.float64)
    full = np.interp(rows, centres, columns)
    return np.asarray(np.floor(full + 0.5) + first_column, dtype=np.int32)
