"""A camera's pose from features matched with a calibrated neighbour (a camera without keypoints).

The two cameras of a rig film overlapping views. SIFT features are matched between a frame of
each (ratio test); a match is a pixel of the calibrated reference camera and a pixel of the
target camera that see the same point. The target's intrinsics and lens are known (from its
checkerboards); its pose is estimated from the matches in one of two ways:

- ``"ground"`` (default): the reference pixel's ray meets the pitch (``z = 0``) at a known point,
  so each match on the ground is a ground landmark of the target camera, and its full pose
  (rotation and position) follows from `fit_camera_pose`'s RANSAC PnP. Features off the ground
  (players, stands) do not fit one pose and are rejected. This is exact for any baseline.
- ``"rotation"``: the two cameras share their optical centre (the target's centre is the
  reference's plus an optional known offset), and only the rotation is estimated, from the
  directions of the matched rays (RANSAC on two-match samples, Kabsch). Right for cameras
  mounted a few centimetres apart; a baseline of ``b`` metres leaves errors of about ``b / d``
  radians for points ``d`` metres away.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.calibration.errors import CalibrationError, TooFewPointsError
from polyvision.calibration.pose import PoseFit, fit_camera_pose
from polyvision.geometry import (
    UNDISTORT_CRITERIA,
    CameraModel,
    Float64Array,
    image_to_pitch,
)
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

ALIGNMENT_MODELS = ("ground", "rotation")
MATCH_WIDTH = 2048
"""Images wider than this are downscaled for feature detection (positions mapped back)."""
MAX_FEATURES = 20000
RATIO = 0.75
"""Lowe's ratio test: a match is kept when its distance is below this share of the second's."""
MIN_MATCHES = 12
GROUND_MARGIN_M = 5.0
"""Matches whose reference ray meets the ground farther than this outside the pitch are dropped."""
DEFAULT_THRESHOLD_FRACTION = 0.003
"""RANSAC inlier threshold as a share of the image width (about 9 px at 3072, 4 px at 1280)."""
_RANSAC_ITERATIONS = 4000
_SEED = 0x5EED


@dataclass(frozen=True)
class Matches:
    """Matched pixels of two images (full-size pixel coordinates)."""

    reference_xy: Float64Array
    target_xy: Float64Array
    reference_features: int
    target_features: int


def _gray(image: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    if image.ndim == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
    return np.asarray(image, np.uint8)


def match_features(reference_image: npt.NDArray[Any], target_image: npt.NDArray[Any]) -> Matches:
    """SIFT features of two images matched with the ratio test.

    Images wider than `MATCH_WIDTH` are downscaled for detection; positions are returned at full
    size.
    """
    sift = cv2.SIFT.create(nfeatures=MAX_FEATURES, contrastThreshold=0.005)
    found = []
    for image in (reference_image, target_image):
        gray = _gray(image)
        scale = min(1.0, MATCH_WIDTH / gray.shape[1])
        small = (
            cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1.0
            else gray
        )
        keypoints, descriptors = sift.detectAndCompute(small, None)
        points = (
            np.array([k.pt for k in keypoints], np.float64).reshape(-1, 2) + 0.5
        ) / scale - 0.5
        found.append((points, descriptors))
    (ref_pts, ref_desc), (tgt_pts, tgt_desc) = found
    if ref_desc is None or tgt_desc is None or len(ref_pts) < 2 or len(tgt_pts) < 2:
        empty = np.zeros((0, 2), np.float64)
        return Matches(empty, empty, len(ref_pts), len(tgt_pts))
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    pairs = matcher.knnMatch(ref_desc, tgt_desc, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    return Matches(
        reference_xy=np.array([ref_pts[m.queryIdx] for m in good], np.float64).reshape(-1, 2),
        target_xy=np.array([tgt_pts[m.trainIdx] for m in good], np.float64).reshape(-1, 2),
        reference_features=len(ref_pts),
        target_features=len(tgt_pts),
    )


@dataclass(frozen=True, eq=False)
class FeatureAlignment:
    """A camera's pose from features matched with a calibrated reference camera.

    Attributes:
        camera: The target camera with its estimated pose.
        reference: The reference camera's name.
        model: ``"ground"`` or ``"rotation"``.
        features: Features found in the reference and target images.
        matches: Matches passing the ratio test.
        candidates: Matches the model could use (ground: those meeting the pitch).
        inliers: Matches supporting the pose.
        rms_px: RMS reprojection error of the inliers in the target image (pixels).
        pose_fit: The ground model's pose fit (None for the rotation model).
        seconds: Time taken.
        target_xy: ``[M, 2]`` the usable matches' pixels in the target image.
        ground_xy: ``[M, 2]`` where their reference rays meet the ground (ground model; else
            empty).
        threshold_px: The RANSAC inlier threshold used.
    """

    camera: CameraModel
    reference: str
    model: str
    features: tuple[int, int]
    matches: int
    candidates: int
    inliers: int
    rms_px: float
    pose_fit: PoseFit | None
    seconds: float
    target_xy: Float64Array = field(default_factory=lambda: np.zeros((0, 2)))
    ground_xy: Float64Array = field(default_factory=lambda: np.zeros((0, 2)))
    threshold_px: float = math.nan

    def summary(self) -> str:
        """One human-readable line."""
        x, y, z = (float(v) for v in self.camera.center)
        return (
            f"camera {self.camera.name}: pose from features matched with {self.reference} "
            f"({self.model} model): {self.features[0]}/{self.features[1]} features, "
            f"{self.matches} matches, {self.candidates} usable, {self.inliers} inliers, "
            f"RMS {self.rms_px:.2f} px; at x={x:.1f} y={y:.1f} z={z:.1f} m; {self.seconds:.1f} s"
        )

    def to_report(self) -> dict[str, Any]:
        """JSON-compatible figures."""
        return {
            "reference": self.reference,
            "model": self.model,
            "features": list(self.features),
            "matches": self.matches,
            "candidates": self.candidates,
            "inliers": self.inliers,
            "rms_px": round(self.rms_px, 4) if math.isfinite(self.rms_px) else None,
            "rvec": self.camera.rvec.tolist(),
            "tvec": self.camera.tvec.tolist(),
            "center": self.camera.center.tolist(),
            "ground_rms_m": (round(self.pose_fit.rms_m, 4) if self.pose_fit is not None else None),
            "seconds": round(self.seconds, 3),
        }


def _normalised_rays(
    pixels: Float64Array, camera_matrix: Float64Array, distortion: Float64Array
) -> Float64Array:
    """Unit ray directions in the camera frame of distorted pixels."""
    norm = cv2.undistortPoints(
        pixels.reshape(-1, 1, 2), camera_matrix, distortion, criteria=UNDISTORT_CRITERIA
    ).reshape(-1, 2)
    rays = np.c_[norm, np.ones(len(norm))]
    return np.asarray(rays / np.linalg.norm(rays, axis=1, keepdims=True), np.float64)


def kabsch(source: Float64Array, target: Float64Array) -> Float64Array:
    """The rotation ``R`` minimising ``sum |target_i - R source_i|^2`` (rows are vectors)."""
    covariance = target.T @ source
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    return np.asarray(u @ np.diag([1.0, 1.0, sign]) @ vt, np.float64)


def _rotation_ransac(
    world_dirs: Float64Array, camera_dirs: Float64Array, threshold_rad: float
) -> tuple[Float64Array, npt.NDArray[np.bool_]]:
    """World-to-camera rotation from matched unit directions, robustly."""
    rng = np.random.default_rng(_SEED)
    count = len(world_dirs)
    best = np.zeros(count, np.bool_)
    cos_threshold = math.cos(threshold_rad)
    for _ in range(_RANSAC_ITERATIONS):
        i, j = rng.choice(count, size=2, replace=False)
        if abs(float(world_dirs[i] @ world_dirs[j])) > 0.99999:
            continue
        rotation = kabsch(world_dirs[[i, j]], camera_dirs[[i, j]])
        inliers = np.einsum("ij,ij->i", world_dirs @ rotation.T, camera_dirs) > cos_threshold
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < 3:
        raise TooFewPointsError(
            f"no rotation supported by 3 matches (of {count}) within "
            f"{math.degrees(threshold_rad):.2f}°"
        )
    inliers = best
    rotation = kabsch(world_dirs[inliers], camera_dirs[inliers])
    for _ in range(10):
        rotation = kabsch(world_dirs[inliers], camera_dirs[inliers])
        updated = np.einsum("ij,ij->i", world_dirs @ rotation.T, camera_dirs) > cos_threshold
        if np.array_equal(updated, inliers) or updated.sum() < 3:
            break
        inliers = updated
    return rotation, inliers


def align_by_features(
    reference: CameraModel,
    reference_image: npt.NDArray[Any],
    target_image: npt.NDArray[Any],
    target_matrix: npt.ArrayLike,
    target_distortion: npt.ArrayLike,
    name: str,
    *,
    model: str = "ground",
    center_offset_m: npt.ArrayLike | None = None,
    threshold_px: float | None = None,
    pitch_m: tuple[float, float] = (PITCH_LENGTH_M, PITCH_WIDTH_M),
) -> FeatureAlignment:
    """Estimate a camera's pose from features matched with a calibrated reference camera.

    Args:
        reference: The calibrated camera (pose in the pitch frame).
        reference_image: A frame of the reference camera (BGR or grey), at its image size.
        target_image: A frame of the target camera at about the same time, at its image size.
        target_matrix: ``[3, 3]`` the target's intrinsics.
        target_distortion: ``[5]`` the target's lens coefficients.
        name: The target camera's name.
        model: ``"ground"`` or ``"rotation"`` (see the module doc).
        center_offset_m: Rotation model only: the target's optical centre minus the
            reference's, in the pitch frame (default: none, a shared centre).
        threshold_px: RANSAC inlier threshold in the target image (default: 0.3 % of its width).
        pitch_m: Pitch ``(length, width)``, to keep ground matches on and near the pitch.

    Returns:
        The target camera with its pose, and the figures of the fit.

    Raises:
        TooFewPointsError: Too few matches, or too few consistent with one pose.
        CalibrationError: A bad argument, or the pose fails `fit_camera_pose`'s checks.
    """
    started = time.monotonic()
    if model not in ALIGNMENT_MODELS:
        raise CalibrationError(f"alignment model {model!r} is not ground or rotation")
    height, width = target_image.shape[:2]
    if (reference_image.shape[1], reference_image.shape[0]) != reference.image_size:
        raise CalibrationError(
            f"the {reference.name} frame is {reference_image.shape[1]}x{reference_image.shape[0]}"
            f", its camera {reference.image_size[0]}x{reference.image_size[1]}"
        )
    matrix = np.asarray(target_matrix, np.float64)
    distortion = np.asarray(target_distortion, np.float64).reshape(5)
    threshold = threshold_px if threshold_px is not None else DEFAULT_THRESHOLD_FRACTION * width
    matches = match_features(reference_image, target_image)
    count = len(matches.reference_xy)
    if count < MIN_MATCHES:
        raise TooFewPointsError(
            f"camera {name!r}: {count} features matched with {reference.name!r}, at least "
            f"{MIN_MATCHES} are needed (do the views overlap?)"
        )
    features = (matches.reference_features, matches.target_features)

    if model == "ground":
        ground = image_to_pitch(reference, matches.reference_xy)
        length, pitch_width = pitch_m
        on_pitch = (
            np.all(np.isfinite(ground), axis=1)
            & (ground[:, 0] > -GROUND_MARGIN_M)
            & (ground[:, 0] < length + GROUND_MARGIN_M)
            & (ground[:, 1] > -GROUND_MARGIN_M)
            & (ground[:, 1] < pitch_width + GROUND_MARGIN_M)
        )
        candidates = int(on_pitch.sum())
        if candidates < MIN_MATCHES:
            raise TooFewPointsError(
                f"camera {name!r}: {candidates} of {count} matches lie on the pitch in "
                f"{reference.name!r}'s view, at least {MIN_MATCHES} are needed"
            )
        fit = fit_camera_pose(
            matches.target_xy[on_pitch],
            ground[on_pitch],
            matrix,
            distortion,
            (int(width), int(height)),
            name,
            ransac_threshold_px=threshold,
            min_inliers=MIN_MATCHES,
        )
        return FeatureAlignment(
            camera=fit.camera,
            reference=reference.name,
            model=model,
            features=features,
            matches=count,
            candidates=candidates,
            inliers=int(fit.inliers.sum()),
            rms_px=fit.rms_px,
            pose_fit=fit,
            seconds=time.monotonic() - started,
            target_xy=matches.target_xy[on_pitch],
            ground_xy=ground[on_pitch],
            threshold_px=float(threshold),
        )

    offset = np.zeros(3) if center_offset_m is None else np.asarray(center_offset_m, np.float64)
    center = reference.center + offset
    reference_rays = _normalised_rays(
        matches.reference_xy, reference.camera_matrix, reference.distortion
    )
    world_dirs = reference_rays @ reference.rotation  # R^T applied to each row
    camera_dirs = _normalised_rays(matches.target_xy, matrix, distortion)
    focal = float(max(matrix[0, 0], matrix[1, 1]))
    rotation, inliers = _rotation_ransac(world_dirs, camera_dirs, threshold / focal)
    if inliers.sum() < MIN_MATCHES:
        raise TooFewPointsError(
            f"camera {name!r}: only {int(inliers.sum())} of {count} matches fit one rotation, "
            f"at least {MIN_MATCHES} are needed"
        )
    rvec, _ = cv2.Rodrigues(rotation)
    camera = CameraModel(
        name=name,
        image_size=(int(width), int(height)),
        camera_matrix=matrix,
        distortion=distortion,
        rvec=np.asarray(rvec, np.float64).reshape(3),
        tvec=-rotation @ center,
    )
    # Pixel error: project the inliers' directions (a point one metre along each ray).
    projected, _ = cv2.projectPoints(
        (center + world_dirs[inliers]).reshape(-1, 1, 3),
        camera.rvec,
        camera.tvec,
        matrix,
        distortion,
    )
    errors = np.linalg.norm(projected.reshape(-1, 2) - matches.target_xy[inliers], axis=1)
    return FeatureAlignment(
        camera=camera,
        reference=reference.name,
        model=model,
        features=features,
        matches=count,
        candidates=count,
        inliers=int(inliers.sum()),
        rms_px=float(np.sqrt(np.mean(errors**2))),
        pose_fit=None,
        seconds=time.monotonic() - started,
        target_xy=matches.target_xy,
        threshold_px=float(threshold),
    )
