"""The virtual two-camera rig of the synthetic match.

Two static cameras stand side by side behind the halfway line, beyond the near touchline, each
seeing a little more than half of the pitch; their views overlap around the centre line, as in a
real rig such as SoccerTrack's. `default_rig` designs them for a given image size; the rig file
format and the camera model are `polyvision.geometry`'s.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from polyvision.geometry import (
    RIG_VERSION,
    BoolArray,
    CameraModel,
    Float64Array,
    Rig,
    look_at,
)
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

# Radial distortion of the default lenses: moderate barrel distortion like a wide-angle sports
# camera. k2 > 0 keeps r * (1 + k1 r^2 + k2 r^4) monotonic for every r, so no point outside the
# field of view can fold back into the image.
DEFAULT_DISTORTION = (-0.15, 0.012, 0.0, 0.0, 0.0)


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
