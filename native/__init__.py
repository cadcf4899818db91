"""Typed wrappers over the compiled core (`native._native`); the only public import."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from native import _native

__all__ = [
    "cuda_available",
    "feather_blend",
    "stitch_code_path",
    "stitch_panorama",
    "stitch_panorama_cuda",
]


def feather_blend(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], weight: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.uint8]:
    """Blend two HxWxC uint8 images: ``round(w * a + (1 - w) * b)`` with ``w`` clamped to [0, 1].

    Raises:
        ValueError: when shapes disagree.
    """
    return _native.feather_blend(a, b, np.ascontiguousarray(weight, dtype=np.float32))


def stitch_panorama(
    left: npt.NDArray[np.uint8],
    right: npt.NDArray[np.uint8],
    left_map1: npt.NDArray[np.int16],
    left_map2: npt.NDArray[np.uint16],
    right_map1: npt.NDArray[np.int16],
    right_map2: npt.NDArray[np.uint16],
    seam: npt.NDArray[np.int32],
    band_half: int,
    gains: npt.ArrayLike,
    out: npt.NDArray[np.uint8] | None = None,
    threads: int = 0,
) -> npt.NDArray[np.uint8]:
    """Warp, gain-compensate and feather two BGR frames into the panorama, in one pass.

    For panorama pixel ``(x, y)``: ``L`` is the bilinear sample of ``left`` through the fixed-point
    maps (``cv2.convertMaps(..., cv2.CV_16SC2)``: ``map1`` the integer source ``(x, y)``, ``map2``
    ``(fy << 5) | fx`` in 1/32 pixel), exactly ``cv2.remap``'s ``INTER_LINEAR`` result with a black
    border; the left camera sees the pixel where ``map1``'s ``x`` and ``y`` lie inside the frame
    (``-16``: it does not). ``R`` likewise. The left weight is
    ``w = clip((seam[y] + band_half - x) / (2 * band_half), 0, 1)`` where both cameras see the
    pixel, 1 where only the left one does, 0 where only the right one does; black where neither
    does. ``out = saturate(round(w * gains[0] * L + (1 - w) * gains[1] * R))`` per BGR channel,
    in 16.16 fixed point (within one grey level of float arithmetic). ``band_half == 0`` is a hard
    seam: columns ``x < seam[y]`` take the left camera.

    Runs over row blocks on ``threads`` threads with the GIL released; the result does not depend
    on the thread count. No buffer is copied: the frames (whose rows may be strided), the maps
    and the seam are read in place and the panorama is written into ``out``.

    Args:
        left: ``uint8 [h1, w1, 3]`` left frame.
        right: ``uint8 [h2, w2, 3]`` right frame.
        left_map1: ``int16 [H, W, 2]`` C-contiguous.
        left_map2: ``uint16 [H, W]`` C-contiguous.
        right_map1: ``int16 [H, W, 2]`` C-contiguous.
        right_map2: ``uint16 [H, W]`` C-contiguous.
        seam: ``int32 [H]`` the seam's column per row.
        band_half: Half-width of the feather band, pixels, in ``[0, 65535]``.
        gains: ``float32 [2, 3]`` BGR gains of the left (row 0) and right camera, in ``[0, 16]``.
        out: ``uint8 [H, W, 3]`` to write into (rows may be strided; must not overlap an input);
            ``None``: a new array.
        threads: Threads to use; 0: all cores.

    Returns:
        ``out`` (the same object when given).

    Raises:
        ValueError: An argument has the wrong type, dtype, shape, layout or range.
    """
    return _call_stitch(
        _native.stitch_panorama,
        (left, right, left_map1, left_map2, right_map1, right_map2, seam),
        band_half,
        gains,
        out,
        threads,
    )


def _call_stitch(
    kernel: Callable[..., npt.NDArray[np.uint8]],
    frames_and_maps: tuple[npt.NDArray[Any], ...],
    band_half: int,
    gains: npt.ArrayLike,
    out: npt.NDArray[np.uint8] | None,
    threads: int,
) -> npt.NDArray[np.uint8]:
    """Call a stitch kernel (CPU or CUDA) with the scalars and gains in the types it takes."""
    return kernel(
        *frames_and_maps,
        operator.index(band_half),
        np.asarray(gains, dtype=np.float32),
        out,
        operator.index(threads),
    )


def stitch_code_path() -> str:
    """The CPU code `stitch_panorama` runs here: ``"avx2"``, ``"sse4.1"`` or ``"scalar"``.

    The fastest the CPU supports, unless the environment variable ``POLYVISION_STITCH_ISA`` names
    a slower one (``sse4.1``, ``scalar``) when the module is first used; all give the same bytes.
    """
    return _native.stitch_code_path()


@functools.cache
def _cuda_module() -> ModuleType | None:
    """The CUDA kernel's module, or None when the core was built without a CUDA toolkit."""
    try:
        from native import _native_cuda
    except ImportError:
        return None
    return _native_cuda


@functools.cache
def cuda_available() -> bool:
    """Whether `stitch_panorama_cuda` can run: the CUDA kernel was built and a device is present."""
    module = _cuda_module()
    return module is not None and int(module.device_count()) > 0


def stitch_panorama_cuda(
    left: npt.NDArray[np.uint8],
    right: npt.NDArray[np.uint8],
    left_map1: npt.NDArray[np.int16],
    left_map2: npt.NDArray[np.uint16],
    right_map1: npt.NDArray[np.int16],
    right_map2: npt.NDArray[np.uint16],
    seam: npt.NDArray[np.int32],
    band_half: int,
    gains: npt.ArrayLike,
    out: npt.NDArray[np.uint8] | None = None,
    threads: int = 0,
) -> npt.NDArray[np.uint8]:
    """`stitch_panorama` on the current CUDA device, one thread per panorama pixel.

    Same arguments, checks and integer arithmetic as the CPU kernel, so the results agree (to the
    byte by construction; tests allow one grey level). The frames, maps and seam are copied to
    the device and the panorama back inside each call; ``threads`` is accepted and ignored.

    Raises:
        ValueError: As `stitch_panorama`.
        RuntimeError: No CUDA kernel was built, no device is present, or CUDA failed.
    """
    module = _cuda_module()
    if module is None:
        raise RuntimeError("native was built without CUDA (no CUDA toolkit at build time)")
    if not cuda_available():
        raise RuntimeError("no CUDA device")
    return _call_stitch(
        module.stitch_panorama,
        (left, right, left_map1, left_map2, right_map1, right_map2, seam),
        band_half,
        gains,
        out,
        threads,
    )
