"""Calibration of a real camera rig: checkerboards, pitch keypoints and features to a ``rig.json``.

`lens` fits each camera's lens to checkerboard photos (standard and fisheye models), `cvat` reads
pitch keypoints annotated in CVAT, `pose` fits a camera's pose to them robustly (RANSAC, with a
homography cross-check), `keypoints` handles label conventions and refines the lens on the
keypoints, `alignment` places a camera without keypoints by features matched with its
neighbour, `report` derives the rig's relative pose, and `rig_calibration` runs it all for
``polyvision rig calibrate``; `soccertrack` builds the SoccerTrack recording's rig from its
published calibration files.
"""

from polyvision.calibration.errors import (
    BoardNotFoundError,
    CalibrationError,
    CvatError,
    DegenerateGeometryError,
    TooFewPointsError,
)

__all__ = [
    "BoardNotFoundError",
    "CalibrationError",
    "CvatError",
    "DegenerateGeometryError",
    "TooFewPointsError",
]
