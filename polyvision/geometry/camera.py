"""A calibrated camera in the pitch frame: pinhole intrinsics, lens distortion, pose, projection.

Conventions (OpenCV's): the world is the pitch frame of `polyvision.geometry.pitch`; a camera
maps a world point ``X`` to ``x_cam = R(rvec) @ X + tvec`` (``x`` right, ``y`` down, ``z``
forward), then through the pinhole ``camera_matrix`` and the lens ``distortion``
``(k1, k2, p1, p2, k3)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class RigError(ValueError):
    """A rig description is malformed: a missing field, a wrong shape or an unknown version."""


@dataclass(frozen=True, eq=False)
class CameraModel:
    """One calibrated camera: pinhole intrinsics, lens distortion and pose in the pitch frame.

    Attributes:
        name: The camera's key in the rig ("left" or "right").
        image_size: ``(width, height)`` in pixels.
        camera_matrix: ``[3, 3]`` intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
        distortion: ``[5]`` OpenCV lens coefficients ``(k1, k2, p1, p2, k3)``.
        rvec: ``[3]`` Rodrigues rotation, world to camera.
        tvec: ``[3]`` translation, world to camera (metres).
    """

    name: str
    image_size: tuple[int, int]
    camera_matrix: Float64Array
    distortion: Float64Array
    rvec: Float64Array
    tvec: Float64Array

    def __post_init__(self) -> None:
        # Normalise to float64 arrays of the right shape so every consumer can rely on them.
        for attr, shape in (
            ("camera_matrix", (3, 3)),
            ("distortion", (5,)),
            ("rvec", (3,)),
            ("tvec", (3,)),
        ):
            try:
                value = np.asarray(getattr(self, attr), dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise RigError(f"camera {self.name!r}: {attr} is not numeric") from error
            if value.shape != shape:
                raise RigError(f"camera {self.name!r}: {attr} must have shape {shape}")
            if not np.all(np.isfinite(value)):
                raise RigError(f"camera {self.name!r}: {attr} has non-finite values")
            object.__setattr__(self, attr, value)
        size = tuple(self.image_size)
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise RigError(f"camera {self.name!r}: image_size must be two positive integers")
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))

    @property
    def rotation(self) -> Float64Array:
        """``[3, 3]`` rotation matrix, world to camera."""
        matrix, _ = cv2.Rodrigues(self.rvec)
        return np.asarray(matrix, dtype=np.float64)

    @property
    def center(self) -> Float64Array:
        """``[3]`` position of the camera's optical centre in the pitch frame."""
        return np.asarray(-self.rotation.T @ self.tvec, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The camera as plain JSON-compatible values (without its name, which is the key)."""
        return {
            "image_size": list(self.image_size),
            "camera_matrix": self.camera_matrix.tolist(),
            "distortion": self.distortion.tolist(),
            "rvec": self.rvec.tolist(),
            "tvec": self.tvec.tolist(),
        }

    @classmethod
    def from_dict(cls, name: str, data: Any) -> CameraModel:
        """Build a camera from `to_dict`'s output.

        Raises:
            RigError: A field is missing or has the wrong shape.
        """
        if not isinstance(data, dict):
            raise RigError(f"camera {name!r} must be an object")
        fields = ("image_size", "camera_matrix", "distortion", "rvec", "tvec")
        missing = [key for key in fields if key not in data]
        if missing:
            raise RigError(f"camera {name!r}: missing field(s) {', '.join(missing)}")
        size = data["image_size"]
        if not isinstance(size, list) or len(size) != 2:
            raise RigError(f"camera {name!r}: image_size must be [width, height]")
        return cls(
            name=name,
            image_size=(size[0], size[1]),
            camera_matrix=data["camera_matrix"],
            distortion=data["distortion"],
            rvec=data["rvec"],
            tvec=data["tvec"],
        )


def _lens_limit(distortion: Float64Array) -> float:
    """Largest undistorted radius up to which the radial lens model is monotonic.

    Beyond it ``r * (1 + k1 r^2 + k2 r^4 + k3 r^6)`` turns back, and points far outside the field
    of view would land inside the image; `project` flags them instead.
    """
    k1, k2, _, _, k3 = (float(v) for v in distortion)
    # d/dr of the radial polynomial, as a cubic in u = r^2: 7 k3 u^3 + 5 k2 u^2 + 3 k1 u + 1.
    roots = np.roots([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0])
    positive = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return math.sqrt(min(positive)) if positive else math.inf


def project(camera: CameraModel, points_world: npt.ArrayLike) -> tuple[Float64Array, BoolArray]:
    """Project pitch-frame points into a camera's image.

    Args:
        camera: The camera.
        points_world: ``[N, 3]`` points in the pitch frame (metres).

    Returns:
        ``pixels [N, 2]`` (float64, pixel centres at integer coordinates) and ``in_front [N]``:
        whether the point is in front of the camera and within the lens model's valid (monotonic)
        field, i.e. whether its pixel position means anything. Pixels may lie outside the image.
    """
    points = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        return np.zeros((0, 2), np.float64), np.zeros(0, np.bool_)
    cam = points @ camera.rotation.T + camera.tvec
    depth = cam[:, 2]
    in_front = depth > 1e-6
    safe = np.where(in_front, depth, 1.0)
    radius = np.hypot(cam[:, 0] / safe, cam[:, 1] / safe)
    in_front &= radius < _lens_limit(camera.distortion)
    pixels, _ = cv2.projectPoints(
        points.reshape(-1, 1, 3), camera.rvec, camera.tvec, camera.camera_matrix, camera.distortion
    )
    return np.asarray(pixels, dtype=np.float64).reshape(-1, 2), np.asarray(in_front)


# Tight criteria (the error is measured in pixels): the default five iterations of
# undistortPoints leave centimetre errors at the edges of a wide-angle image. (OpenCV 5 folded
# undistortPointsIter into undistortPoints, which now takes the criteria.)
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-8)


def pixel_rays(camera: CameraModel, pixels: npt.ArrayLike) -> Float64Array:
    """Directions in the pitch frame of the rays through the given pixels (not normalised).

    Args:
        camera: The camera.
        pixels: ``[N, 2]`` pixel coordinates in the (distorted) image.

    Returns:
        ``[N, 3]`` ray directions; the rays start at ``camera.center``.
    """
    pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    if len(pts) == 0:
        return np.zeros((0, 3), np.float64)
    normalised = cv2.undistortPoints(
        pts, camera.camera_matrix, camera.distortion, criteria=UNDISTORT_CRITERIA
    ).reshape(-1, 2)
    rays_cam = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1)
    return np.asarray(rays_cam @ camera.rotation, dtype=np.float64)  # R^T applied to each row


def image_to_pitch(camera: CameraModel, pixels: npt.ArrayLike) -> Float64Array:
    """Where the rays through image pixels meet the ground (``z = 0``).

    Args:
        camera: The camera.
        pixels: ``[N, 2]`` pixel coordinates in the (distorted) image.

    Returns:
        ``[N, 2]`` pitch coordinates ``(x, y)`` in metres; NaN where the ray does not descend to
        the ground (at or above the horizon).
    """
    rays = pixel_rays(camera, pixels)
    center = camera.center
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = -center[2] / rays[:, 2]
    ground = center[:2] + scale[:, None] * rays[:, :2]
    ground[~(scale > 0)] = np.nan
    return np.asarray(ground, dtype=np.float64)


def look_at(center: npt.ArrayLike, target: npt.ArrayLike) -> Float64Array:
    """World-to-camera rotation of a level camera (no roll) at ``center`` looking at ``target``."""
    forward = np.asarray(target, np.float64) - np.asarray(center, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward]).astype(np.float64)
