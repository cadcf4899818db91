"""The virtual two-camera rig of the synthetic match and its ``rig.json`` file.

Two static cameras stand side by side behind the halfway line, beyond the near touchline, each
seeing a little more than half of the pitch; their views overlap around the centre line, as in a
real rig such as SoccerTrack's. The stitch stage reads ``rig.json`` (written by `Rig.save`) to know
where each camera is, so the file is versioned and validated on load.

Conventions (OpenCV's): the world is the pitch frame of `polyvision.synth.types` (metres, origin
at the near-left corner, ``x`` along the near touchline, ``y`` towards the far touchline, ``z``
up); a camera maps a world point ``X`` to ``x_cam = R(rvec) @ X + tvec`` (``x`` right, ``y`` down,
``z`` forward), then through the pinhole ``camera_matrix`` and the lens ``distortion``
``(k1, k2, p1, p2, k3)``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.synth.types import PITCH_LENGTH_M, PITCH_WIDTH_M

RIG_VERSION = 1
RIG_FRAME = (
    "pitch frame: metres; origin at the corner of the near touchline and the left goal line; "
    "x along the near touchline (0..length), y towards the far touchline (0..width), z up; "
    "cameras beyond the near touchline (y < 0); pose is OpenCV's, "
    "x_cam = Rodrigues(rvec) @ X_world + tvec"
)

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Radial distortion of the default lenses: moderate barrel distortion like a wide-angle sports
# camera. k2 > 0 keeps r * (1 + k1 r^2 + k2 r^4) monotonic for every r, so no point outside the
# field of view can fold back into the image.
DEFAULT_DISTORTION = (-0.15, 0.012, 0.0, 0.0, 0.0)


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


@dataclass(frozen=True)
class Rig:
    """The cameras filming the pitch, as stored in ``rig.json``.

    Attributes:
        version: Format version of ``rig.json``; only `RIG_VERSION` is understood.
        pitch_length_m: Length of the pitch along ``x``.
        pitch_width_m: Width of the pitch along ``y``.
        cameras: The cameras by name; a match rig has "left" and "right".
    """

    version: int
    pitch_length_m: float
    pitch_width_m: float
    cameras: dict[str, CameraModel]

    def __post_init__(self) -> None:
        if self.version != RIG_VERSION:
            raise RigError(f"unknown rig version {self.version!r} (expected {RIG_VERSION})")
        if not (self.pitch_length_m > 0 and self.pitch_width_m > 0):
            raise RigError("pitch dimensions must be positive")
        for required in ("left", "right"):
            if required not in self.cameras:
                raise RigError(f"rig has no {required!r} camera")
        for key, camera in self.cameras.items():
            if camera.name != key:
                raise RigError(f"camera keyed {key!r} is named {camera.name!r}")

    def to_json(self) -> str:
        """The rig as the text of ``rig.json``."""
        document = {
            "version": self.version,
            "frame": RIG_FRAME,
            "pitch_length_m": self.pitch_length_m,
            "pitch_width_m": self.pitch_width_m,
            "cameras": {name: camera.to_dict() for name, camera in self.cameras.items()},
        }
        return json.dumps(document, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Rig:
        """Parse and validate the text of ``rig.json``.

        Raises:
            RigError: The text is not JSON, a field is missing or malformed, or the version is
                unknown.
        """
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise RigError(f"rig.json is not valid JSON: {error}") from error
        if not isinstance(document, dict):
            raise RigError("rig.json must hold an object")
        missing = [
            key
            for key in ("version", "frame", "pitch_length_m", "pitch_width_m", "cameras")
            if key not in document
        ]
        if missing:
            raise RigError(f"rig.json: missing field(s) {', '.join(missing)}")
        # Check the version before anything else so a future format fails with a clear message.
        version = document["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version != RIG_VERSION:
            raise RigError(f"unknown rig version {version!r} (expected {RIG_VERSION})")
        cameras = document["cameras"]
        if not isinstance(cameras, dict):
            raise RigError("rig.json: cameras must be an object keyed by camera name")
        try:
            length = float(document["pitch_length_m"])
            width = float(document["pitch_width_m"])
        except (TypeError, ValueError) as error:
            raise RigError("rig.json: pitch dimensions must be numbers") from error
        return cls(
            version=version,
            pitch_length_m=length,
            pitch_width_m=width,
            cameras={name: CameraModel.from_dict(name, data) for name, data in cameras.items()},
        )

    def save(self, path: str | Path) -> None:
        """Write ``rig.json`` to ``path``."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Rig:
        """Read and validate ``rig.json`` from ``path``.

        Raises:
            RigError: The file's content is malformed (see `from_json`).
        """
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


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


# Where the default cameras stand: side by side, 1 m either side of the halfway line, behind the
# near touchline and raised above a stand.
_DEFAULT_CENTER_LEFT = (PITCH_LENGTH_M / 2 - 1.0, -15.0, 13.0)
# What each camera must see, beyond the half pitch itself: past the goal line, past the halfway
# line (the overlap), beyond both touchlines, and the heads of players standing on the far line.
_COVER_X = (-2.0, PITCH_LENGTH_M / 2 + 3.0)
_COVER_Y = (-1.5, PITCH_WIDTH_M + 1.5)
_COVER_HEAD_M = 2.5
# Part of the image kept free around the covered area, as a fraction of each dimension.
_IMAGE_MARGIN = 0.02


