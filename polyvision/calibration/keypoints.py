"""A camera's pose from pitch keypoints (CVAT), and its lens refined with them.

The keypoints are pitch landmarks clicked in a video frame and labelled with their pitch
position. Their labels may measure ``y`` from the near touchline (the project's pitch frame) or
from the far one (SoccerTrack's convention): ``label_frame="auto"`` fits both and keeps the one
that puts the camera above the ground (the mirrored one puts it below, or fits nothing).

Checkerboard photos often cover only part of the image (SoccerTrack's right camera: the board
was held in the top-right quarter only), and a lens polynomial fitted there is extrapolated
everywhere else. The keypoints cover the pitch, which is exactly where the lens matters, so
`refine_lens_with_keypoints` adds the pose's inlier keypoints as one more planar view (the pitch,
``z = 0``) to the checkerboard views and refits the lens from the checkerboard estimate
(`cv2.calibrateCamera` with the intrinsic guess); the pose is then refitted with RANSAC on the
refined lens, and the two steps repeat until the inlier set is stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from polyvision.calibration.cvat import load_cvat_points
from polyvision.calibration.errors import CalibrationError, TooFewPointsError
from polyvision.calibration.lens import LensCalibration, board_points, board_rms, fit_standard
from polyvision.calibration.pose import PoseFit, fit_camera_pose
from polyvision.geometry import Float64Array
from polyvision.geometry.pitch import PITCH_WIDTH_M

LABEL_FRAMES = ("near", "far")
"""``near``: labels in the project's pitch frame; ``far``: ``y`` from the far touchline."""

_MAX_REFINE_ROUNDS = 4
# The refined lens must explain the keypoints significantly better than the checkerboard lens:
# an F-test of the drop in squared pixel residuals against the 9 lens parameters it frees
# (fx fy cx cy k1 k2 p1 p2 k3). 3.0 is about the 1 % point of F(9, n) for the 50-200 residuals
# of a keypoint set; a smaller drop is what fitting 9 more parameters to noise gives.
LENS_PARAMETERS = 9
F_THRESHOLD = 3.0
# A refined lens is kept only while the board still fits: RMS at most this factor of the
# checkerboard-only fit's, plus this margin (pixels).
_BOARD_RMS_FACTOR = 2.0
_BOARD_RMS_MARGIN_PX = 0.5


@dataclass(frozen=True, eq=False)
class Keypoints:
    """Annotated pitch landmarks of one camera.

    Attributes:
        source: The annotation file.
        image_xy: ``[N, 2]`` pixel positions in the (distorted) video frame.
        label_xy: ``[N, 2]`` pitch positions as written in the labels (metres).
        labels: The label texts.
        image_size: ``(width, height)`` of the annotated frame, where the file gives it.
    """

    source: Path
    image_xy: Float64Array
    label_xy: Float64Array
    labels: list[str]
    image_size: tuple[int, int] | None

    def pitch_xy(self, label_frame: str, pitch_width_m: float = PITCH_WIDTH_M) -> Float64Array:
        """``[N, 2]`` positions in the project's pitch frame for a label convention."""
        if label_frame == "near":
            return self.label_xy.copy()
        if label_frame == "far":
            return np.asarray(
                np.c_[self.label_xy[:, 0], pitch_width_m - self.label_xy[:, 1]], np.float64
            )
        raise CalibrationError(f"label frame {label_frame!r} is not near or far")


def load_keypoints(path: str | Path) -> Keypoints:
    """Read a CVAT point-annotation file.

    Raises:
        CvatError: The file is missing or malformed.
        CalibrationError: Its points come from frames of different sizes.
    """
    path = Path(path)
    points = load_cvat_points(path)
    sizes = {p.image_size for p in points if p.image_size is not None}
    if len(sizes) > 1:
        raise CalibrationError(f"{path}: points annotated on frames of sizes {sorted(sizes)}")
    return Keypoints(
        source=path,
        image_xy=np.array([p.image_xy for p in points], np.float64),
        label_xy=np.array([p.pitch_xy for p in points], np.float64),
        labels=[p.label for p in points],
        image_size=sizes.pop() if sizes else None,
    )


