"""Kit colour of person detections: the median CIE Lab colour of each box's torso band.

The torso band is the part of a standing person's box that shows the shirt and little else:
from 20 % to 50 % of the box's height (below the head, above the shorts) and the central 60 %
of its width (arms and the grass beside the body stay out). Each band is a small crop, converted
from BGR to Lab with OpenCV on float pixels (``L`` in 0..100, ``a`` and ``b`` about -128..127,
D65), and the per-channel median over its pixels is robust to a number, a sleeve or a strip of
grass. Far players are a few pixels wide on the panorama, so even the central band holds much
grass (and video chroma subsampling smears grass into the shirt): the background colour is
estimated from the box's side strips beside the band, and only the ``KIT_FRACTION`` of band
pixels farthest from it in chroma (``a, b``: white shorts and skin are near grey, kits are
saturated) enter the median. No kit colour is assumed, so a green kit still works as long as
it differs from the grass. Lab rather than BGR because its Euclidean distances follow perceived
colour differences and the chroma ``(a, b)`` separates kits even where lighting changes ``L``.

Only the crops are converted, not the frame: a few dozen boxes of some hundred pixels each cost
far less than converting a whole panorama.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["TORSO_BAND_X", "TORSO_BAND_Y", "torso_lab"]

TORSO_BAND_Y = (0.20, 0.50)
"""The torso band's top and bottom, as fractions of the box height from its top."""

TORSO_BAND_X = (0.20, 0.80)
"""The torso band's left and right, as fractions of the box width from its left."""

KIT_FRACTION = 0.5
"""The fraction of the band's pixels, those least like the background, that the median takes."""


def torso_lab(image_bgr: npt.NDArray[np.uint8], xyxy: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The median Lab colour of each box's torso band.

    Args:
        image_bgr: ``[H, W, 3]`` uint8 frame.
        xyxy: ``[N, 4]`` boxes ``x1, y1, x2, y2`` in the frame's pixels.

    Returns:
        ``[N, 3]`` float32 ``L, a, b``; NaN rows for boxes whose band holds no pixel inside the
        frame (degenerate, tiny or outside boxes, non-finite coordinates).
    """
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    out = np.full((len(boxes), 3), np.nan, np.float32)
    if len(boxes) == 0:
        return out
    height, width = image_bgr.shape[:2]
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    with np.errstate(invalid="ignore"):
        bands = np.column_stack(
            [
                boxes[:, 0] + TORSO_BAND_X[0] * w,
                boxes[:, 1] + TORSO_BAND_Y[0] * h,
                boxes[:, 0] + TORSO_BAND_X[1] * w,
                boxes[:, 1] + TORSO_BAND_Y[1] * h,
            ]
        )
    finite = np.isfinite(bands).all(axis=1) & (w > 0) & (h > 0)
    # Pixel ranges [x0, x1) x [y0, y1): pixels whose centre lies in the band, clipped to the frame.
    bands = np.where(finite[:, None], bands, 0.0)
    x0 = np.clip(np.round(bands[:, 0]), 0, width).astype(np.int64)
    y0 = np.clip(np.round(bands[:, 1]), 0, height).astype(np.int64)
    x1 = np.clip(np.round(bands[:, 2]), 0, width).astype(np.int64)
    y1 = np.clip(np.round(bands[:, 3]), 0, height).astype(np.int64)
    usable = np.flatnonzero(finite & (x1 > x0) & (y1 > y0))
    bx0 = np.clip(np.floor(np.where(finite, boxes[:, 0], 0)), 0, width).astype(np.int64)
    bx1 = np.clip(np.ceil(np.where(finite, boxes[:, 2], 0)), 0, width).astype(np.int64)
    for i in usable:
        band = _lab(image_bgr[y0[i] : y1[i], x0[i] : x1[i]]).reshape(-1, 3)
        # The background: the box's side strips beside the band (grass, mostly).
        left = image_bgr[y0[i] : y1[i], bx0[i] : x0[i]]
        right = image_bgr[y0[i] : y1[i], x1[i] : bx1[i]]
        sides = [_lab(s).reshape(-1, 3) for s in (left, right) if s.size]
        if sides and len(band) > 1:
            background = np.median(np.concatenate(sides), axis=0)
            distance = np.linalg.norm((band - background) * _WEIGHT, axis=1)
            band = band[distance >= np.quantile(distance, 1.0 - KIT_FRACTION)]
        out[i] = np.median(band, axis=0)
    return out


_WEIGHT = np.array([0.0, 1.0, 1.0], np.float32)


def _lab(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    lab = cv2.cvtColor(crop.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_BGR2Lab)
    return np.asarray(lab, np.float32)
