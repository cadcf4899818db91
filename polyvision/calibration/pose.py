"""One camera's pose in the pitch frame from annotated ground landmarks.

The intrinsics and lens model are known (from a checkerboard calibration); the landmarks lie on
the ground (``z = 0``), so the pose is a perspective-n-point problem. Annotations contain mistakes
(a landmark clicked at the wrong place or given the wrong label), so the pose is found with RANSAC,
refined by Levenberg-Marquardt on the consensus set, and checked: enough inliers, the camera above
the ground with every inlier in front of it, a plausible ground error. A homography fitted on the
undistorted points gives an independent estimate of the same image-to-ground mapping: where the
two disagree, the lens model or the annotations are suspect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.calibration.errors import (
    CalibrationError,
    DegenerateGeometryError,
    TooFewPointsError,
)
from polyvision.geometry import (
    UNDISTORT_CRITERIA,
    BoolArray,
    CameraModel,
    Float64Array,
    image_to_pitch,
)

MIN_INLIERS = 6
MAX_RMS_M = 3.0
# RANSAC threshold as a fraction of the image width when none is given: about 30 px on a
# 3072 px frame. Hand-clicked landmarks near a wide-angle lens's edge are often 10-20 px from
# where a good lens model puts them, while a wrong label is tens to hundreds of pixels off.
DEFAULT_THRESHOLD_FRACTION = 0.01
# Inlier threshold of the homography cross-check, on the ground (metres).
HOMOGRAPHY_THRESHOLD_M = 1.5
_RANSAC_ITERATIONS = 2000
_RANSAC_CONFIDENCE = 0.999
# OpenCV's RANSAC draws from its global RNG; seeding it makes a calibration reproducible.
_RANSAC_SEED = 0x5EED
_MAX_RECLASSIFY = 10
# Points whose spread across their main direction is below this fraction of their spread along
# it are "on one line": a line of landmarks (one touchline) leaves the pose's rotation about
# that line free.
COLLINEAR_RATIO = 0.02


@dataclass(frozen=True)
class Outlier:
    """An annotated point that the fitted pose rejects.

    Attributes:
        index: Position of the point in the input arrays.
        label: Its label (or its index as text when no labels were given).
        image_xy: Annotated pixel position.
        pitch_xy: Pitch position it was labelled with (metres, pitch frame).
        error_px: Distance between the annotated pixel and the labelled position's projection.
        error_m: Distance on the ground between the labelled position and where the annotated
            pixel's ray meets the ground (NaN where the ray misses the ground).
    """

    index: int
    label: str
    image_xy: tuple[float, float]
    pitch_xy: tuple[float, float]
    error_px: float
    error_m: float


@dataclass(frozen=True, eq=False)
class PoseFit:
    """A camera calibrated from ground landmarks, with its quality figures.

    Attributes:
        camera: The calibrated camera (given intrinsics and lens, fitted pose).
        inliers: ``[N]`` whether each input point supports the pose.
        rms_px: RMS reprojection error of the inliers, in pixels.
        rms_m: RMS ground error of the inliers in metres: the distance between each labelled
            position and `image_to_pitch` of its annotated pixel.
        outliers: The rejected points, worst first.
        errors_px: ``[N]`` reprojection error of every input point (pixels).
        errors_m: ``[N]`` ground error of every input point (metres; NaN off the ground).
        homography: ``[3, 3]`` RANSAC homography from undistorted pixels to pitch metres.
        homography_inliers: ``[N]`` the homography's RANSAC inliers.
        homography_rms_m: RMS ground error of the homography on its inliers (metres).
        pose_vs_homography_m: RMS distance between the pose's and the homography's ground
            positions of the pose's inlier pixels: their disagreement (metres).
    """

    camera: CameraModel
    inliers: BoolArray
    rms_px: float
    rms_m: float
    outliers: list[Outlier]
    errors_px: Float64Array
    errors_m: Float64Array
    homography: Float64Array
    homography_inliers: BoolArray
    homography_rms_m: float
    pose_vs_homography_m: float
    labels: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines: inliers, RMS figures, camera position and the outliers."""
        x, y, z = (float(v) for v in self.camera.center)
        lines = [
            f"camera {self.camera.name}: {int(self.inliers.sum())}/{len(self.inliers)} inliers, "
            f"RMS {self.rms_px:.1f} px, {self.rms_m:.2f} m on the ground; "
            f"at x={x:.1f} y={y:.1f} z={z:.1f} m",
            f"  homography cross-check: {int(self.homography_inliers.sum())} inliers, "
            f"RMS {self.homography_rms_m:.2f} m; "
            f"pose vs homography {self.pose_vs_homography_m:.2f} m",
        ]
        lines += [
            f"  outlier {o.label} at pixel ({o.image_xy[0]:.0f}, {o.image_xy[1]:.0f}), pitch "
            f"({o.pitch_xy[0]:.2f}, {o.pitch_xy[1]:.2f}) m: {o.error_px:.0f} px, "
            f"{o.error_m:.1f} m off"
            for o in self.outliers
        ]
        return "\n".join(lines)

    def to_report(self, pitch_points: npt.ArrayLike, image_points: npt.ArrayLike) -> dict[str, Any]:
        """JSON-compatible figures, with every point's residuals.

        Args:
            pitch_points: ``[N, 2]`` the fitted pitch positions (the fit does not keep them).
            image_points: ``[N, 2]`` the fitted pixels.
        """
        pitch = np.asarray(pitch_points, np.float64).reshape(-1, 2)
        image = np.asarray(image_points, np.float64).reshape(-1, 2)
        names = self.labels or [str(i) for i in range(len(pitch))]

        def point(i: int) -> dict[str, Any]:
            return {
                "label": names[i],
                "image_xy": [round(float(v), 3) for v in image[i]],
                "pitch_xy": [round(float(v), 4) for v in pitch[i]],
                "inlier": bool(self.inliers[i]),
                "error_px": _json_float(self.errors_px[i]),
                "error_m": _json_float(self.errors_m[i]),
            }

        return {
            "points": len(pitch),
            "inliers": int(self.inliers.sum()),
            "rms_px": _json_float(self.rms_px),
            "rms_m": _json_float(self.rms_m),
            "rejected": [point(o.index) for o in self.outliers],
            "homography": {
                "matrix": [[_json_float(v) for v in row] for row in self.homography],
                "inliers": int(self.homography_inliers.sum()),
                "rms_m": _json_float(self.homography_rms_m),
                "pose_vs_homography_m": _json_float(self.pose_vs_homography_m),
            },
            "residuals": [point(i) for i in range(len(pitch))],
        }


