"""What a chunk is stitched with (`StitchPlan`), how it is chosen, and the frame stitcher.

A plan is the rig's lookup tables (`activities.stitch.maps`) plus what is chosen per chunk: the
seam (one column per panorama row), the half-width of the feather band around it, and the two
cameras' gains. `choose_seam_and_gains` picks the per-chunk part from frames sampled in and
around the chunk; `stitch_frame` applies a plan to one pair of frames.

The frame stitcher's contract (the native kernel ``native.stitch_panorama`` implements exactly
this; `stitch_frame_opencv` is the reference and the fallback). For panorama pixel ``(x, y)``:

* ``L`` = bilinear sample of the left frame through the fixed-point maps (``cv2.remap``,
  ``INTER_LINEAR``, constant black border), ``R`` likewise from the right frame;
* ``valid_L`` = ``left_map1[y, x]`` has ``x >= 0`` and ``y >= 0``; ``valid_R`` likewise;
* the left weight ``w`` = ``clip((seam[y] + band_half - x) / (2 * band_half), 0, 1)`` where both
  are valid, 1 where only the left one is, 0 where only the right one is or neither;
* ``out = saturate(round(w * (gains[0] * L) + (1 - w) * (gains[1] * R)))`` per channel (BGR),
  computed in float32, rounding half up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

import native
from activities.stitch.exposure import UNIT_GAINS, blend_gains, estimate_gains
from activities.stitch.maps import StitchMaps
from activities.stitch.seam import (
    DEFAULT_WEIGHTS,
    OverlapSamples,
    SeamWeights,
    min_cost_seam,
    seam_cost,
    upsample_seam,
)

UInt8Array = npt.NDArray[np.uint8]
Int16Array = npt.NDArray[np.int16]
UInt16Array = npt.NDArray[np.uint16]
Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# Feather half-width at the reference panorama width (5700 px): a few pixels, enough to hide the
# seam's last half grey level once the gains match, too few to show a double image.
_BAND_HALF_AT_REFERENCE = 6
_REFERENCE_WIDTH = 5700
# Gains are measured again within this many band half-widths of the chosen seam, where enough
# still, seen-by-both pixels lie there.
_GAIN_REACH = 12
_MIN_SEAM_GAIN_PIXELS = 2000
# Panoramas taller than this are sampled at half resolution to choose the seam.
_FULL_RESOLUTION_MAX_HEIGHT = 1000


def default_band_half(panorama_width: int) -> int:
    """The feather's half-width for a panorama width: 6 px at 5700 px, at least 2."""
    return max(2, round(_BAND_HALF_AT_REFERENCE * panorama_width / _REFERENCE_WIDTH))


class StitchPlanError(ValueError):
    """A plan's arrays have the wrong types or shapes, or a frame is not its camera's size."""