def _coverage_points(mirror: bool) -> Float64Array:
    xs, ys = _COVER_X, _COVER_Y
    points = [(x, y, z) for x in xs for y in ys for z in (0.0, _COVER_HEAD_M)]
    # The middle of the near touchline bulges towards the bottom of a distorted image.
    points += [((xs[0] + xs[1]) / 2, ys[0], 0.0), ((xs[0] + xs[1]) / 2, ys[1], _COVER_HEAD_M)]
    array = np.asarray(points, np.float64)
    if mirror:
        array[:, 0] = PITCH_LENGTH_M - array[:, 0]
    return array


def _distorted_normalised(
    rotations: Float64Array, center: Float64Array, points: Float64Array, distortion: Float64Array
) -> tuple[Float64Array, Float64Array, BoolArray]:
    """Normalised distorted image coordinates of ``points`` for a batch of rotations ``[B,3,3]``."""
    cam = np.einsum("bij,nj->bni", rotations, points - center)
    depth = cam[..., 2]
    ok = np.all(depth > 0.1, axis=1)
    x = cam[..., 0] / np.where(depth > 0.1, depth, 1.0)
    y = cam[..., 1] / np.where(depth > 0.1, depth, 1.0)
    r2 = x * x + y * y
    k1, k2, _, _, k3 = distortion
    factor = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    return x * factor, y * factor, ok


@functools.lru_cache(maxsize=16)
def _design_left(width: int, height: int) -> tuple[Float64Array, float]:
    """Aim and focal length of the default left camera for an image size.

    Searches the aim (yaw, pitch; no roll) that lets the largest focal length fit every coverage
    point inside the image with the principal point at the centre; the right camera is its mirror.
    """
    center = np.asarray(_DEFAULT_CENTER_LEFT)
    distortion = np.asarray(DEFAULT_DISTORTION)
    points = _coverage_points(mirror=False)
    half_w = width / 2 * (1 - 2 * _IMAGE_MARGIN)
    half_h = height / 2 * (1 - 2 * _IMAGE_MARGIN)

    def best(yaws: Float64Array, pitches: Float64Array) -> tuple[float, float, float]:
        yaw, pitch = (g.ravel() for g in np.meshgrid(yaws, pitches, indexing="ij"))
        forward = np.stack(
            [np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), -np.sin(pitch)], axis=1
        )
        right = np.stack([np.cos(yaw), -np.sin(yaw), np.zeros_like(yaw)], axis=1)
        down = np.cross(forward, right)
        rotations = np.stack([right, down, forward], axis=1)
        xd, yd, ok = _distorted_normalised(rotations, center, points, distortion)
        focal = np.minimum(half_w / np.abs(xd).max(axis=1), half_h / np.abs(yd).max(axis=1))
        focal[~ok] = 0.0
        i = int(np.argmax(focal))
        return float(yaw[i]), float(pitch[i]), float(focal[i])

    # Coarse then fine grid: deterministic, and fast enough to run for every image size.
    yaw, pitch, _ = best(np.radians(np.arange(-80.0, 0.01, 0.5)), np.radians(np.arange(5, 60, 0.5)))
    step = math.radians(0.5)
    yaw, pitch, focal = best(
        np.linspace(yaw - step, yaw + step, 41), np.linspace(pitch - step, pitch + step, 41)
    )
    forward = np.array([math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch)])
    target = center + np.array([forward[0], forward[1], -math.sin(pitch)])
    return target, focal


def default_rig(width: int = 1920, height: int = 1080) -> Rig:
    """The synthetic match's rig: two cameras side by side behind the halfway line.

    The left camera sees from behind the left goal line to a few metres past the halfway line,
    the right camera is its mirror image about the halfway line; both include both touchlines
    and the heads of players on the far touchline. The focal length is the largest that fits that
    area (with a 2 % margin) into the image, so the rig works for any image size.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.

    Returns:
        The rig, cameras "left" and "right".
    """
    if width <= 0 or height <= 0:
        raise ValueError("image size must be positive")
    target, focal = _design_left(width, height)
    matrix = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    cameras = {}
    for name, mirror in (("left", False), ("right", True)):
        center = np.array(_DEFAULT_CENTER_LEFT, np.float64)
        aim = np.array(target, np.float64)
        if mirror:
            center[0] = PITCH_LENGTH_M - center[0]
            aim[0] = PITCH_LENGTH_M - aim[0]
        rotation = look_at(center, aim)
        rvec, _ = cv2.Rodrigues(rotation)
        cameras[name] = CameraModel(
            name=name,
            image_size=(width, height),
            camera_matrix=matrix.copy(),
            distortion=np.asarray(DEFAULT_DISTORTION, np.float64),
            rvec=np.asarray(rvec, np.float64).reshape(3),
            tvec=-rotation @ center,
        )
    return Rig(
        version=RIG_VERSION,
        pitch_length_m=PITCH_LENGTH_M,
        pitch_width_m=PITCH_WIDTH_M,
        cameras=cameras,
    )
