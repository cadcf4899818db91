"""Pose fitting on synthetic landmarks seen through the virtual rig's left camera."""

from __future__ import annotations

import numpy as np
import pytest

from polyvision.calibration.errors import CalibrationError
from polyvision.calibration.pose import PoseFit, fit_camera_pose
from polyvision.geometry import CameraModel, project
from synth.rig import default_rig

WIDTH, HEIGHT = 1920, 1080
OUTLIER = 7


@pytest.fixture(scope="module")
def camera() -> CameraModel:
    return default_rig(WIDTH, HEIGHT).cameras["left"]


def landmarks(camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """Pitch markings on the left half visible in the camera, and their noisy pixels."""
    xs = np.arange(0.0, 56.0, 5.5)
    ys = np.array([0.0, 13.84, 24.84, 34.0, 43.16, 54.16, 68.0])
    pitch = np.array([(x, y) for x in xs for y in ys])
    pixels, ok = project(camera, np.c_[pitch, np.zeros(len(pitch))])
    inside = ok & np.all((pixels >= 0) & (pixels <= [WIDTH - 1, HEIGHT - 1]), axis=1)
    rng = np.random.default_rng(7)
    noisy = pixels[inside] + rng.normal(0.0, 0.5, size=(int(inside.sum()), 2))
    return noisy, pitch[inside]


def fit(camera: CameraModel, pixels: np.ndarray, pitch: np.ndarray, **kwargs) -> PoseFit:
    return fit_camera_pose(
        pixels,
        pitch,
        camera.camera_matrix,
        camera.distortion,
        camera.image_size,
        "left",
        labels=[f"({p[0]:g},{p[1]:g})" for p in pitch],
        **kwargs,
    )


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def test_recovers_pose_and_flags_gross_outlier(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    assert len(pitch) >= 30
    labelled = pitch.copy()
    labelled[OUTLIER] += (25.0, 10.0)  # a wrong label, as in SoccerTrack's right file
    result = fit(camera, pixels, labelled)

    assert np.linalg.norm(result.camera.center - camera.center) < 0.1
    assert angle_deg(result.camera.rotation, camera.rotation) < 0.05
    assert [o.index for o in result.outliers] == [OUTLIER]
    assert result.outliers[0].error_m > 20.0
    assert result.outliers[0].label == f"({pitch[OUTLIER][0] + 25:g},{pitch[OUTLIER][1] + 10:g})"
    assert result.inliers.sum() == len(pitch) - 1
    assert result.rms_px < 1.0
    assert result.rms_m < 0.2
    assert not result.homography_inliers[OUTLIER]
    # The intrinsics are exact, so the homography on undistorted pixels agrees with the pose.
    assert result.pose_vs_homography_m < 0.1
    assert "1 outlier" not in result.summary() and "outlier (" in result.summary()


def test_mirrored_labels_put_the_camera_below_ground(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    mirrored = np.c_[pitch[:, 0], 68.0 - pitch[:, 1]]
    with pytest.raises(CalibrationError, match="below the ground"):
        fit(camera, pixels, mirrored)


def test_too_few_points(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    with pytest.raises(CalibrationError, match="at least 6 are needed"):
        fit(camera, pixels[:5], pitch[:5])


def test_too_few_inliers(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    scrambled = np.random.default_rng(3).permutation(pitch)
    with pytest.raises(CalibrationError, match=r"at least 6|no pose supported"):
        fit(camera, pixels, scrambled, ransac_threshold_px=2.0)


def test_absurd_rms_is_rejected(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    with pytest.raises(CalibrationError, match="RMS ground error"):
        fit(camera, pixels, pitch, max_rms_m=1e-4)


def test_malformed_inputs(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    with pytest.raises(CalibrationError, match="on the ground"):
        fit(camera, pixels, np.c_[pitch, np.ones(len(pitch))])
    with pytest.raises(CalibrationError, match="image points but"):
        fit(camera, pixels[:-1], pitch)
    with pytest.raises(CalibrationError, match="shape"):
        fit(camera, pixels[:, :1], pitch)
