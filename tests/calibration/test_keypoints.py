"""Pitch keypoints: label conventions, RANSAC rejection, degenerate inputs, lens refinement."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from polyvision.calibration.errors import (
    CalibrationError,
    DegenerateGeometryError,
    TooFewPointsError,
)
from polyvision.calibration.keypoints import (
    Keypoints,
    fit_keypoints,
    load_keypoints,
    refine_lens_with_keypoints,
)
from polyvision.calibration.lens import LensCalibration, calibrate_lens
from polyvision.geometry import CameraModel, project
from synth.rig import default_rig
from tests.calibration.boards import write_photos

WIDTH, HEIGHT = 1920, 1080
MISLABELLED = 9
# A stronger lens than the synthetic rig's, so that lens errors show.
LENS = np.array([-0.3, 0.09, 0.002, 0.0, 0.0])


@pytest.fixture(scope="module")
def camera() -> CameraModel:
    base = default_rig(WIDTH, HEIGHT).cameras["left"]
    return dataclasses.replace(base, distortion=LENS)


def landmarks(camera: CameraModel, noise_px: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Pitch markings of the left half seen by the camera: noisy pixels, pitch positions."""
    xs = np.arange(0.0, 56.0, 5.5)
    ys = np.array([0.0, 13.84, 24.84, 34.0, 43.16, 54.16, 68.0])
    pitch = np.array([(x, y) for x in xs for y in ys])
    pixels, ok = project(camera, np.c_[pitch, np.zeros(len(pitch))])
    inside = ok & np.all((pixels >= 0) & (pixels <= [WIDTH - 1, HEIGHT - 1]), axis=1)
    rng = np.random.default_rng(7)
    noisy = pixels[inside] + rng.normal(0.0, noise_px, size=(int(inside.sum()), 2))
    return noisy, pitch[inside]


def write_cvat(path: Path, pixels: np.ndarray, labels: np.ndarray, size=(WIDTH, HEIGHT)) -> Path:
    """A "CVAT for images 1.1" export with one point per landmark."""
    points = "\n".join(
        f'    <points label="({lx:g},{ly:g})" points="{px:.2f},{py:.2f}" occluded="0"/>'
        for (px, py), (lx, ly) in zip(pixels, labels, strict=True)
    )
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<annotations>\n"
        f'  <image id="0" name="frame0.png" width="{size[0]}" height="{size[1]}">\n'
        f"{points}\n  </image>\n</annotations>\n",
        encoding="utf-8",
    )
    return path


def keypoints_of(pixels: np.ndarray, pitch: np.ndarray) -> Keypoints:
    return Keypoints(
        source=Path("synthetic.xml"),
        image_xy=pixels,
        label_xy=pitch,
        labels=[f"({x:g},{y:g})" for x, y in pitch],
        image_size=(WIDTH, HEIGHT),
    )


def test_far_touchline_labels_found_and_mislabelled_point_rejected(
    camera: CameraModel, tmp_path: Path
) -> None:
    pixels, pitch = landmarks(camera)
    labels = np.c_[pitch[:, 0], 68.0 - pitch[:, 1]]  # SoccerTrack's convention
    labels[MISLABELLED] = (99.5, 0.0)  # a wrong label, as in SoccerTrack's right file
    keypoints = load_keypoints(write_cvat(tmp_path / "kp.xml", pixels, labels))
    assert keypoints.image_size == (WIDTH, HEIGHT)

    fit, frame = fit_keypoints(
        keypoints, camera.camera_matrix, camera.distortion, camera.image_size, "left"
    )
    assert frame == "far"
    assert [o.index for o in fit.outliers] == [MISLABELLED]
    outlier = fit.outliers[0]
    assert outlier.label == "(99.5,0)"
    assert outlier.pitch_xy == (99.5, 68.0)
    assert outlier.error_px > 100 and outlier.error_m > 30
    assert fit.rms_px < 1.0
    assert np.linalg.norm(fit.camera.center - camera.center) < 0.2
    summary = fit.summary()
    assert "outlier (99.5,0) at pixel" in summary and "pitch (99.50, 68.00) m" in summary
    report = fit.to_report(keypoints.pitch_xy(frame), keypoints.image_xy)
    assert [r["label"] for r in report["rejected"]] == ["(99.5,0)"]
    assert report["rejected"][0]["error_px"] > 100
    assert report["inliers"] == len(pitch) - 1

    # The same labels read in the project's convention fit no camera above the ground.
    with pytest.raises(CalibrationError, match=r"below the ground|no pose"):
        fit_keypoints(
            keypoints,
            camera.camera_matrix,
            camera.distortion,
            camera.image_size,
            "left",
            label_frame="near",
        )