def _json_float(value: float | np.floating[Any]) -> float | None:
    """A finite float rounded for a report, or None (JSON has no NaN)."""
    number = float(value)
    return round(number, 4) if math.isfinite(number) else None


def _as_points(values: npt.ArrayLike, columns: tuple[int, ...], name: str) -> Float64Array:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] not in columns:
        raise CalibrationError(f"{name} must have shape [N, {' or '.join(map(str, columns))}]")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{name} has non-finite values")
    return array


def check_spread(points: Float64Array, what: str, unit: str) -> None:
    """Raise unless 2-D points span an area: not coincident, not all on (nearly) one line.

    Args:
        points: ``[N, 2]`` points.
        what: What they are, for the message (e.g. "camera 'left': the pitch points").
        unit: Their unit, for the message.

    Raises:
        DegenerateGeometryError: The points are coincident or collinear.
    """
    if len(points) < 3:
        raise TooFewPointsError(f"{what}: {len(points)} point(s), a pose needs at least 3")
    centred = points - points.mean(axis=0)
    spread = np.linalg.svd(centred, compute_uv=False) / np.sqrt(len(points))
    if not spread[0] > 1e-9:
        raise DegenerateGeometryError(f"{what} all coincide")
    if spread[1] < COLLINEAR_RATIO * spread[0]:
        raise DegenerateGeometryError(
            f"{what} lie on one line (spread {spread[1]:.3g} {unit} across it, "
            f"{spread[0]:.3g} {unit} along it): add points off that line"
        )
    distinct = len(np.unique(np.round(points, 6), axis=0))
    if distinct < 4:
        raise DegenerateGeometryError(f"{what}: only {distinct} distinct positions")


