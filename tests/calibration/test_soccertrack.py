"""The real SoccerTrack rig from its calibration files (skipped where the data is absent).

Findings these tests pin down: the labels measure ``y`` from the far touchline (mapped to
``68 - y``); the right file's point labelled (99.5, 0) is about 68 m off and rejected; and the
right camera's own lens files do not model its image well (lines stay curved after
undistortion), so its own-lens fit is loose, while the left camera's lens model fits the right
keypoints about as well as the left ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyvision.calibration.cvat import load_cvat_points
from polyvision.calibration.pose import PoseFit
from polyvision.calibration.soccertrack import build_soccertrack_rig
from polyvision.geometry import CameraModel, Rig, project

REPO = Path(__file__).resolve().parents[2]
SOCCERTRACK = Path(os.environ.get("PV_TEST_DATA", REPO.parent / "shared" / "data")) / (
    "soccertrack-v1"
)

pytestmark = pytest.mark.skipif(
    not SOCCERTRACK.is_dir(), reason=f"SoccerTrack data not at {SOCCERTRACK} (set PV_TEST_DATA)"
)


@pytest.fixture(scope="module")
def built() -> tuple[Rig, dict[str, PoseFit]]:
    return build_soccertrack_rig(SOCCERTRACK)


@pytest.fixture(scope="module")
def right_with_left_lens() -> PoseFit:
    return build_soccertrack_rig(SOCCERTRACK, lens_from={"right": "left"})[1]["right"]


def sees(camera: CameraModel, xy: tuple[float, float]) -> bool:
    (pixel,), (ok,) = project(camera, [[xy[0], xy[1], 0.0]])
    width, height = camera.image_size
    return bool(ok) and 0 <= pixel[0] <= width - 1 and 0 <= pixel[1] <= height - 1


def test_left_camera_fits(built) -> None:
    fit = built[1]["left"]
    assert fit.inliers.sum() >= 30
    assert fit.rms_m < 1.0
    assert fit.homography_rms_m < 0.7  # the README's ~0.5 m


def test_right_camera_rejects_the_mislabelled_point(built) -> None:
    fit = built[1]["right"]
    mislabelled = [o for o in fit.outliers if o.label == "(99.5,0)"]
    assert len(mislabelled) == 1
    assert mislabelled[0].error_m > 50.0
    assert fit.rms_m < 3.0  # loose: see test_right_lens_files_are_suspect


def test_right_camera_with_left_lens_fits(right_with_left_lens: PoseFit) -> None:
    fit = right_with_left_lens
    assert fit.rms_m < 1.5
    assert fit.inliers.sum() >= 30
    assert "(99.5,0)" in [o.label for o in fit.outliers]


def test_right_lens_files_are_suspect() -> None:
    """Near-touchline points undistorted with each lens model: how far from a straight line."""
    points = [
        p for p in load_cvat_points(SOCCERTRACK / "right_keypoints.xml") if p.pitch_xy[1] == 68
    ]
    pixels = np.array([p.image_xy for p in points]).reshape(-1, 1, 2)

    def curvature(lens: str) -> float:
        matrix = np.load(SOCCERTRACK / f"{lens}_camera_matrix.npy")
        distortion = np.load(SOCCERTRACK / f"{lens}_distortion_coefficients.npy")
        line = cv2.undistortPoints(pixels, matrix, distortion, P=matrix).reshape(-1, 2)
        centred = line - line.mean(axis=0)
        normal = np.linalg.svd(centred)[2][1]
        return float(np.abs(centred @ normal).max())

    assert curvature("right") > 20.0
    assert curvature("left") < 5.0


@pytest.mark.parametrize("name", ["left", "right"])
def test_cameras_stand_above_ground_beyond_near_touchline(built, name: str) -> None:
    x, y, z = built[0].cameras[name].center
    assert 3.0 < z < 60.0
    assert y < 0.0
    assert 0.0 < x < 105.0


def test_views_overlap_at_the_halfway_line(built) -> None:
    rig = built[0]
    assert sees(rig.cameras["left"], (52.5, 34.0))
    assert sees(rig.cameras["right"], (52.5, 34.0))
    assert sees(rig.cameras["left"], (5.0, 34.0)) and not sees(rig.cameras["right"], (5.0, 34.0))
    assert sees(rig.cameras["right"], (100.0, 34.0)) and not sees(
        rig.cameras["left"], (100.0, 34.0)
    )


def test_rig_saves_and_reloads(built, tmp_path: Path) -> None:
    rig = built[0]
    path = tmp_path / "rig.json"
    rig.save(path)
    loaded = Rig.load(path)
    assert (loaded.pitch_length_m, loaded.pitch_width_m) == (105.0, 68.0)
    for name, camera in rig.cameras.items():
        again = loaded.cameras[name]
        assert again.image_size == (3072, 1728)
        np.testing.assert_allclose(again.rvec, camera.rvec)
        np.testing.assert_allclose(again.tvec, camera.tvec)
        np.testing.assert_allclose(again.camera_matrix, camera.camera_matrix)
        np.testing.assert_allclose(again.distortion, camera.distortion)


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    from polyvision.calibration.errors import CalibrationError

    with pytest.raises(CalibrationError, match="not found"):
        build_soccertrack_rig(tmp_path / "absent")
    with pytest.raises(CalibrationError, match="missing camera matrix"):
        build_soccertrack_rig(tmp_path)