def fit_keypoints(
    keypoints: Keypoints,
    camera_matrix: Float64Array,
    distortion: Float64Array,
    image_size: tuple[int, int],
    name: str,
    *,
    label_frame: str = "auto",
    ransac_threshold_px: float | None = None,
) -> tuple[PoseFit, str]:
    """Fit the camera's pose to its keypoints (RANSAC, see `fit_camera_pose`).

    Args:
        keypoints: The annotations.
        camera_matrix: ``[3, 3]`` intrinsics at ``image_size``.
        distortion: ``[5]`` standard lens coefficients.
        image_size: ``(width, height)`` of the video.
        name: The camera's name.
        label_frame: ``"near"``, ``"far"`` or ``"auto"`` (both tried; see the module doc).
        ransac_threshold_px: See `fit_camera_pose`.

    Returns:
        The fit and the label frame used.

    Raises:
        CalibrationError: The annotated frame's size is not the video's, or no label frame fits.
    """
    if keypoints.image_size is not None and tuple(keypoints.image_size) != tuple(image_size):
        w, h = keypoints.image_size
        raise CalibrationError(
            f"camera {name!r}: {keypoints.source.name} was annotated on {w}x{h} frames but the "
            f"video is {image_size[0]}x{image_size[1]}"
        )
    frames = LABEL_FRAMES if label_frame == "auto" else (label_frame,)
    fits: list[tuple[PoseFit, str]] = []
    errors: list[tuple[str, CalibrationError]] = []
    for frame in frames:
        try:
            fit = fit_camera_pose(
                keypoints.image_xy,
                keypoints.pitch_xy(frame),
                camera_matrix,
                distortion,
                image_size,
                name,
                labels=keypoints.labels,
                ransac_threshold_px=ransac_threshold_px,
            )
        except CalibrationError as error:
            errors.append((frame, error))
            continue
        fits.append((fit, frame))
    if not fits:
        if len(errors) == 1:
            raise errors[0][1]
        # Say why each convention failed; the first error's type is kept (e.g. degenerate).
        detail = "; ".join(f"labels y from the {f} touchline: {e}" for f, e in errors)
        raise type(errors[0][1])(detail)
    return min(fits, key=lambda item: (-int(item[0].inliers.sum()), item[0].rms_px))


@dataclass(frozen=True, eq=False)
class LensRefinement:
    """The lens refitted on the checkerboards plus the pitch keypoints.

    Attributes:
        accepted: Whether the refined lens replaced the checkerboard-only one.
        reason: Why (or why not).
        rounds: Refit-and-repose rounds run.
        camera_matrix: ``[3, 3]`` the refined intrinsics.
        distortion: ``[5]`` the refined coefficients.
        board_rms_before_px: RMS on the checkerboards of the checkerboard-only lens.
        board_rms_after_px: RMS on the checkerboards of the refined lens (poses re-fitted).
        keypoint_rms_before_px: The keypoint pose's inlier RMS with the checkerboard-only lens.
        keypoint_rms_after_px: The same with the refined lens.
        inliers_before: The keypoint pose's inliers with the checkerboard-only lens.
        inliers_after: Its inliers with the refined lens.
    """

    accepted: bool
    reason: str
    rounds: int
    camera_matrix: Float64Array
    distortion: Float64Array
    board_rms_before_px: float
    board_rms_after_px: float
    keypoint_rms_before_px: float
    keypoint_rms_after_px: float
    inliers_before: int
    inliers_after: int

    def summary(self, points: str = "keypoints") -> str:
        """Two human-readable lines; ``points`` names what the lens was refined on."""
        verdict = "kept" if self.accepted else "not kept"
        k, d = self.camera_matrix, self.distortion
        return (
            f"  lens refined with the {points} ({verdict}: {self.reason}): {points} "
            f"{self.keypoint_rms_before_px:.1f} -> {self.keypoint_rms_after_px:.1f} px RMS, "
            f"{self.inliers_before} -> {self.inliers_after} inliers; checkerboards "
            f"{self.board_rms_before_px:.3f} -> {self.board_rms_after_px:.3f} px RMS\n"
            f"    fx={k[0, 0]:.1f} fy={k[1, 1]:.1f} cx={k[0, 2]:.1f} cy={k[1, 2]:.1f} "
            f"k1={d[0]:.4f} k2={d[1]:.4f} p1={d[2]:.5f} p2={d[3]:.5f} k3={d[4]:.4f}"
        )

    def to_report(self) -> dict[str, Any]:
        """JSON-compatible figures."""
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "rounds": self.rounds,
            "camera_matrix": self.camera_matrix.tolist(),
            "distortion": self.distortion.tolist(),
            "board_rms_before_px": _round(self.board_rms_before_px),
            "board_rms_after_px": _round(self.board_rms_after_px),
            "keypoint_rms_before_px": _round(self.keypoint_rms_before_px),
            "keypoint_rms_after_px": _round(self.keypoint_rms_after_px),
            "inliers_before": self.inliers_before,
            "inliers_after": self.inliers_after,
        }