@dataclass(frozen=True, eq=False)
class StitchPlan:
    """Everything the frame stitcher needs (see the module docstring for the exact semantics).

    Attributes:
        left_map1: ``int16 [H, W, 2]`` the left camera's integer source coordinates.
        left_map2: ``uint16 [H, W]`` its bilinear fraction indices.
        right_map1: The same for the right camera.
        right_map2: The same for the right camera.
        seam: ``int32 [H]`` the seam's column in each row.
        band_half: Half-width of the feather band, pixels (>= 1).
        gains: ``float32 [2, 3]`` BGR gains of the left (row 0) and right (row 1) camera.
        source_sizes: ``(width, height)`` of the left and right frames, checked when given.
    """

    left_map1: Int16Array
    left_map2: UInt16Array
    right_map1: Int16Array
    right_map2: UInt16Array
    seam: Int32Array
    band_half: int
    gains: Float32Array
    source_sizes: tuple[tuple[int, int], tuple[int, int]] | None = field(default=None)

    def __post_init__(self) -> None:
        height, width = self.left_map2.shape[:2] if self.left_map2.ndim == 2 else (0, 0)
        for name in ("left", "right"):
            map1, map2 = getattr(self, f"{name}_map1"), getattr(self, f"{name}_map2")
            if map1.dtype != np.int16 or map1.shape != (height, width, 2):
                raise StitchPlanError(f"{name}_map1 must be int16 [H, W, 2], got {map1.shape}")
            if map2.dtype != np.uint16 or map2.shape != (height, width):
                raise StitchPlanError(f"{name}_map2 must be uint16 [H, W], got {map2.shape}")
            if not (map1.flags.c_contiguous and map2.flags.c_contiguous):
                raise StitchPlanError(f"{name} maps must be C-contiguous")
        if self.seam.dtype != np.int32 or self.seam.shape != (height,):
            raise StitchPlanError(f"seam must be int32 [{height}], got {self.seam.shape}")
        if self.gains.dtype != np.float32 or self.gains.shape != (2, 3):
            raise StitchPlanError(f"gains must be float32 [2, 3], got {self.gains.shape}")
        if not np.isfinite(self.gains).all() or (self.gains <= 0).any():
            raise StitchPlanError("gains must be finite and positive")
        if not isinstance(self.band_half, int) or self.band_half < 1:
            raise StitchPlanError(f"band_half must be a positive int, got {self.band_half!r}")

    @classmethod
    def from_maps(
        cls,
        maps: StitchMaps,
        seam: npt.ArrayLike,
        gains: npt.ArrayLike = UNIT_GAINS,
        band_half: int | None = None,
    ) -> StitchPlan:
        """A plan over stored maps with a chunk's seam and gains (default band for the width)."""
        return cls(
            left_map1=maps.left_map1,
            left_map2=maps.left_map2,
            right_map1=maps.right_map1,
            right_map2=maps.right_map2,
            seam=np.ascontiguousarray(seam, dtype=np.int32),
            band_half=default_band_half(maps.width) if band_half is None else int(band_half),
            gains=np.ascontiguousarray(gains, dtype=np.float32),
            source_sizes=maps.source_sizes,
        )

    @property
    def height(self) -> int:
        return int(self.left_map2.shape[0])

    @property
    def width(self) -> int:
        return int(self.left_map2.shape[1])

    @cached_property
    def _opencv(self) -> _OpenCvPlan:
        return _OpenCvPlan.build(self)


def left_weight(plan: StitchPlan, columns: slice | None = None) -> Float32Array:
    """``float32 [H, w]``: the left camera's weight ``w`` of the contract over some columns."""
    start, stop, _ = (columns or slice(None)).indices(plan.width)
    x = np.arange(start, stop, dtype=np.int64)
    valid_left = _seen(plan.left_map1[:, start:stop])
    valid_right = _seen(plan.right_map1[:, start:stop])
    offset = (plan.seam.astype(np.int64)[:, None] + plan.band_half - x[None, :]).astype(np.float32)
    weight = np.clip(offset / np.float32(2 * plan.band_half), 0, 1).astype(np.float32)
    weight[valid_left & ~valid_right] = 1
    weight[~valid_left] = 0
    return np.asarray(weight, dtype=np.float32)


def _seen(map1: Int16Array) -> BoolArray:
    return np.asarray((map1[..., 0] >= 0) & (map1[..., 1] >= 0))


def _gain_lut(gains: Float32Array) -> UInt8Array:
    """``[1, 256, 3]`` table of ``saturate(round(g * v))`` in float32, per channel."""
    values = np.arange(256, dtype=np.float32)[:, None] * gains.astype(np.float32)[None, :]
    table = np.minimum(np.floor(values + np.float32(0.5)), 255).astype(np.uint8)
    return np.ascontiguousarray(table.reshape(1, 256, 3))


