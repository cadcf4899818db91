"""Lens calibration on synthetic checkerboard photos rendered through a known lens."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyvision.calibration.errors import (
    BoardNotFoundError,
    CalibrationError,
    TooFewPointsError,
)
from polyvision.calibration.lens import (
    calibrate_lens,
    fisheye_to_standard,
    parse_board,
    scale_intrinsics,
)
from tests.calibration.boards import write_photos

SIZE = (1280, 720)
BOARD = (9, 6)
MATRIX = np.array([[1000.0, 0.0, 645.0], [0.0, 1000.0, 355.0], [0.0, 0.0, 1.0]])
DISTORTION = np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
FISHEYE_MATRIX = np.array([[500.0, 0.0, 640.0], [0.0, 500.0, 360.0], [0.0, 0.0, 1.0]])
FISHEYE_COEFFICIENTS = np.array([0.03, -0.01, 0.0, 0.0])


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("boards")
    write_photos(folder, SIZE, BOARD, MATRIX, DISTORTION)
    return folder


@pytest.fixture(scope="module")
def fisheye_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fisheye")
    write_photos(
        folder,
        SIZE,
        BOARD,
        FISHEYE_MATRIX,
        FISHEYE_COEFFICIENTS,
        model="fisheye",
        distance=14.0,
        spread=2.0,
    )
    return folder


def image_grid(size: tuple[int, int], step: int = 40) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(0, size[0], step), np.arange(0, size[1], step))
    return np.c_[xs.ravel(), ys.ravel()].astype(np.float64)


def mapping_error_px(
    matrix: np.ndarray,
    distortion: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray],
    corners: list[np.ndarray],
) -> float:
    """Largest pixel distance between two standard lenses' projections where the boards were.

    Outside the area the board corners cover, a lens is extrapolated, not measured.
    """
    hull = cv2.convexHull(np.concatenate(corners).astype(np.float32))
    pixels = np.array(
        [p for p in image_grid(SIZE, 20) if cv2.pointPolygonTest(hull, (p[0], p[1]), False) > 0]
    )
    rays = cv2.undistortPoints(pixels.reshape(-1, 1, 2), truth[0], truth[1]).reshape(-1, 2)
    world = np.c_[rays, np.ones(len(rays))]
    projected, _ = cv2.projectPoints(world, np.zeros(3), np.zeros(3), matrix, distortion)
    return float(np.abs(projected.reshape(-1, 2) - pixels).max())


def test_recovers_a_known_lens(photos: Path) -> None:
    lens = calibrate_lens(photos, name="left")
    assert lens.detections.board == BOARD and not lens.detections.board_given
    assert lens.used == 12 and not lens.detections.skipped
    assert lens.image_size == SIZE
    assert lens.chosen == "standard"
    assert lens.standard.rms_px < 0.2
    assert lens.fisheye.ok and lens.fisheye.rms_px > 0  # both models reported
    np.testing.assert_allclose(np.diag(lens.camera_matrix)[:2], [1000.0, 1000.0], rtol=0.01)
    np.testing.assert_allclose(lens.camera_matrix[:2, 2], MATRIX[:2, 2], atol=3.0)
    # The coefficients trade off against each other: compare what they do to the image.
    error = mapping_error_px(
        lens.camera_matrix, lens.distortion, (MATRIX, DISTORTION), lens.corners
    )
    assert error < 1.0
    assert "standard 0.1" in lens.summary() or "standard 0.0" in lens.summary()
    report = lens.to_report()
    assert report["board_inner_corners"] == [9, 6] and report["chosen"] == "standard"


def test_photos_at_another_resolution_are_rescaled(photos: Path) -> None:
    video = (SIZE[0] // 2, SIZE[1] // 2)
    lens = calibrate_lens(photos, name="left", image_size=video, board=BOARD)
    expected = scale_intrinsics(MATRIX, SIZE, video)
    np.testing.assert_allclose(lens.camera_matrix[0, 0], expected[0, 0], rtol=0.01)
    np.testing.assert_allclose(lens.camera_matrix[:2, 2], expected[:2, 2], atol=1.5)
    assert lens.image_size == video
    assert "rescaled" in lens.summary()
    with pytest.raises(CalibrationError, match="aspect"):
        calibrate_lens(photos, name="left", image_size=(640, 480), board=BOARD)


def test_scale_intrinsics_keeps_pixel_centres() -> None:
    scaled = scale_intrinsics(MATRIX, (1280, 720), (2560, 1440))
    assert scaled[0, 0] == 2000.0
    assert scaled[0, 2] == (645.0 + 0.5) * 2 - 0.5


def test_unusable_photos_are_reported_and_skipped(photos: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(photos, folder)
    cv2.imwrite(str(folder / "blank.png"), np.full((SIZE[1], SIZE[0]), 128, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not an image")
    lens = calibrate_lens(folder, name="left", board=BOARD)
    skipped = {s.name: s.reason for s in lens.detections.skipped}
    assert skipped == {"blank.png": "no 9x6 board found", "broken.jpg": "not a readable image"}
    assert lens.used == 12
    assert "skipped blank.png" in lens.summary()


def test_too_few_photos_with_a_board(photos: Path, tmp_path: Path) -> None:
    folder = tmp_path / "few"
    folder.mkdir()
    for name in ("0.png", "1.png", "2.png"):
        shutil.copy(photos / name, folder / name)
    for k in range(3):
        cv2.imwrite(str(folder / f"blank{k}.png"), np.full((SIZE[1], SIZE[0]), 90, np.uint8))
    with pytest.raises(TooFewPointsError, match=r"found in 3 of 6 photos.*at least 5") as error:
        calibrate_lens(folder, name="left", board=BOARD)
    assert "\n" not in str(error.value)


def test_no_board_anywhere(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for k in range(2):
        noise = rng.integers(0, 255, (180, 320), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"{k}.png"), noise)
    with pytest.raises(BoardNotFoundError, match="--board COLSxROWS"):
        calibrate_lens(tmp_path, name="left")
    with pytest.raises(BoardNotFoundError, match="no 9x6 checkerboard found"):
        calibrate_lens(tmp_path, name="left", board=BOARD)
    with pytest.raises(CalibrationError, match="not found"):
        calibrate_lens(tmp_path / "absent", name="left")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BoardNotFoundError, match="no image"):
        calibrate_lens(empty, name="left")


def test_parse_board() -> None:
    assert parse_board("9x6") == (9, 6)
    assert parse_board(" 7 X 5 ") == (7, 5)
    for bad in ("9", "9x", "1x6", "ax6", "9x6x2"):
        with pytest.raises(CalibrationError, match="COLSxROWS"):
            parse_board(bad)


def test_fisheye_to_standard_reproduces_a_mild_fisheye() -> None:
    matrix_f = np.array([[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0], [0.0, 0.0, 1.0]])
    coeff_f = np.array([-0.05, 0.01, 0.0, 0.0])
    matrix, distortion, rms, worst, share = fisheye_to_standard(matrix_f, coeff_f, SIZE)
    assert share == 1.0
    assert rms < 0.1 and worst < 0.5
    rays = cv2.fisheye.undistortPoints(image_grid(SIZE).reshape(-1, 1, 2), matrix_f, coeff_f)
    world = np.c_[rays.reshape(-1, 2), np.ones(len(rays.reshape(-1, 2)))]
    standard, _ = cv2.projectPoints(world, np.zeros(3), np.zeros(3), matrix, distortion)
    assert np.abs(standard.reshape(-1, 2) - image_grid(SIZE)).max() < 0.5


def test_both_models_reported_and_a_fisheye_lens_is_written_as_standard(
    fisheye_photos: Path,
) -> None:
    lens = calibrate_lens(fisheye_photos, name="right", board=BOARD)
    assert lens.standard.ok and lens.fisheye.ok
    # A fisheye lens: its own model fits at least as well as the standard one.
    assert lens.fisheye.rms_px <= lens.standard.rms_px + 1e-3
    assert lens.conversion is not None  # fisheye won, so its conversion was tried and reported
    assert lens.rms_px <= min(lens.standard.rms_px, lens.conversion.board_rms_px) + 1e-9
    forced = calibrate_lens(fisheye_photos, name="right", board=BOARD, model="fisheye")
    assert forced.chosen == "fisheye"
    assert forced.conversion is not None and forced.conversion.accepted
    assert forced.distortion.shape == (5,)
    assert forced.rms_px < 0.5  # the converted lens still fits the board
    # Where the conversion covers the image, it reproduces the fisheye lens.
    assert forced.conversion.rms_px < 1.0


def test_unknown_lens_model(photos: Path) -> None:
    with pytest.raises(CalibrationError, match="lens model"):
        calibrate_lens(photos, name="left", model="spherical")