def test_keypoints_of_another_frame_size(camera: CameraModel, tmp_path: Path) -> None:
    pixels, pitch = landmarks(camera)
    keypoints = load_keypoints(write_cvat(tmp_path / "kp.xml", pixels, pitch, size=(1280, 720)))
    with pytest.raises(CalibrationError, match="annotated on 1280x720 frames"):
        fit_keypoints(keypoints, camera.camera_matrix, camera.distortion, (WIDTH, HEIGHT), "left")


def test_points_on_one_line_are_degenerate(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    on_touchline = pitch[:, 1] == 0.0
    assert on_touchline.sum() >= 6
    with pytest.raises(DegenerateGeometryError, match="lie on one line") as error:
        fit_keypoints(
            keypoints_of(pixels[on_touchline], pitch[on_touchline]),
            camera.camera_matrix,
            camera.distortion,
            camera.image_size,
            "left",
            label_frame="near",
        )
    assert "\n" not in str(error.value)
    # Nearly on one line: the touchline and one point 20 cm off it.
    near = pitch[on_touchline].copy()
    near[3, 1] = 0.2
    with pytest.raises(DegenerateGeometryError, match="one line"):
        fit_keypoints(
            keypoints_of(pixels[on_touchline], near),
            camera.camera_matrix,
            camera.distortion,
            camera.image_size,
            "left",
        )


def test_coincident_and_too_few_points(camera: CameraModel) -> None:
    pixels, pitch = landmarks(camera)
    same = np.repeat(pitch[:1], 8, axis=0)
    with pytest.raises(DegenerateGeometryError, match="coincide"):
        fit_keypoints(
            keypoints_of(pixels[:8], same),
            camera.camera_matrix,
            camera.distortion,
            camera.image_size,
            "left",
            label_frame="near",
        )
    with pytest.raises(TooFewPointsError, match="5 points, at least 6"):
        fit_keypoints(
            keypoints_of(pixels[:5], pitch[:5]),
            camera.camera_matrix,
            camera.distortion,
            camera.image_size,
            "left",
            label_frame="near",
        )


@pytest.fixture(scope="module")
def quarter_lens(camera: CameraModel, tmp_path_factory: pytest.TempPathFactory) -> LensCalibration:
    """The lens from boards held in the top-right quarter of the image only (as SoccerTrack's
    right camera's were)."""
    folder = tmp_path_factory.mktemp("quarter")
    write_photos(
        folder,
        (WIDTH, HEIGHT),
        (9, 6),
        camera.camera_matrix,
        camera.distortion,
        count=8,
        distance=30.0,
        spread=0.5,
        offset=(0.35, -0.2),
    )
    lens = calibrate_lens(folder, name="left", board=(9, 6))
    assert lens.coverage < 0.3
    return lens


def test_refinement_not_kept_when_the_board_lens_already_fits(
    camera: CameraModel, quarter_lens: LensCalibration
) -> None:
    pixels, pitch = landmarks(camera, noise_px=1.0)
    keypoints = keypoints_of(pixels, pitch)
    fit, frame = fit_keypoints(
        keypoints, quarter_lens.camera_matrix, quarter_lens.distortion, (WIDTH, HEIGHT), "left"
    )
    refinement, kept = refine_lens_with_keypoints(quarter_lens, keypoints, fit, frame)
    # Freeing nine lens parameters only fits the clicking noise a little better.
    assert not refinement.accepted
    assert "does not fit the points significantly better" in refinement.reason
    assert kept is fit


def test_refinement_repairs_a_lens_that_misses_the_keypoints(
    camera: CameraModel, quarter_lens: LensCalibration
) -> None:
    # The principal point 60 px off, as an extrapolated checkerboard fit can leave it.
    matrix = quarter_lens.camera_matrix.copy()
    matrix[1, 2] -= 60.0
    wrong = dataclasses.replace(quarter_lens, camera_matrix=matrix)
    pixels, pitch = landmarks(camera, noise_px=1.0)
    keypoints = keypoints_of(pixels, pitch)
    fit, frame = fit_keypoints(
        keypoints, wrong.camera_matrix, wrong.distortion, (WIDTH, HEIGHT), "left"
    )
    refinement, kept = refine_lens_with_keypoints(wrong, keypoints, fit, frame)
    assert refinement.accepted, refinement.reason
    assert refinement.keypoint_rms_after_px < refinement.keypoint_rms_before_px
    assert refinement.keypoint_rms_after_px < 1.6
    assert abs(refinement.camera_matrix[1, 2] - camera.camera_matrix[1, 2]) < 10.0
    assert np.linalg.norm(kept.camera.center - camera.center) < 0.3
    assert "kept" in refinement.summary()
