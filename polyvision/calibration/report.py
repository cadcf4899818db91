"""Figures of a calibrated rig: each camera's orientation, the two cameras' relative pose.

Angles of a camera in the pitch frame (``x`` along the near touchline, ``y`` across the pitch,
``z`` up): ``pan`` is the heading of the optical axis on the ground, 0 looking straight across
the pitch (``+y``) and positive towards ``+x``; ``tilt`` is how far the axis points below the
horizon; ``roll`` is how far the image's ``x`` axis is raised above the horizontal (0 for a
level camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from polyvision.geometry import CameraModel


@dataclass(frozen=True)
class CameraAngles:
    """A camera's orientation in the pitch frame, degrees (see the module doc)."""

    pan_deg: float
    tilt_deg: float
    roll_deg: float


def camera_angles(camera: CameraModel) -> CameraAngles:
    """Pan, tilt and roll of a camera in the pitch frame."""
    rotation = camera.rotation
    right, axis = rotation[0], rotation[2]  # camera x and z axes in the pitch frame
    pan = math.degrees(math.atan2(axis[0], axis[1]))
    tilt = math.degrees(math.asin(float(np.clip(-axis[2], -1.0, 1.0))))
    roll = math.degrees(math.asin(float(np.clip(right[2], -1.0, 1.0))))
    return CameraAngles(pan, tilt, roll)


@dataclass(frozen=True)
class RelativePose:
    """How the second camera stands relative to the first.

    Attributes:
        first: The first camera's name.
        second: The second camera's name.
        baseline_m: Distance between the optical centres (metres).
        baseline_pitch_m: ``[3]`` second centre minus first, in the pitch frame.
        baseline_camera_m: ``[3]`` the same in the first camera's frame (x right, y down, z ahead).
        rotation_deg: Angle of the rotation from the first camera's frame to the second's.
        pan_deg: Second camera's pan minus the first's.
        tilt_deg: Second camera's tilt minus the first's.
        roll_deg: Second camera's roll minus the first's.
    """

    first: str
    second: str
    baseline_m: float
    baseline_pitch_m: tuple[float, float, float]
    baseline_camera_m: tuple[float, float, float]
    rotation_deg: float
    pan_deg: float
    tilt_deg: float
    roll_deg: float

    def summary(self) -> str:
        """One human-readable line."""
        bx, by, bz = self.baseline_pitch_m
        return (
            f"relative pose {self.second} vs {self.first}: baseline {self.baseline_m:.2f} m "
            f"(pitch frame dx={bx:+.2f} dy={by:+.2f} dz={bz:+.2f} m); rotation "
            f"{self.rotation_deg:.2f}° (pan {self.pan_deg:+.2f}°, tilt {self.tilt_deg:+.2f}°, "
            f"roll {self.roll_deg:+.2f}°)"
        )

    def to_report(self) -> dict[str, Any]:
        """JSON-compatible figures."""
        return {
            "first": self.first,
            "second": self.second,
            "baseline_m": round(self.baseline_m, 4),
            "baseline_pitch_m": [round(v, 4) for v in self.baseline_pitch_m],
            "baseline_camera_m": [round(v, 4) for v in self.baseline_camera_m],
            "rotation_deg": round(self.rotation_deg, 4),
            "pan_deg": round(self.pan_deg, 4),
            "tilt_deg": round(self.tilt_deg, 4),
            "roll_deg": round(self.roll_deg, 4),
        }


def rotation_angle_deg(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """Angle of the rotation taking rotation matrix ``a`` to ``b`` (degrees)."""
    rvec, _ = cv2.Rodrigues(np.asarray(b, np.float64) @ np.asarray(a, np.float64).T)
    return math.degrees(float(np.linalg.norm(rvec)))


def relative_pose(first: CameraModel, second: CameraModel) -> RelativePose:
    """The second camera's pose relative to the first, from both poses in the pitch frame."""
    baseline = second.center - first.center
    in_first = first.rotation @ baseline
    a, b = camera_angles(first), camera_angles(second)
    return RelativePose(
        first=first.name,
        second=second.name,
        baseline_m=float(np.linalg.norm(baseline)),
        baseline_pitch_m=(float(baseline[0]), float(baseline[1]), float(baseline[2])),
        baseline_camera_m=(float(in_first[0]), float(in_first[1]), float(in_first[2])),
        rotation_deg=rotation_angle_deg(first.rotation, second.rotation),
        pan_deg=b.pan_deg - a.pan_deg,
        tilt_deg=b.tilt_deg - a.tilt_deg,
        roll_deg=b.roll_deg - a.roll_deg,
    )


def pose_difference(a: CameraModel, b: CameraModel) -> tuple[float, float]:
    """``(rotation angle in degrees, centre distance in metres)`` between two poses."""
    return (
        rotation_angle_deg(a.rotation, b.rotation),
        float(np.linalg.norm(a.center - b.center)),
    )