def _rms(values: Float64Array) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if len(values) else float("nan")


def _reprojection_errors(
    object_points: Float64Array,
    image_points: Float64Array,
    rvec: npt.ArrayLike,
    tvec: npt.ArrayLike,
    camera_matrix: Float64Array,
    distortion: Float64Array,
) -> Float64Array:
    projected, _ = cv2.projectPoints(
        object_points, np.asarray(rvec), np.asarray(tvec), camera_matrix, distortion
    )
    return np.asarray(
        np.linalg.norm(projected.reshape(-1, 2) - image_points, axis=1), dtype=np.float64
    )


def fit_camera_pose(
    image_points: npt.ArrayLike,
    pitch_points: npt.ArrayLike,
    camera_matrix: npt.ArrayLike,
    distortion: npt.ArrayLike,
    image_size: tuple[int, int],
    name: str,
    *,
    labels: Sequence[str] | None = None,
    ransac_threshold_px: float | None = None,
    min_inliers: int = MIN_INLIERS,
    max_rms_m: float = MAX_RMS_M,
) -> PoseFit:
    """Fit a camera's pose to ground landmarks seen in its image.

    RANSAC (`cv2.solvePnPRansac`) finds the largest set of points consistent with one pose; the
    pose is refined on that set (`cv2.solvePnPRefineLM`), the points are re-classified against
    the refined pose with the same threshold, and the two steps repeat until the set is stable.

    Args:
        image_points: ``[N, 2]`` annotated pixel positions in the distorted image.
        pitch_points: ``[N, 2]`` or ``[N, 3]`` their positions in the pitch frame (metres);
            ``z`` must be 0 (ground landmarks).
        camera_matrix: ``[3, 3]`` intrinsics.
        distortion: ``[5]`` lens coefficients ``(k1, k2, p1, p2, k3)``.
        image_size: ``(width, height)`` in pixels.
        name: The camera's name in the rig.
        labels: ``[N]`` names of the points for the report (default: their indices).
        ransac_threshold_px: Largest reprojection error of an inlier (pixels); default 1 % of
            the image width.
        min_inliers: Fewest inliers accepted.
        max_rms_m: Largest accepted RMS ground error of the inliers (metres).

    Returns:
        The fit.

    Raises:
        TooFewPointsError: Too few points, or too few inliers.
        DegenerateGeometryError: The points (or the inliers) are coincident or on one line.
        CalibrationError: Malformed inputs, a camera below the ground or with inliers behind it
            (typically labels in a mirrored axis convention), or an RMS ground error above
            ``max_rms_m``.
    """
    image = _as_points(image_points, (2,), "image_points")
    pitch = _as_points(pitch_points, (2, 3), "pitch_points")
    if len(image) != len(pitch):
        raise CalibrationError(
            f"camera {name!r}: {len(image)} image points but {len(pitch)} pitch points"
        )
    if pitch.shape[1] == 3 and np.any(np.abs(pitch[:, 2]) > 1e-9):
        raise CalibrationError(f"camera {name!r}: pitch points must lie on the ground (z = 0)")
    ground = pitch[:, :2]
    world = np.concatenate([ground, np.zeros((len(ground), 1))], axis=1)
    names = [str(i) for i in range(len(image))] if labels is None else [str(v) for v in labels]
    if len(names) != len(image):
        raise CalibrationError(f"camera {name!r}: {len(names)} labels for {len(image)} points")
    if len(image) < min_inliers:
        raise TooFewPointsError(
            f"camera {name!r}: {len(image)} points, at least {min_inliers} are needed"
        )
    check_spread(ground, f"camera {name!r}: the pitch points", "m")
    check_spread(image, f"camera {name!r}: the image points", "px")
    matrix = np.asarray(camera_matrix, dtype=np.float64)
    lens = np.asarray(distortion, dtype=np.float64).reshape(-1)
    if matrix.shape != (3, 3) or lens.shape != (5,):
        raise CalibrationError(
            f"camera {name!r}: camera_matrix must be 3x3 and distortion 5 coefficients"
        )
    threshold = (
        ransac_threshold_px
        if ransac_threshold_px is not None
        else DEFAULT_THRESHOLD_FRACTION * image_size[0]
    )

    cv2.setRNGSeed(_RANSAC_SEED)
    found, rvec, tvec, indices = cv2.solvePnPRansac(
        world,
        image,
        matrix,
        lens,
        iterationsCount=_RANSAC_ITERATIONS,
        reprojectionError=float(threshold),
        confidence=_RANSAC_CONFIDENCE,
        # Minimal 4-point P3P samples: fewer points per sample than EPnP's 5 means more
        # outlier-free samples, and P3P copes with any planar layout.
        flags=cv2.SOLVEPNP_P3P,
    )
    if not found or indices is None or len(indices) < min_inliers:
        count = 0 if indices is None else len(indices)
        raise TooFewPointsError(
            f"camera {name!r}: RANSAC found no pose supported by {min_inliers} points "
            f"(best: {count} of {len(image)} within {threshold:.1f} px)"
        )
    inliers = np.zeros(len(image), dtype=np.bool_)
    inliers[np.asarray(indices).reshape(-1)] = True
    # Re-solve on the consensus set with IPPE, made for planar targets: the EPnP solution that
    # solvePnPRansac returns for its inliers can be far off on planar points (with labels in a
    # mirrored convention it fails outright, hiding the clear "below the ground" diagnosis).
    solved, rvec, tvec = cv2.solvePnP(
        world[inliers], image[inliers], matrix, lens, flags=cv2.SOLVEPNP_IPPE
    )
    if not solved:
        raise CalibrationError(f"camera {name!r}: no pose fits the RANSAC inliers")
    # Refine and re-classify until stable: RANSAC's pose comes from a minimal sample, so some
    # points it rejected fit the refined pose, and vice versa.
    for _ in range(_MAX_RECLASSIFY):
        if int(inliers.sum()) < min_inliers:
            break
        rvec, tvec = cv2.solvePnPRefineLM(world[inliers], image[inliers], matrix, lens, rvec, tvec)
        errors_px = _reprojection_errors(world, image, rvec, tvec, matrix, lens)
        updated = errors_px <= threshold
        if np.array_equal(updated, inliers):
            break
        inliers = updated
    errors_px = _reprojection_errors(world, image, rvec, tvec, matrix, lens)
    count = int(inliers.sum())
    if count < min_inliers:
        raise TooFewPointsError(
            f"camera {name!r}: only {count} of {len(image)} points fit one pose within "
            f"{threshold:.1f} px; at least {min_inliers} are needed"
        )
    check_spread(ground[inliers], f"camera {name!r}: the pose's inliers", "m")

    camera = CameraModel(
        name=name,
        image_size=(int(image_size[0]), int(image_size[1])),
        camera_matrix=matrix,
        distortion=lens,
        rvec=np.asarray(rvec, np.float64).reshape(3),
        tvec=np.asarray(tvec, np.float64).reshape(3),
    )
    _check_orientation(camera, world[inliers])

    errors_m = np.linalg.norm(image_to_pitch(camera, image) - ground, axis=1)
    if np.any(np.isnan(errors_m[inliers])):
        raise CalibrationError(
            f"camera {name!r}: the rays of some inliers do not reach the ground; "
            "the pose is inconsistent"
        )
    rms_m = _rms(errors_m[inliers])
    if not rms_m <= max_rms_m:
        raise CalibrationError(
            f"camera {name!r}: RMS ground error {rms_m:.2f} m exceeds {max_rms_m:.2f} m; "
            "check the lens model and the annotations"
        )

    homography, homography_inliers, homography_rms_m, disagreement = _homography_check(
        camera, image, ground, inliers
    )
    outliers = sorted(
        (
            Outlier(
                index=int(i),
                label=names[i],
                image_xy=(float(image[i, 0]), float(image[i, 1])),
                pitch_xy=(float(ground[i, 0]), float(ground[i, 1])),
                error_px=float(errors_px[i]),
                error_m=float(errors_m[i]),
            )
            for i in np.flatnonzero(~inliers)
        ),
        key=lambda o: -o.error_px,
    )
    return PoseFit(
        camera=camera,
        inliers=inliers,
        rms_px=_rms(errors_px[inliers]),
        rms_m=rms_m,
        outliers=outliers,
        errors_px=errors_px,
        errors_m=np.asarray(errors_m, dtype=np.float64),
        homography=homography,
        homography_inliers=homography_inliers,
        homography_rms_m=homography_rms_m,
        pose_vs_homography_m=disagreement,
        labels=names,
    )


