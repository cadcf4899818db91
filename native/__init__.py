"""Typed wrappers over the compiled core (`native._native`); the only public import."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from native import _native

__all__ = ["feather_blend"]


def feather_blend(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], weight: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.uint8]:
    """Blend two HxWxC uint8 images: ``round(w * a + (1 - w) * b)`` with ``w`` clamped to [0, 1].

    Raises:
        ValueError: when shapes disagree.
    """
    return _native.feather_blend(a, b, np.ascontiguousarray(weight, dtype=np.float32))
