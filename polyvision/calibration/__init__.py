"""Calibration of a real camera rig: pitch keypoints annotated in CVAT to a ``rig.json``.

`cvat` reads the point annotations, `pose` fits one camera's pose to them robustly (with a
homography cross-check), and `soccertrack` builds the SoccerTrack recording's two-camera rig.
"""

from polyvision.calibration.errors import CalibrationError, CvatError

__all__ = ["CalibrationError", "CvatError"]