@dataclass(frozen=True, eq=False)
class _OpenCvPlan:
    """A plan split for `stitch_frame_opencv`: only what each camera contributes is warped.

    Columns ``[0, right_start)`` come from the left camera alone (the right one contributes
    nothing there), ``[left_end, W)`` from the right one alone, and between them both are warped;
    pixels whose weight is strictly between 0 and 1 (the feather band) are blended in float32,
    the rest of the middle takes one camera or the other.
    """

    right_start: int
    left_end: int
    left_maps: tuple[Int16Array, UInt16Array]
    right_maps: tuple[Int16Array, UInt16Array]
    left_mid_maps: tuple[Int16Array, UInt16Array]
    right_mid_maps: tuple[Int16Array, UInt16Array]
    take_left: BoolArray
    blend_index: Int64Array
    blend_weight: Float32Array
    lut_left: UInt8Array
    lut_right: UInt8Array
    gains: Float32Array

    @classmethod
    def build(cls, plan: StitchPlan) -> _OpenCvPlan:
        width = plan.width
        valid_left, valid_right = _seen(plan.left_map1), _seen(plan.right_map1)
        seam = plan.seam.astype(np.int64)
        # The left camera contributes where x < seam + band_half (both seen) and wherever it
        # alone sees; the right one where x > seam - band_half and wherever it alone sees.
        left_end = int(seam.max()) + plan.band_half if len(seam) else 0
        alone = np.flatnonzero((valid_left & ~valid_right).any(axis=0))
        if len(alone):
            left_end = max(left_end, int(alone[-1]) + 1)
        right_start = int(seam.min()) - plan.band_half + 1 if len(seam) else width
        alone = np.flatnonzero((valid_right & ~valid_left).any(axis=0))
        if len(alone):
            right_start = min(right_start, int(alone[0]))
        right_start = min(max(right_start, 0), width)
        left_end = min(max(left_end, right_start), width)

        def cut(map1: Int16Array, map2: UInt16Array, a: int, b: int) -> tuple[Any, Any]:
            return np.ascontiguousarray(map1[:, a:b]), np.ascontiguousarray(map2[:, a:b])

        weight = left_weight(plan, slice(right_start, left_end))
        blend = (weight > 0) & (weight < 1)
        return cls(
            right_start=right_start,
            left_end=left_end,
            left_maps=cut(plan.left_map1, plan.left_map2, 0, right_start),
            right_maps=cut(plan.right_map1, plan.right_map2, left_end, width),
            left_mid_maps=cut(plan.left_map1, plan.left_map2, right_start, left_end),
            right_mid_maps=cut(plan.right_map1, plan.right_map2, right_start, left_end),
            take_left=np.ascontiguousarray((weight >= 1)[..., None]),
            blend_index=np.flatnonzero(blend),
            blend_weight=weight[blend][:, None].astype(np.float32),
            lut_left=_gain_lut(plan.gains[0]),
            lut_right=_gain_lut(plan.gains[1]),
            gains=plan.gains.astype(np.float32),
        )


def _remap(image: UInt8Array, maps: tuple[Int16Array, UInt16Array]) -> UInt8Array:
    warped = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(warped, dtype=np.uint8)


def _check_frames(left: UInt8Array, right: UInt8Array, plan: StitchPlan) -> None:
    for name, frame in (("left", left), ("right", right)):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise StitchPlanError(f"{name} frame must be uint8 [h, w, 3], got {frame.shape}")
    if plan.source_sizes is not None:
        for name, frame, (w, h) in zip(
            ("left", "right"), (left, right), plan.source_sizes, strict=True
        ):
            if frame.shape != (h, w, 3):
                raise StitchPlanError(f"{name} frame is {frame.shape}, expected {(h, w, 3)}")


def stitch_frame_opencv(
    left: UInt8Array, right: UInt8Array, plan: StitchPlan, out: UInt8Array | None = None
) -> UInt8Array:
    """The frame stitcher with OpenCV and NumPy: the contract's reference (module docstring).

    Each camera is warped only over the columns it contributes to; the gains go through a
    256-entry table per channel, and only the feather band is blended in float32.
    """
    _check_frames(left, right, plan)
    split = plan._opencv
    if out is None:
        out = np.empty((plan.height, plan.width, 3), np.uint8)
    elif out.shape != (plan.height, plan.width, 3) or out.dtype != np.uint8:
        raise StitchPlanError(f"out must be uint8 {(plan.height, plan.width, 3)}")
    rs, le = split.right_start, split.left_end
    if rs > 0:
        out[:, :rs] = cv2.LUT(_remap(left, split.left_maps), split.lut_left)
    if le < plan.width:
        out[:, le:] = cv2.LUT(_remap(right, split.right_maps), split.lut_right)
    if le > rs:
        raw_left = _remap(left, split.left_mid_maps)
        raw_right = _remap(right, split.right_mid_maps)
        middle = np.where(
            split.take_left,
            cv2.LUT(raw_left, split.lut_left),
            cv2.LUT(raw_right, split.lut_right),
        )
        if len(split.blend_index):
            a = raw_left.reshape(-1, 3)[split.blend_index].astype(np.float32)
            b = raw_right.reshape(-1, 3)[split.blend_index].astype(np.float32)
            w = split.blend_weight
            value = w * (split.gains[0] * a) + (np.float32(1) - w) * (split.gains[1] * b)
            rounded = np.minimum(np.floor(value + np.float32(0.5)), np.float32(255))
            middle.reshape(-1, 3)[split.blend_index] = rounded.astype(np.uint8)
        out[:, rs:le] = middle
    return out