def _check_orientation(camera: CameraModel, inlier_world: Float64Array) -> None:
    """Raise unless the camera is above the ground and sees every inlier in front of it.

    A planar target fits equally well seen from either side of its plane: labels given in a
    mirrored convention (one axis flipped) are fitted exactly by a camera below the ground.
    """
    height = float(camera.center[2])
    if height <= 0:
        raise CalibrationError(
            f"camera {camera.name!r}: fitted below the ground (z = {height:.1f} m); the pitch "
            "labels are probably in a mirrored axis convention (e.g. y measured from the far "
            "touchline)"
        )
    depth = inlier_world @ camera.rotation.T[:, 2] + camera.tvec[2]
    if np.any(depth <= 0):
        raise CalibrationError(
            f"camera {camera.name!r}: {int(np.sum(depth <= 0))} inlier(s) lie behind the "
            "camera; the pose is inconsistent with the pitch orientation"
        )


def _homography_check(
    camera: CameraModel, image: Float64Array, ground: Float64Array, pose_inliers: BoolArray
) -> tuple[Float64Array, BoolArray, float, float]:
    """Fit an undistorted-image-to-ground homography and compare it with the pose."""
    undistorted = cv2.undistortPoints(
        image.reshape(-1, 1, 2),
        camera.camera_matrix,
        camera.distortion,
        P=camera.camera_matrix,
        criteria=UNDISTORT_CRITERIA,
    ).reshape(-1, 2)
    homography, mask = cv2.findHomography(
        undistorted, ground, cv2.RANSAC, HOMOGRAPHY_THRESHOLD_M, maxIters=_RANSAC_ITERATIONS
    )
    if homography is None or mask is None:
        nan = float("nan")
        return np.full((3, 3), np.nan), np.zeros(len(image), np.bool_), nan, nan
    mapped = cv2.perspectiveTransform(undistorted.reshape(-1, 1, 2), homography).reshape(-1, 2)
    h_inliers = np.asarray(mask, dtype=np.bool_).reshape(-1)
    h_rms = _rms(np.linalg.norm(mapped[h_inliers] - ground[h_inliers], axis=1))
    pose_ground = image_to_pitch(camera, image[pose_inliers])
    disagreement = _rms(np.linalg.norm(pose_ground - mapped[pose_inliers], axis=1))
    return np.asarray(homography, np.float64), h_inliers, h_rms, disagreement
