"""Gain and white-balance compensation between the two cameras, measured in their overlap.

Two cameras never expose alike: the same grass is a little brighter, or warmer, in one of them,
and a seam then shows as a brightness step. Where both cameras see the same static surface their
pixels should agree, so per colour channel ``c``::

    gains[0, c] * left_c  ~  gains[1, c] * right_c

over the overlap's pixels that are neither moving (players), saturated nor too dark, and that
agree in their channel ratios (misaligned pixels -- parallax off the ground -- are dropped by a
robust cut on the per-pixel ratio). The ratio ``r_c`` is the ratio of the sums of the kept pixels
(the least-squares fit of ``right = r * left`` weighted by intensity), and the gains split it
evenly, ``gains[0, c] = sqrt(r_c)``, ``gains[1, c] = 1 / sqrt(r_c)``, so the panorama keeps the
cameras' overall level (their geometric mean) and only their difference is removed.

Per chunk the gains come from frames sampled in and around the chunk, so consecutive chunks share
samples and their gains move smoothly; `blend_gains` smooths further across chunks when the
previous chunk's gains are at hand.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

UNIT_GAINS: Float32Array = np.ones((2, 3), np.float32)
"""No compensation: both cameras as recorded."""

# Channel values outside [_DARK, _BRIGHT] in either camera say little about the gain (noise,
# clipping) and are left out.
_DARK = 16
_BRIGHT = 240
# Pixels whose log ratio is further than this from the median are misaligned, not exposed
# differently (a 15 % difference in one channel is far more than any exposure mismatch here).
_RATIO_CUT = 0.15
# Fewer usable pixels than this: no estimate (unit gains).
_MIN_PIXELS = 500
# The correction is bounded: a camera more than twice as bright as the other is a fault to fix
# at the camera, not in the stitch.
_MAX_RATIO = 4.0


def estimate_gains(left: UInt8Array, right: UInt8Array, usable: BoolArray) -> Float32Array:
    """Per-camera BGR gains that make the two cameras agree on the usable pixels.

    Args:
        left: ``uint8 [..., 3]`` the left camera's pixels (e.g. a background of the overlap).
        right: ``uint8 [..., 3]`` the right camera's pixels at the same panorama positions.
        usable: ``[...]`` pixels both cameras see and nothing moves on.

    Returns:
        ``float32 [2, 3]``: row 0 the left camera's gains, row 1 the right camera's, BGR; unit
        gains where too few pixels are usable.
    """
    if left.shape != right.shape or left.shape[:-1] != usable.shape or left.shape[-1] != 3:
        raise ValueError(f"shapes differ: {left.shape}, {right.shape}, {usable.shape}")
    lo, hi = np.minimum(left, right).min(axis=-1), np.maximum(left, right).max(axis=-1)
    keep = usable & (lo >= _DARK) & (hi <= _BRIGHT)
    if int(keep.sum()) < _MIN_PIXELS:
        return UNIT_GAINS.copy()
    a = left[keep].astype(np.float64)
    b = right[keep].astype(np.float64)
    log_ratio = np.log(b / a)
    agree = (np.abs(log_ratio - np.median(log_ratio, axis=0)) <= _RATIO_CUT).all(axis=1)
    if int(agree.sum()) < _MIN_PIXELS:
        return UNIT_GAINS.copy()
    ratio = b[agree].sum(axis=0) / a[agree].sum(axis=0)
    ratio = np.clip(ratio, 1 / _MAX_RATIO, _MAX_RATIO)
    gains = np.stack([np.sqrt(ratio), 1 / np.sqrt(ratio)])
    return np.asarray(gains, dtype=np.float32)


def blend_gains(current: Float32Array, previous: Float32Array, keep: float = 0.5) -> Float32Array:
    """Gains smoothed across chunks: the geometric mix ``previous^keep * current^(1 - keep)``."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    mixed = np.exp(keep * np.log(previous) + (1 - keep) * np.log(current))
    return np.asarray(mixed, dtype=np.float32)