def has_native_stitcher() -> bool:
    """Whether the compiled core offers ``stitch_panorama`` (the fused kernel)."""
    return hasattr(native, "stitch_panorama")


def stitch_frame(
    left: UInt8Array, right: UInt8Array, plan: StitchPlan, out: UInt8Array | None = None
) -> UInt8Array:
    """Stitch one pair of synchronised frames into the panorama (contract: module docstring).

    Uses the native kernel ``native.stitch_panorama`` when the compiled core has it, else
    `stitch_frame_opencv`; the two agree within one grey level.

    Args:
        left: ``uint8 [h, w, 3]`` BGR frame of the left camera.
        right: ``uint8 [h, w, 3]`` BGR frame of the right camera.
        plan: The chunk's plan.
        out: Where to write the ``[H, W, 3]`` panorama; ``None``: a new array.

    Raises:
        StitchPlanError: A frame is not its camera's size, or ``out`` is not the panorama's.
    """
    stitch_native = getattr(native, "stitch_panorama", None)
    if stitch_native is None:
        return stitch_frame_opencv(left, right, plan, out)
    _check_frames(left, right, plan)
    result = stitch_native(
        left,
        right,
        plan.left_map1,
        plan.left_map2,
        plan.right_map1,
        plan.right_map2,
        plan.seam,
        plan.band_half,
        plan.gains,
        out=out,
        threads=0,
    )
    return np.asarray(result, dtype=np.uint8)


# --- choosing the seam and the gains of a chunk ----------------------------------------------


@dataclass(frozen=True)
class SeamChoice:
    """A chunk's seam and gains, and figures about them for its manifest.

    Attributes:
        seam: ``int32 [H]`` the seam's column per panorama row.
        gains: ``float32 [2, 3]`` BGR gains of the left and right camera.
        band_half: Half-width of the feather band, pixels.
        figures: JSON-able figures: samples used, moving share under the band, rows where the
            seam left the overlap, the seam's extent.
    """

    seam: Int32Array
    gains: Float32Array
    band_half: int
    figures: dict[str, Any]

    def plan(self, maps: StitchMaps) -> StitchPlan:
        return StitchPlan.from_maps(maps, self.seam, self.gains, self.band_half)


def overlap_samples(
    maps: StitchMaps, lefts: list[UInt8Array], rights: list[UInt8Array], band_half: int
) -> OverlapSamples:
    """Warp sampled frames into the overlap's columns (reduced 2x on tall panoramas)."""
    if not lefts or not rights:
        raise ValueError("at least one sampled frame per camera is needed")
    factor = 2 if maps.height > _FULL_RESOLUTION_MAX_HEIGHT else 1
    first, end = maps.overlap_columns
    first = max(0, first - band_half - 2)
    end = min(maps.width, end + band_half + 2)
    end = max(end, first + factor)
    end -= (end - first) % factor
    columns = slice(first, end)
    height = maps.height - maps.height % factor
    size = ((end - first) // factor, height // factor)

    def reduce(image: UInt8Array) -> UInt8Array:
        image = image[:height]
        if factor == 1:
            return np.ascontiguousarray(image)
        return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)

    left = np.stack([reduce(maps.remap("left", frame, columns)) for frame in lefts])
    right = np.stack([reduce(maps.remap("right", frame, columns)) for frame in rights])

    def reduce_mask(mask: BoolArray) -> BoolArray:
        # A reduced pixel is seen where all the pixels it covers are.
        return np.asarray(reduce(mask[:, columns].astype(np.uint8) * np.uint8(255)) == 255)

    return OverlapSamples(
        columns=(first, end),
        left=left,
        right=right,
        valid_left=reduce_mask(maps.valid_left),
        valid_right=reduce_mask(maps.valid_right),
        factor=factor,
    )


