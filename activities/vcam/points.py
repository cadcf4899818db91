"""Where the players and the ball are in the panorama: track points and the ball (pitch metres)
as the planner's input.

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


def ball_panorama_points(
    model: PanoramaModel,
    frame: np.ndarray,
    pitch_x: np.ndarray,
    pitch_y: np.ndarray,
    height_m: np.ndarray,
    frames: int,
) -> FramePoints:
    """The reported ball (pitch metres and its height) as panorama-pixel points per frame.

    The ball is mapped at its height, not at the grass under it: a lofted ball is seen above
    its ground point, and the camera should aim where it is seen. Rows without a finite
    position (or outside ``[0, frames)``) are left out; a missing height counts as on the grass.
    """
    height = np.nan_to_num(np.asarray(height_m, dtype=np.float64), nan=0.0)
    centre = np.column_stack(
        [np.asarray(pitch_x, dtype=np.float64), np.asarray(pitch_y, dtype=np.float64), height]
    )
    pixels = pitch_to_panorama(model, centre.reshape(-1, 3))
    frame = np.asarray(frame).astype(np.int64)
    keep = np.isfinite(pixels).all(axis=1) & (frame >= 0) & (frame < frames)
    return FramePoints(frame[keep].astype(np.int32), pixels[keep].astype(np.float32))