def _round(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


def refine_lens_with_keypoints(
    lens: LensCalibration,
    keypoints: Keypoints,
    fit: PoseFit,
    label_frame: str,
    *,
    ransac_threshold_px: float | None = None,
) -> tuple[LensRefinement, PoseFit]:
    """Refit the lens on the checkerboard views plus the pose's inlier keypoints.

    Args:
        lens: The checkerboard calibration (its corners and lens are the starting point).
        keypoints: The camera's keypoints.
        fit: The pose fitted with ``lens``'s lens.
        label_frame: The label convention ``fit`` used.
        ransac_threshold_px: See `fit_camera_pose`.

    Returns:
        The refinement's figures and the pose fit to keep: refitted on the refined lens where
        that lens is accepted, else ``fit`` itself.
    """
    size = lens.image_size
    objects, images = board_points(lens.detections, lens.corners)
    pitch = keypoints.pitch_xy(label_frame)
    matrix, distortion = lens.camera_matrix, lens.distortion
    current = fit
    rounds = 0
    for rounds in range(1, _MAX_REFINE_ROUNDS + 1):
        inliers = current.inliers
        world = np.c_[pitch[inliers], np.zeros(int(inliers.sum()))].astype(np.float32)
        seen = keypoints.image_xy[inliers].astype(np.float32).reshape(-1, 1, 2)
        refined, _, _ = fit_standard(
            [*objects, world.reshape(-1, 1, 3)],
            [*images, seen],
            size,
            camera_matrix=matrix,
            distortion=distortion,
        )
        if not refined.ok:
            return _rejected(lens, fit, rounds, f"the joint fit failed: {refined.error}"), fit
        matrix, distortion = refined.camera_matrix, refined.coefficients
        try:
            current = fit_camera_pose(
                keypoints.image_xy,
                pitch,
                matrix,
                distortion,
                size,
                fit.camera.name,
                labels=keypoints.labels,
                ransac_threshold_px=ransac_threshold_px,
            )
        except (CalibrationError, TooFewPointsError) as error:
            return _rejected(lens, fit, rounds, f"no pose on the refined lens: {error}"), fit
        if np.array_equal(current.inliers, inliers):
            break
    after = board_rms(objects, images, matrix, distortion)
    before = lens.rms_px
    board_ok = math.isfinite(after) and after <= _BOARD_RMS_FACTOR * before + _BOARD_RMS_MARGIN_PX
    statistic = improvement_f(fit.errors_px, current.errors_px, current.inliers)
    better = statistic > F_THRESHOLD and int(current.inliers.sum()) >= int(fit.inliers.sum())
    if not board_ok:
        reason = f"the checkerboards no longer fit ({after:.2f} px RMS)"
    elif not better:
        reason = (
            f"it does not fit the points significantly better (F = {statistic:.1f}, "
            f"needs {F_THRESHOLD:g})"
        )
    else:
        reason = f"it fits the points significantly better (F = {statistic:.1f})"
    accepted = board_ok and better
    refinement = LensRefinement(
        accepted=accepted,
        reason=reason,
        rounds=rounds,
        camera_matrix=np.asarray(matrix, np.float64),
        distortion=np.asarray(distortion, np.float64).reshape(5),
        board_rms_before_px=before,
        board_rms_after_px=after,
        keypoint_rms_before_px=fit.rms_px,
        keypoint_rms_after_px=current.rms_px,
        inliers_before=int(fit.inliers.sum()),
        inliers_after=int(current.inliers.sum()),
    )
    return refinement, (current if accepted else fit)


def improvement_f(
    errors_before: Float64Array, errors_after: Float64Array, inliers: npt.NDArray[np.bool_]
) -> float:
    """F statistic of the drop in squared residuals on ``inliers`` from freeing the lens.

    ``((SSR_before - SSR_after) / 9) / (SSR_after / (2 n - 6 - 9))`` for ``n`` inliers (two
    residuals each; 6 pose and 9 lens parameters).
    """
    dof = 2 * int(inliers.sum()) - 6 - LENS_PARAMETERS
    before = float(np.sum(np.square(errors_before[inliers])))
    after = float(np.sum(np.square(errors_after[inliers])))
    if dof <= 0 or not math.isfinite(before) or not after > 0:
        return math.nan if dof <= 0 else math.inf
    return ((before - after) / LENS_PARAMETERS) / (after / dof)


def _rejected(lens: LensCalibration, fit: PoseFit, rounds: int, reason: str) -> LensRefinement:
    return LensRefinement(
        accepted=False,
        reason=reason,
        rounds=rounds,
        camera_matrix=lens.camera_matrix,
        distortion=lens.distortion,
        board_rms_before_px=lens.rms_px,
        board_rms_after_px=lens.rms_px,
        keypoint_rms_before_px=fit.rms_px,
        keypoint_rms_after_px=fit.rms_px,
        inliers_before=int(fit.inliers.sum()),
        inliers_after=int(fit.inliers.sum()),
    )