def choose_seam_and_gains(
    maps: StitchMaps,
    lefts: list[UInt8Array],
    rights: list[UInt8Array],
    *,
    band_half: int | None = None,
    prior_seam: npt.ArrayLike | None = None,
    previous_gains: npt.ArrayLike | None = None,
    weights: SeamWeights = DEFAULT_WEIGHTS,
) -> SeamChoice:
    """Choose a chunk's seam and gains from frames sampled in and around it.

    Gains first (from the overlap's background, leaving out moving pixels), then the seam of
    least cost (see `activities.stitch.seam`) with those gains, then the gains again from the
    background along the seam (within 12 band half-widths), which is where they show.

    Args:
        maps: The rig's maps.
        lefts: The left camera's BGR frames sampled from the chunk (and its surroundings).
        rights: The right camera's (the instants need not be the same).
        band_half: The feather's half-width; ``None``: `default_band_half`.
        prior_seam: ``[H]`` the seam to stay near (the previous chunk's); ``None``: the straight
            geometric seam of the maps.
        previous_gains: The previous chunk's gains, mixed in half and half; ``None``: these
            samples alone.
        weights: The seam cost's terms.

    Returns:
        The choice.
    """
    band = default_band_half(maps.width) if band_half is None else int(band_half)
    samples = overlap_samples(maps, lefts, rights, band)
    factor, (first, _) = samples.factor, samples.columns
    both = samples.both
    motion = samples.motion(weights.motion_threshold)
    still = cv2.dilate(motion, np.ones((5, 5), np.uint8)) == 0
    bg_left, bg_right = samples.background
    usable = both & still
    gains = estimate_gains(bg_left, bg_right, usable)
    rows = samples.left.shape[1]
    if prior_seam is None:
        prior_full = np.full(maps.height, maps.anchor_u, np.float64)
    else:
        prior_full = np.asarray(prior_seam, dtype=np.float64)
        if prior_full.shape != (maps.height,):
            raise ValueError(f"prior_seam must have {maps.height} rows")
    centres = factor * np.arange(rows) + (factor - 1) // 2
    prior = (prior_full[centres] - first - (factor - 1) / 2) / factor
    cost, _ = seam_cost(samples, gains, band, weights, prior, motion)
    path = min_cost_seam(cost, weights.max_step, weights.step)
    # The gains matter where the cameras meet: measured again along the seam (the cameras'
    # tone curves differ, so the overlap's sky and shadows would pull them off the grass).
    reach = max(1, round(_GAIN_REACH * band / factor))
    columns = np.arange(usable.shape[1])[None, :]
    near = np.abs(columns - path[:, None]) <= reach
    if int((usable & near).sum()) >= _MIN_SEAM_GAIN_PIXELS:
        gains = estimate_gains(bg_left, bg_right, usable & near)
    if previous_gains is not None:
        gains = blend_gains(gains, np.asarray(previous_gains, dtype=np.float32))
    seam = upsample_seam(path, factor, first, maps.height)
    seam = np.clip(seam, 0, maps.width - 1).astype(np.int32)
    figures = _seam_figures(maps, seam, band, motion, samples)
    figures["samples"] = [len(lefts), len(rights)]
    return SeamChoice(seam=seam, gains=gains, band_half=band, figures=figures)


def _seam_figures(
    maps: StitchMaps, seam: Int32Array, band: int, motion: Any, samples: OverlapSamples
) -> dict[str, Any]:
    rows = np.arange(maps.height)
    overlap_rows = maps.overlap.any(axis=1)
    inside = maps.overlap[rows, seam]
    factor, (first, _) = samples.factor, samples.columns
    reduced_rows = np.minimum(rows // factor, motion.shape[0] - 1)
    reduced_cols = np.clip((seam - first) // factor, 0, motion.shape[1] - 1)
    return {
        "seam_min": int(seam.min()),
        "seam_max": int(seam.max()),
        "rows_outside_overlap": int((overlap_rows & ~inside).sum()),
        "moving_share_on_seam": round(float(motion[reduced_rows, reduced_cols].mean()), 4),
        "band_half": band,
        "anchor_u": round(maps.anchor_u, 2),
        "mean_abs_from_anchor": round(float(np.abs(seam - maps.anchor_u).mean()), 2),
        "cost_factor": factor,
    }
