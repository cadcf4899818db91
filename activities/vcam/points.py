"""Where the players stand in the panorama: track points (pitch metres) as the planner's input.

The planner (`activities.vcam.plan`) works in panorama pixels only; this is the one place the
vcam stage maps the pitch into them, through the stitch stage's panorama model.
"""

from __future__ import annotations

import numpy as np

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.vcam.plan import FramePoints


def panorama_points(
    model: PanoramaModel, frame: np.ndarray, pitch_x: np.ndarray, pitch_y: np.ndarray, frames: int
) -> FramePoints:
    """Track points (pitch metres, on the ground) as panorama-pixel foot points per frame.

    Points outside ``[0, frames)`` or that do not map to a finite pixel are left out.
    """
    ground = np.column_stack(
        [pitch_x.astype(np.float64), pitch_y.astype(np.float64), np.zeros(len(frame))]
    )
    pixels = pitch_to_panorama(model, ground.reshape(-1, 3))
    frame = frame.astype(np.int64)
    keep = np.isfinite(pixels).all(axis=1) & (frame >= 0) & (frame < frames)
    return FramePoints(frame[keep].astype(np.int32), pixels[keep].astype(np.float32))
