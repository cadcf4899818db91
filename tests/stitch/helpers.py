"""Helpers of the stitch tests."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from activities.stitch.maps import StitchMaps
from activities.stitch.stitch_plan import StitchPlan, left_weight


def decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(container.streams.video[0])]


def straight_seam(maps: StitchMaps) -> np.ndarray:
    """The geometric seam as a plan's seam: the anchor column in every row."""
    return np.full(maps.height, round(maps.anchor_u), np.int32)


def naive_stitch(left: np.ndarray, right: np.ndarray, plan: StitchPlan) -> np.ndarray:
    """The stitcher's contract written out plainly: both cameras warped whole, then blended."""
    warped = [
        cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).astype(
            np.float32
        )
        for image, m1, m2 in (
            (left, plan.left_map1, plan.left_map2),
            (right, plan.right_map1, plan.right_map2),
        )
    ]
    w = left_weight(plan)[..., None]
    value = w * (plan.gains[0] * warped[0]) + (np.float32(1) - w) * (plan.gains[1] * warped[1])
    return np.minimum(np.floor(value + np.float32(0.5)), 255).astype(np.uint8)
