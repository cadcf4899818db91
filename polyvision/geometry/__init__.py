"""The ground floor's geometry: the pitch, a calibrated camera and its projection, the rig file.

Synth, calibration, stitch, analyze and the API all use this one module.
"""

from polyvision.geometry.camera import (
    UNDISTORT_CRITERIA,
    BoolArray,
    CameraModel,
    Float64Array,
    RigError,
    image_to_pitch,
    look_at,
    pixel_rays,
    project,
)
from polyvision.geometry.pitch import BALL_RADIUS_M, PITCH_LENGTH_M, PITCH_M, PITCH_WIDTH_M
from polyvision.geometry.rig import RIG_FRAME, RIG_VERSION, Rig

__all__ = [
    "BALL_RADIUS_M",
    "PITCH_LENGTH_M",
    "PITCH_M",
    "PITCH_WIDTH_M",
    "RIG_FRAME",
    "RIG_VERSION",
    "UNDISTORT_CRITERIA",
    "BoolArray",
    "CameraModel",
    "Float64Array",
    "Rig",
    "RigError",
    "image_to_pitch",
    "look_at",
    "pixel_rays",
    "project",
]
