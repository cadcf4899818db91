"""A two-camera rig calibrated from its own material: checkerboards, keypoints, video frames.

Per camera: the lens from its checkerboard photos (`lens`), then its pose from its pitch keypoints
(`keypoints`, RANSAC), with the lens refined on the keypoints as well. A camera without keypoints
is placed by features matched with the other camera in their overlap (`alignment`). Where both
have keypoints, the feature alignment still runs as an independent cross-check of the right
camera's pose. The result is the ``rig.json`` (`polyvision.geometry.Rig`, unchanged format) and a
report, written beside it as ``rig.report.json`` (`write_report`).

Why a separate report file: ``rig.json`` is what every stage and the API load and validate
strictly; the report is provenance (hundreds of figures, per-point residuals) that no stage
reads. Keeping it apart leaves the rig format, its version and every loader untouched, and the
report names the rig it describes by its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.calibration.alignment import FeatureAlignment, align_by_features
from polyvision.calibration.errors import CalibrationError
from polyvision.calibration.keypoints import (
    Keypoints,
    LensRefinement,
    fit_keypoints,
    load_keypoints,
    refine_lens_with_keypoints,
)
from polyvision.calibration.lens import LensCalibration, calibrate_lens
from polyvision.calibration.pose import PoseFit
from polyvision.calibration.report import (
    RelativePose,
    camera_angles,
    pose_difference,
    relative_pose,
)
from polyvision.geometry import RIG_VERSION, CameraModel, Rig
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

REPORT_VERSION = 1
CAMERAS = ("left", "right")


@dataclass(frozen=True)
class CameraInputs:
    """One camera's calibration material.

    Attributes:
        name: ``"left"`` or ``"right"``.
        video: The camera's recording (its size is the rig's image size; a frame of it is used
            for feature alignment).
        checkerboards: Folder of checkerboard photos.
        keypoints: CVAT point annotations of pitch landmarks, or None (placed by features).
    """

    name: str
    video: Path
    checkerboards: Path
    keypoints: Path | None = None


@dataclass(frozen=True)
class CalibrationOptions:
    """How to calibrate (the CLI's flags).

    Attributes:
        board: Checkerboard inner corners ``(columns, rows)``; found automatically when None.
        lens_model: ``"auto"``, ``"standard"`` or ``"fisheye"`` (see `calibrate_lens`).
        label_frame: Keypoint label convention: ``"auto"``, ``"near"`` or ``"far"``.
        refine_lens: Refine each lens on its keypoints (see `refine_lens_with_keypoints`).
        frame: Index of the video frame used for feature alignment.
        alignment_model: ``"ground"`` or ``"rotation"`` (see `align_by_features`).
        ransac_threshold_px: Keypoint RANSAC threshold (default: 1 % of the image width).
        cross_check: Also align the right camera by features when both have keypoints.
    """

    board: tuple[int, int] | None = None
    lens_model: str = "auto"
    label_frame: str = "auto"
    refine_lens: bool = True
    frame: int = 0
    alignment_model: str = "ground"
    ransac_threshold_px: float | None = None
    cross_check: bool = True


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """One camera's calibration and how it was obtained.

    Attributes:
        inputs: Its material.
        image_size: ``(width, height)`` of its video.
        lens: The checkerboard calibration.
        refinement: The lens refined with the keypoints, where run.
        keypoints: The keypoints, where given.
        pose_fit: The keypoint pose fit, where keypoints were given.
        label_frame: The keypoint label convention used.
        alignment: The feature alignment that placed it, for a camera without keypoints.
        camera: The calibrated camera.
    """

    inputs: CameraInputs
    image_size: tuple[int, int]
    lens: LensCalibration
    refinement: LensRefinement | None
    keypoints: Keypoints | None
    pose_fit: PoseFit | None
    label_frame: str | None
    alignment: FeatureAlignment | None
    camera: CameraModel

    @property
    def source(self) -> str:
        """Where the pose comes from: ``"keypoints"`` or ``"features"``."""
        return "keypoints" if self.pose_fit is not None else "features"


@dataclass(frozen=True)
class CrossCheck:
    """The right camera placed by features too, compared with its keypoint pose."""

    alignment: FeatureAlignment | None
    rotation_deg: float
    center_m: float
    error: str | None = None


@dataclass(frozen=True, eq=False)
class RigCalibration:
    """The calibrated rig with every figure of how it was obtained."""

    rig: Rig
    cameras: dict[str, CameraCalibration]
    relative: RelativePose
    cross_check: CrossCheck | None
    options: CalibrationOptions
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """The human-readable report the CLI prints."""
        lines: list[str] = []
        for name in CAMERAS:
            cal = self.cameras[name]
            lines.append(cal.lens.summary())
            if cal.pose_fit is not None:
                lines.append(
                    f"{cal.pose_fit.summary()}\n  keypoints {cal.inputs.keypoints}: labels "
                    f"measure y from the {cal.label_frame} touchline"
                )
                if cal.refinement is not None:
                    lines.append(cal.refinement.summary())
            if cal.alignment is not None:
                lines.append(cal.alignment.summary())
                if cal.refinement is not None:
                    lines.append(cal.refinement.summary("ground matches"))
            angles = camera_angles(cal.camera)
            lines.append(
                f"  {name} camera: pan {angles.pan_deg:+.2f}°, tilt {angles.tilt_deg:.2f}°, "
                f"roll {angles.roll_deg:+.2f}° (pose from {cal.source})"
            )
        lines.append(self.relative.summary())
        check = self.cross_check
        if check is not None:
            if check.alignment is None:
                lines.append(f"feature cross-check of the right camera failed: {check.error}")
            else:
                lines.append(
                    f"feature cross-check: {check.alignment.summary()}\n"
                    f"  vs its keypoint pose: {check.rotation_deg:.2f}° and "
                    f"{check.center_m:.2f} m apart"
                )
        lines.append(
            "timings: "
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in self.timings.items())
        )
        return "\n".join(lines)

    def to_report(self, rig_path: Path | None = None) -> dict[str, Any]:
        """The ``rig.report.json`` document (JSON-compatible)."""
        cameras: dict[str, Any] = {}
        for name, cal in self.cameras.items():
            angles = camera_angles(cal.camera)
            entry: dict[str, Any] = {
                "source": cal.source,
                "inputs": {
                    "video": str(cal.inputs.video),
                    "checkerboards": str(cal.inputs.checkerboards),
                    "keypoints": None
                    if cal.inputs.keypoints is None
                    else str(cal.inputs.keypoints),
                },
                "image_size": list(cal.image_size),
                "lens": cal.lens.to_report(),
                "lens_refinement": None if cal.refinement is None else cal.refinement.to_report(),
                "keypoints": None,
                "alignment": None if cal.alignment is None else cal.alignment.to_report(),
                "pose": {
                    "rvec": cal.camera.rvec.tolist(),
                    "tvec": cal.camera.tvec.tolist(),
                    "center_m": cal.camera.center.tolist(),
                    "pan_deg": round(angles.pan_deg, 4),
                    "tilt_deg": round(angles.tilt_deg, 4),
                    "roll_deg": round(angles.roll_deg, 4),
                },
            }
            if cal.pose_fit is not None and cal.keypoints is not None and cal.label_frame:
                entry["keypoints"] = {
                    "file": str(cal.keypoints.source),
                    "label_frame": cal.label_frame,
                    **cal.pose_fit.to_report(
                        cal.keypoints.pitch_xy(cal.label_frame), cal.keypoints.image_xy
                    ),
                }
            cameras[name] = entry
        check = self.cross_check
        document: dict[str, Any] = {
            "report_version": REPORT_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "rig": {
                "file": None if rig_path is None else rig_path.name,
                "sha256": None if rig_path is None else _sha256(rig_path),
                "version": self.rig.version,
            },
            "options": {
                "board": None if self.options.board is None else list(self.options.board),
                "lens_model": self.options.lens_model,
                "label_frame": self.options.label_frame,
                "refine_lens": self.options.refine_lens,
                "frame": self.options.frame,
                "alignment_model": self.options.alignment_model,
                "ransac_threshold_px": self.options.ransac_threshold_px,
            },
            "cameras": cameras,
            "relative_pose": self.relative.to_report(),
            "feature_cross_check": None
            if check is None
            else {
                "error": check.error,
                "alignment": None if check.alignment is None else check.alignment.to_report(),
                "vs_keypoints_rotation_deg": _finite(check.rotation_deg),
                "vs_keypoints_center_m": _finite(check.center_m),
            },
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        return document


def _finite(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_path_for(rig_path: Path) -> Path:
    """Where the report of ``rig_path`` goes: ``rig.json`` -> ``rig.report.json``."""
    return rig_path.with_name(f"{rig_path.stem}.report.json")


def write_report(
    calibration: RigCalibration, rig_path: Path, report_path: Path | None = None
) -> Path:
    """Write the report of a rig already saved at ``rig_path``; returns the report's path."""
    path = report_path or report_path_for(rig_path)
    path.write_text(json.dumps(calibration.to_report(rig_path), indent=2) + "\n", encoding="utf-8")
    return path


def read_frame(video: Path, index: int = 0) -> npt.NDArray[np.uint8]:
    """Frame ``index`` of a video as a BGR image.

    Raises:
        CalibrationError: The video is missing, unreadable or shorter than ``index + 1`` frames.
    """
    if not video.is_file():
        raise CalibrationError(f"video not found: {video}")
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise CalibrationError(f"cannot open video {video}")
        if index > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise CalibrationError(f"cannot read frame {index} of {video}")
    return np.asarray(frame, np.uint8)


def calibrate_rig(
    left: CameraInputs, right: CameraInputs, options: CalibrationOptions | None = None
) -> RigCalibration:
    """Calibrate a two-camera rig from its checkerboards, keypoints and video frames.

    Raises:
        CalibrationError: (or a subclass) with a one-line message: a missing file, no board, too
            few photos or points, degenerate points, no camera with keypoints, a failed fit.
    """
    options = options or CalibrationOptions()
    inputs = {"left": left, "right": right}
    if left.keypoints is None and right.keypoints is None:
        raise CalibrationError(
            "neither camera has keypoints: at least one needs pitch keypoints to place the rig "
            "on the pitch (the other can be placed by features)"
        )
    timings: dict[str, float] = {}
    frames: dict[str, npt.NDArray[np.uint8]] = {}
    lenses: dict[str, LensCalibration] = {}
    for name in CAMERAS:
        started = time.monotonic()
        frames[name] = read_frame(inputs[name].video, options.frame)
        height, width = frames[name].shape[:2]
        timings[f"{name} video frame"] = time.monotonic() - started
        started = time.monotonic()
        lenses[name] = calibrate_lens(
            inputs[name].checkerboards,
            name=name,
            image_size=(int(width), int(height)),
            board=options.board,
            model=options.lens_model,
        )
        timings[f"{name} lens"] = time.monotonic() - started

    results: dict[str, CameraCalibration] = {}
    for name in CAMERAS:
        path = inputs[name].keypoints
        if path is None:
            continue
        started = time.monotonic()
        lens = lenses[name]
        keypoints = load_keypoints(path)
        fit, label_frame = fit_keypoints(
            keypoints,
            lens.camera_matrix,
            lens.distortion,
            lens.image_size,
            name,
            label_frame=options.label_frame,
            ransac_threshold_px=options.ransac_threshold_px,
        )
        refinement = None
        if options.refine_lens:
            refinement, fit = refine_lens_with_keypoints(
                lens, keypoints, fit, label_frame, ransac_threshold_px=options.ransac_threshold_px
            )
        results[name] = CameraCalibration(
            inputs=inputs[name],
            image_size=lens.image_size,
            lens=lens,
            refinement=refinement,
            keypoints=keypoints,
            pose_fit=fit,
            label_frame=label_frame,
            alignment=None,
            camera=fit.camera,
        )
        timings[f"{name} keypoints"] = time.monotonic() - started

    for name in CAMERAS:
        if name in results:
            continue
        other = "right" if name == "left" else "left"
        started = time.monotonic()
        lens = lenses[name]
        alignment = align_by_features(
            results[other].camera,
            frames[other],
            frames[name],
            lens.camera_matrix,
            lens.distortion,
            name,
            model=options.alignment_model,
        )
        camera = alignment.camera
        refinement = None
        if options.refine_lens and alignment.pose_fit is not None:
            # The matches on the ground are ground landmarks too: refine the lens on them as on
            # keypoints (they cover only the overlap, but that is where this camera joins).
            matched = Keypoints(
                source=inputs[name].video,
                image_xy=alignment.target_xy,
                label_xy=alignment.ground_xy,
                labels=[f"match {i}" for i in range(len(alignment.target_xy))],
                image_size=lens.image_size,
            )
            refinement, refitted = refine_lens_with_keypoints(
                lens,
                matched,
                alignment.pose_fit,
                "near",
                ransac_threshold_px=alignment.threshold_px,
            )
            camera = refitted.camera
        results[name] = CameraCalibration(
            inputs=inputs[name],
            image_size=lens.image_size,
            lens=lens,
            refinement=refinement,
            keypoints=None,
            pose_fit=None,
            label_frame=None,
            alignment=alignment,
            camera=camera,
        )
        timings[f"{name} feature alignment"] = time.monotonic() - started

    cross_check: CrossCheck | None = None
    if options.cross_check and all(results[n].pose_fit is not None for n in CAMERAS):
        started = time.monotonic()
        right_cal = results["right"]
        try:
            aligned = align_by_features(
                results["left"].camera,
                frames["left"],
                frames["right"],
                right_cal.camera.camera_matrix,
                right_cal.camera.distortion,
                "right",
                model=options.alignment_model,
            )
        except CalibrationError as error:
            cross_check = CrossCheck(None, math.nan, math.nan, str(error))
        else:
            angle, distance = pose_difference(aligned.camera, right_cal.camera)
            cross_check = CrossCheck(aligned, angle, distance)
        timings["feature cross-check"] = time.monotonic() - started

    for name in CAMERAS:
        y = float(results[name].camera.center[1])
        if y >= 0:
            raise CalibrationError(
                f"camera {name!r} fitted at y = {y:.1f} m, not beyond the near touchline (y < 0); "
                "check the keypoint label convention (--label-frame)"
            )
    rig = Rig(
        version=RIG_VERSION,
        pitch_length_m=PITCH_LENGTH_M,
        pitch_width_m=PITCH_WIDTH_M,
        cameras={name: results[name].camera for name in CAMERAS},
    )
    return RigCalibration(
        rig=rig,
        cameras=results,
        relative=relative_pose(results["left"].camera, results["right"].camera),
        cross_check=cross_check,
        options=options,
        timings=timings,
    )
