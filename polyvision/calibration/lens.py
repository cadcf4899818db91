"""A camera's lens (intrinsics and distortion) from photos of a checkerboard.

Steps: find the board's inner corners in every photo (`cv2.findChessboardCorners` on a copy
downscaled to about `DETECT_WIDTH` pixels, then `cv2.cornerSubPix` at full size), map them to
the video's pixel grid when the photos have another size, and fit two lens models on the same
corners: OpenCV's standard model (`cv2.calibrateCamera`, ``k1 k2 p1 p2 k3``) and its fisheye
model (`cv2.fisheye.calibrate`, ``k1..k4`` on the ray angle). Both RMS reprojection errors are
reported and the lower one is chosen (or the one asked for).

The project's camera model (`polyvision.geometry.CameraModel`, the ``rig.json`` format and every
stage that projects or undistorts) is the standard 5-coefficient model. A fisheye fit that wins is
therefore converted: standard coefficients are fitted to the fisheye mapping over the whole image
(`fisheye_to_standard`), and the converted lens is kept only if its own RMS on the checkerboard
corners still beats the standard fit. Keeping one model means no consumer can ever apply the
wrong formula to a camera, and ``rig.json`` keeps its format; a lens too wide for the standard
model (beyond ~150 degrees) would need the camera model extended, and the conversion's error,
reported in pixels, says when that is the case.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.calibration.errors import (
    BoardNotFoundError,
    CalibrationError,
    TooFewPointsError,
)
from polyvision.geometry import Float64Array

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
MIN_BOARD_IMAGES = 5
"""Fewest photos with a board found that a lens fit accepts."""

DETECT_WIDTH = 1024
"""Width of the downscaled copy the board is searched in; corners are refined at full size."""

PROBE_WIDTH = 768
"""Width of the copy the board size is probed in (a failed search of a partly visible board
costs about a second at 1024 pixels, and every candidate size may fail)."""

_COMMON_BOARDS_TEXT = (
    "13x9 12x9 11x8 12x8 10x8 10x7 11x7 9x7 9x6 10x6 8x7 8x6 7x6 9x5 8x5 7x5 6x5 10x5 "
    "7x4 6x4 5x4 8x4 5x3 4x3"
)
COMMON_BOARDS: tuple[tuple[int, int], ...] = tuple(
    sorted(
        {(int(c), int(r)) for c, r in (t.split("x") for t in _COMMON_BOARDS_TEXT.split())},
        key=lambda size: (-size[0] * size[1], -size[0]),
    )
)
"""Inner-corner counts ``(columns, rows)`` tried, most corners first, when none is given."""

AUTO_PROBE_IMAGES = 4
"""Photos probed for the board size when none is given (spread over the list)."""

MODELS = ("standard", "fisheye")

# A view whose RMS is this many times the median (and above OUTLIER_VIEW_MIN_PX) is dropped.
OUTLIER_VIEW_FACTOR = 3.0
OUTLIER_VIEW_MIN_PX = 1.0
# Cells of the image grid used to report how much of the image the corners cover.
COVERAGE_GRID = (8, 6)
# The fisheye-to-standard conversion's samples over the image.
_CONVERSION_GRID = (48, 27)
# Rays farther than this from the optical axis are left out of the conversion: the standard
# (pinhole) model's image radius grows as tan(angle) and cannot reach 90 degrees.
CONVERSION_MAX_ANGLE_DEG = 60.0
_FIND_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
# Probing sizes first with a global threshold: several times cheaper when a size is wrong.
_PROBE_FLAGS = cv2.CALIB_CB_FAST_CHECK
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-3)
_CALIB_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-9)
_BOARD_TEXT = re.compile(r"^\s*(\d+)\s*[xX*,]\s*(\d+)\s*$")


def parse_board(text: str) -> tuple[int, int]:
    """``"9x6"`` (inner corners, columns x rows) to ``(9, 6)``.

    Raises:
        CalibrationError: Not two integers of at least 2 separated by ``x``.
    """
    match = _BOARD_TEXT.match(text)
    if match is None or int(match.group(1)) < 2 or int(match.group(2)) < 2:
        raise CalibrationError(
            f"board {text!r} is not COLSxROWS inner corners (e.g. 9x6, each at least 2)"
        )
    return int(match.group(1)), int(match.group(2))


def list_images(folder: str | Path) -> list[Path]:
    """The image files of a folder, in natural order (``2.jpg`` before ``10.jpg``).

    Raises:
        CalibrationError: The folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"checkerboard folder not found: {folder}")
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise BoardNotFoundError(f"no image ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")

    def natural(path: Path) -> list[Any]:
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]

    return sorted(images, key=natural)


def scale_points(
    points: npt.ArrayLike, from_size: tuple[int, int], to_size: tuple[int, int]
) -> Float64Array:
    """Pixel positions on one pixel grid mapped to another covering the same field of view.

    Pixel centres are at integer coordinates, so ``x' = (x + 0.5) * s - 0.5``.
    """
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    array = np.asarray(points, dtype=np.float64)
    return np.asarray((array + 0.5) * [sx, sy] - 0.5, dtype=np.float64)


def scale_intrinsics(
    camera_matrix: npt.ArrayLike, from_size: tuple[int, int], to_size: tuple[int, int]
) -> Float64Array:
    """Intrinsics of a camera calibrated at ``from_size`` for images resized to ``to_size``.

    The distortion coefficients act on normalised coordinates and do not change.

    Raises:
        CalibrationError: The two sizes have different aspect ratios (a crop, not a resize).
    """
    check_same_aspect(from_size, to_size)
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    matrix = np.array(camera_matrix, dtype=np.float64)
    matrix[0, 0] *= sx
    matrix[0, 1] *= sx
    matrix[1, 1] *= sy
    matrix[0, 2] = (matrix[0, 2] + 0.5) * sx - 0.5
    matrix[1, 2] = (matrix[1, 2] + 0.5) * sy - 0.5
    return matrix


def check_same_aspect(from_size: tuple[int, int], to_size: tuple[int, int]) -> None:
    """Raise unless two image sizes have the same aspect ratio (within one pixel)."""
    if abs(from_size[0] * to_size[1] - from_size[1] * to_size[0]) > max(to_size):
        raise CalibrationError(
            f"checkerboard photos are {from_size[0]}x{from_size[1]} but the video is "
            f"{to_size[0]}x{to_size[1]}: different aspect ratios (a crop?) cannot be rescaled"
        )


@dataclass(frozen=True)
class SkippedImage:
    """A photo left out of the lens fit, and why."""

    name: str
    reason: str


@dataclass(frozen=True, eq=False)
class BoardDetections:
    """The checkerboard corners found in a set of photos.

    Attributes:
        board: Inner corners ``(columns, rows)``.
        board_given: Whether the size was given (else found by probing `COMMON_BOARDS`).
        photo_size: ``(width, height)`` of the photos.
        names: File names of the photos with a board, in order.
        corners: Per photo, ``[columns * rows, 2]`` corner pixels at the photo's full size.
        skipped: Photos without a usable board, with the reason.
        seconds: Time taken.
    """

    board: tuple[int, int]
    board_given: bool
    photo_size: tuple[int, int]
    names: list[str]
    corners: list[Float64Array]
    skipped: list[SkippedImage]
    seconds: float

    def object_points(self) -> Float64Array:
        """``[columns * rows, 3]`` the corners on the board plane (square side 1, ``z = 0``)."""
        cols, rows = self.board
        grid = np.zeros((cols * rows, 3), np.float64)
        grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)
        return grid


def _read_gray(path: Path) -> npt.NDArray[np.uint8] | None:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return None if image is None else np.asarray(image, dtype=np.uint8)


def _detect_scale(width: int, target: int = DETECT_WIDTH) -> float:
    return min(1.0, target / width)


def _downscale(gray: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    if scale >= 1.0:
        return gray
    return np.asarray(
        cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
    )


def _find(
    gray: npt.NDArray[np.uint8],
    board: tuple[int, int],
    scale: float,
    flags: int = _FIND_FLAGS,
    small: npt.NDArray[np.uint8] | None = None,
) -> Float64Array | None:
    """Corners of ``board`` searched at ``scale``, at full size (unrefined), or None."""
    if small is None:
        small = _downscale(gray, scale)
    found, corners = cv2.findChessboardCorners(small, board, flags=flags)
    if not found or corners is None:
        return None
    return np.asarray((corners.reshape(-1, 2) + 0.5) / scale - 0.5, dtype=np.float64)


def _refine(
    gray: npt.NDArray[np.uint8], corners: Float64Array, board: tuple[int, int]
) -> Float64Array:
    """Corners refined to sub-pixel accuracy at full size, with a window fitted to the squares."""
    cols, rows = board
    grid = corners.reshape(rows, cols, 2)
    spacing = min(
        float(np.linalg.norm(np.diff(grid, axis=1), axis=2).min()) if cols > 1 else math.inf,
        float(np.linalg.norm(np.diff(grid, axis=0), axis=2).min()) if rows > 1 else math.inf,
    )
    # Half-window well inside a square, so no other corner or edge end enters it.
    half = int(np.clip(round(0.35 * spacing), 2, 25))
    refined = cv2.cornerSubPix(
        gray, corners.astype(np.float32).reshape(-1, 1, 2), (half, half), (-1, -1), _SUBPIX_CRITERIA
    )
    return np.asarray(refined.reshape(-1, 2), dtype=np.float64)


def find_board_size(
    images: Sequence[npt.NDArray[np.uint8]], candidates: Sequence[tuple[int, int]] = COMMON_BOARDS
) -> tuple[int, int] | None:
    """The inner-corner count of the board in the photos, probing ``candidates`` in order.

    Each photo's answer is the first candidate found in it (candidates come most corners first,
    since a detector may also accept a smaller part of a larger board); the most common answer
    over the photos wins, ties going to the larger board.
    """
    votes: dict[tuple[int, int], int] = {}
    for gray in images:
        scale = _detect_scale(gray.shape[1], PROBE_WIDTH)
        small = _downscale(gray, scale)
        # A cheap pass over every size, then the thorough (adaptive threshold) one.
        for flags in (_PROBE_FLAGS, _FIND_FLAGS):
            found = next(
                (b for b in candidates if _find(gray, b, scale, flags, small) is not None), None
            )
            if found is not None:
                votes[found] = votes.get(found, 0) + 1
                break
        if votes and max(votes.values()) >= 2:
            break
    if not votes:
        return None
    return max(votes, key=lambda b: (votes[b], b[0] * b[1]))


def detect_boards(
    paths: Sequence[str | Path], board: tuple[int, int] | None = None
) -> BoardDetections:
    """Find and refine a checkerboard's inner corners in each photo.

    Args:
        paths: The photos (all of one size).
        board: Inner corners ``(columns, rows)``; found by probing `COMMON_BOARDS` when None.

    Returns:
        The corners of every photo where the board was found; the other photos are listed as
        skipped with the reason.

    Raises:
        BoardNotFoundError: No photo could be read, or no board was found (of the given size, or
            of any common size when none was given).
    """
    started = time.monotonic()
    files = [Path(p) for p in paths]
    if not files:
        raise BoardNotFoundError("no checkerboard photo given")
    skipped: list[SkippedImage] = []
    grays: list[tuple[Path, npt.NDArray[np.uint8]]] = []
    size: tuple[int, int] | None = None
    for path in files:
        gray = _read_gray(path)
        if gray is None:
            skipped.append(SkippedImage(path.name, "not a readable image"))
            continue
        this = (int(gray.shape[1]), int(gray.shape[0]))
        if size is None:
            size = this
        elif this != size:
            skipped.append(
                SkippedImage(
                    path.name, f"{this[0]}x{this[1]}, not {size[0]}x{size[1]} like the others"
                )
            )
            continue
        grays.append((path, gray))
    if size is None:
        raise BoardNotFoundError(f"none of the {len(files)} checkerboard photos could be read")

    given = board is not None
    if board is None:
        # Probe a few photos spread over the set, not only the first ones (often similar).
        step = max(1, len(grays) // AUTO_PROBE_IMAGES)
        probe = [gray for _, gray in grays[::step][:AUTO_PROBE_IMAGES]]
        board = find_board_size(probe)
        if board is None:
            folder = files[0].parent
            raise BoardNotFoundError(
                f"no checkerboard of a common size found in {len(probe)} photos of {folder}; "
                "give its inner corners with --board COLSxROWS"
            )

    names: list[str] = []
    corners: list[Float64Array] = []
    scale = _detect_scale(size[0])
    for path, gray in grays:
        found = _find(gray, board, scale)
        if found is None:
            skipped.append(SkippedImage(path.name, f"no {board[0]}x{board[1]} board found"))
            continue
        names.append(path.name)
        corners.append(_refine(gray, found, board))
    if not corners:
        raise BoardNotFoundError(
            f"no {board[0]}x{board[1]} checkerboard found in any of the {len(files)} photos in "
            f"{files[0].parent}"
        )
    return BoardDetections(
        board=board,
        board_given=given,
        photo_size=size,
        names=names,
        corners=corners,
        skipped=skipped,
        seconds=time.monotonic() - started,
    )


@dataclass(frozen=True, eq=False)
class LensModelFit:
    """One lens model fitted to the board corners.

    Attributes:
        model: ``"standard"`` or ``"fisheye"``.
        camera_matrix: ``[3, 3]`` intrinsics (NaN where the fit failed).
        coefficients: The model's own coefficients: ``k1 k2 p1 p2 k3`` or fisheye ``k1..k4``.
        rms_px: RMS reprojection error over every corner (NaN where the fit failed).
        view_rms_px: Per photo RMS (pixels).
        error: Why the fit failed, or None.
    """

    model: str
    camera_matrix: Float64Array
    coefficients: Float64Array
    rms_px: float
    view_rms_px: list[float]
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the fit succeeded."""
        return self.error is None and math.isfinite(self.rms_px)

    def to_report(self) -> dict[str, Any]:
        """JSON-compatible figures."""
        return {
            "model": self.model,
            "rms_px": _finite_or_none(self.rms_px),
            "camera_matrix": self.camera_matrix.tolist() if self.ok else None,
            "coefficients": self.coefficients.tolist() if self.ok else None,
            "view_rms_px": [round(v, 4) for v in self.view_rms_px],
            "error": self.error,
        }


@dataclass(frozen=True)
class Conversion:
    """How well the standard model reproduces a fisheye fit over the image (pixels)."""

    rms_px: float
    max_px: float
    board_rms_px: float
    accepted: bool
    reason: str
    share: float = math.nan


@dataclass(frozen=True, eq=False)
class LensCalibration:
    """A camera's lens from its checkerboard photos: both fits, the choice, the figures.

    Attributes:
        name: The camera's name.
        image_size: ``(width, height)`` of the video the lens is for.
        detections: The board corners found (at the photos' size).
        corners: Per used photo, the corners on the video's pixel grid.
        standard: The standard model's fit.
        fisheye: The fisheye model's fit.
        chosen: Which model won (``"standard"`` or ``"fisheye"``).
        camera_matrix: ``[3, 3]`` the lens written to ``rig.json`` (standard model).
        distortion: ``[5]`` ``k1 k2 p1 p2 k3`` written to ``rig.json``.
        rms_px: RMS of the written lens on the board corners.
        conversion: How the fisheye fit was converted to the standard model, where it won.
        coverage: Share of the image's `COVERAGE_GRID` cells holding a board corner.
        dropped: Photos dropped after the first fit for an outlying RMS.
    """

    name: str
    image_size: tuple[int, int]
    detections: BoardDetections
    corners: list[Float64Array]
    standard: LensModelFit
    fisheye: LensModelFit
    chosen: str
    camera_matrix: Float64Array
    distortion: Float64Array
    rms_px: float
    conversion: Conversion | None
    coverage: float
    dropped: list[SkippedImage] = field(default_factory=list)

    @property
    def used(self) -> int:
        """How many photos the fits used."""
        return len(self.corners)

    def summary(self) -> str:
        """A few human-readable lines."""
        d = self.detections
        total = len(d.names) + len(d.skipped)
        how = "given" if d.board_given else "found automatically"
        scaled = (
            ""
            if d.photo_size == self.image_size
            else f", rescaled to the video's {self.image_size[0]}x{self.image_size[1]}"
        )
        fisheye = (
            f"{self.fisheye.rms_px:.3f} px" if self.fisheye.ok else f"failed ({self.fisheye.error})"
        )
        k = self.camera_matrix
        lines = [
            f"{self.name} lens: board {d.board[0]}x{d.board[1]} inner corners ({how}) in "
            f"{self.used}/{total} photos ({d.photo_size[0]}x{d.photo_size[1]}{scaled}); "
            f"corners cover {self.coverage:.0%} of the image; {d.seconds:.1f} s to detect",
            f"  checkerboard RMS: standard {self.standard.rms_px:.3f} px, fisheye {fisheye}"
            f" -> {self.chosen}",
        ]
        if self.conversion is not None:
            c = self.conversion
            if math.isfinite(c.rms_px):
                lines.append(
                    f"  fisheye as standard coefficients: {c.rms_px:.2f} px RMS "
                    f"({c.max_px:.1f} px max) over {c.share:.0%} of the image, "
                    f"{c.board_rms_px:.3f} px on the board: "
                    f"{'kept' if c.accepted else 'not kept'} ({c.reason})"
                )
            else:
                lines.append(f"  fisheye not convertible to standard coefficients: {c.reason}")
        lines.append(
            f"  fx={k[0, 0]:.1f} fy={k[1, 1]:.1f} cx={k[0, 2]:.1f} cy={k[1, 2]:.1f} "
            f"k1={self.distortion[0]:.4f} k2={self.distortion[1]:.4f} p1={self.distortion[2]:.5f} "
            f"p2={self.distortion[3]:.5f} k3={self.distortion[4]:.4f}"
        )
        lines += [f"  skipped {s.name}: {s.reason}" for s in d.skipped + self.dropped]
        return "\n".join(lines)

    def to_report(self) -> dict[str, Any]:
        """JSON-compatible figures."""
        d = self.detections
        return {
            "board_inner_corners": list(d.board),
            "board_given": d.board_given,
            "photo_size": list(d.photo_size),
            "image_size": list(self.image_size),
            "rescaled": d.photo_size != self.image_size,
            "photos_used": [n for n in d.names if n not in {s.name for s in self.dropped}],
            "photos_skipped": [
                {"name": s.name, "reason": s.reason} for s in d.skipped + self.dropped
            ],
            "coverage": round(self.coverage, 4),
            "detect_seconds": round(d.seconds, 3),
            "standard": self.standard.to_report(),
            "fisheye": self.fisheye.to_report(),
            "chosen": self.chosen,
            "conversion": None
            if self.conversion is None
            else {
                "rms_px": _finite_or_none(self.conversion.rms_px),
                "max_px": _finite_or_none(self.conversion.max_px),
                "board_rms_px": _finite_or_none(self.conversion.board_rms_px),
                "image_share": _finite_or_none(self.conversion.share),
                "accepted": self.conversion.accepted,
                "reason": self.conversion.reason,
            },
            "rms_px": _finite_or_none(self.rms_px),
            "camera_matrix": self.camera_matrix.tolist(),
            "distortion": self.distortion.tolist(),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def board_points(
    detections: BoardDetections, corners: Sequence[Float64Array]
) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
    """Object and image points of every view, shaped for `cv2.calibrateCamera`."""
    obj = detections.object_points().astype(np.float32).reshape(-1, 1, 3)
    return [obj] * len(corners), [c.astype(np.float32).reshape(-1, 1, 2) for c in corners]


def _view_rms(
    objects: Sequence[npt.NDArray[Any]],
    images: Sequence[npt.NDArray[Any]],
    rvecs: Sequence[npt.NDArray[Any]],
    tvecs: Sequence[npt.NDArray[Any]],
    matrix: Float64Array,
    coefficients: Float64Array,
    model: str,
) -> list[float]:
    out = []
    for obj, img, rvec, tvec in zip(objects, images, rvecs, tvecs, strict=True):
        if model == "fisheye":
            projected, _ = cv2.fisheye.projectPoints(
                obj.astype(np.float64).reshape(-1, 1, 3), rvec, tvec, matrix, coefficients
            )
        else:
            projected, _ = cv2.projectPoints(obj, rvec, tvec, matrix, coefficients)
        err = projected.reshape(-1, 2) - img.reshape(-1, 2)
        out.append(float(np.sqrt(np.mean(np.sum(err * err, axis=1)))))
    return out


def _overall_rms(view_rms: Sequence[float]) -> float:
    # Every view has the same number of corners, so the overall RMS is the RMS of the views'.
    return float(np.sqrt(np.mean(np.square(view_rms)))) if view_rms else math.nan


def fit_standard(
    objects: Sequence[npt.NDArray[Any]],
    images: Sequence[npt.NDArray[Any]],
    image_size: tuple[int, int],
    *,
    camera_matrix: npt.ArrayLike | None = None,
    distortion: npt.ArrayLike | None = None,
) -> tuple[LensModelFit, list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:
    """OpenCV's standard model fitted to planar views (from scratch, or from a guess).

    Returns:
        The fit and each view's ``rvec`` and ``tvec``.
    """
    flags = 0
    guess_matrix: Any = None
    guess_coefficients: Any = None
    if camera_matrix is not None:
        flags |= cv2.CALIB_USE_INTRINSIC_GUESS
        guess_matrix = np.array(camera_matrix, dtype=np.float64)
        guess_coefficients = np.array(
            np.zeros(5) if distortion is None else distortion, dtype=np.float64
        ).reshape(-1)
    try:
        rms, found_matrix, found_coefficients, rvecs, tvecs = cv2.calibrateCamera(
            list(objects),
            list(images),
            image_size,
            guess_matrix,
            guess_coefficients,
            flags=flags,
            criteria=_CALIB_CRITERIA,
        )
    except cv2.error as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else "OpenCV error"
        nan = np.full((3, 3), np.nan)
        return LensModelFit("standard", nan, np.full(5, np.nan), math.nan, [], message), [], []
    matrix = np.asarray(found_matrix, np.float64)
    coefficients = np.asarray(found_coefficients, np.float64).reshape(-1)[:5]
    views = _view_rms(objects, images, rvecs, tvecs, matrix, coefficients, "standard")
    fit = LensModelFit("standard", matrix, coefficients, float(rms), views)
    return fit, list(rvecs), list(tvecs)


def fit_fisheye(
    objects: Sequence[npt.NDArray[Any]],
    images: Sequence[npt.NDArray[Any]],
    image_size: tuple[int, int],
) -> LensModelFit:
    """OpenCV's fisheye model fitted to planar views; a failure is returned, not raised."""
    nan = np.full((3, 3), np.nan)
    try:
        rms, found_matrix, found_coefficients, rvecs, tvecs = cv2.fisheye.calibrate(
            [o.astype(np.float64).reshape(-1, 1, 3) for o in objects],
            [i.astype(np.float64).reshape(-1, 1, 2) for i in images],
            image_size,
            np.zeros((3, 3)),
            np.zeros((4, 1)),
            flags=cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW,
            criteria=_CALIB_CRITERIA,
        )
    except cv2.error as error:
        text = str(error).strip().splitlines()
        return LensModelFit(
            "fisheye", nan, np.full(4, np.nan), math.nan, [], text[-1] if text else "OpenCV error"
        )
    matrix = np.asarray(found_matrix, np.float64)
    coefficients = np.asarray(found_coefficients, np.float64).reshape(-1)
    if not (
        np.all(np.isfinite(matrix)) and np.all(np.isfinite(coefficients)) and math.isfinite(rms)
    ):
        return LensModelFit("fisheye", nan, np.full(4, np.nan), math.nan, [], "did not converge")
    views = _view_rms(objects, images, rvecs, tvecs, matrix, coefficients, "fisheye")
    return LensModelFit("fisheye", matrix, coefficients, float(rms), views)


def standard_lens_limit(distortion: npt.ArrayLike) -> float:
    """Largest undistorted radius up to which the standard radial polynomial is monotonic."""
    k1, k2, _, _, k3 = (float(v) for v in np.asarray(distortion).reshape(-1)[:5])
    roots = np.roots([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0])
    positive = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return math.sqrt(min(positive)) if positive else math.inf


def fisheye_to_standard(
    camera_matrix: npt.ArrayLike, coefficients: npt.ArrayLike, image_size: tuple[int, int]
) -> tuple[Float64Array, Float64Array, float, float, float]:
    """Standard-model intrinsics and coefficients that best reproduce a fisheye lens.

    A grid of pixels over the whole image is undistorted with the fisheye model (pixels where
    the fisheye model does not round-trip, or whose ray is more than
    `CONVERSION_MAX_ANGLE_DEG` off the axis, are left out), and ``fx fy cx cy k1 k2 p1 p2 k3``
    are fitted by Levenberg-Marquardt so that the standard model projects those rays back onto
    the pixels.

    Returns:
        ``(camera_matrix, distortion, rms_px, max_px, share)``: the fit, its error over the
        grid, and the share of the grid it covers.

    Raises:
        CalibrationError: The fisheye model is unusable over the image, or the standard model's
            polynomial turns back inside the image.
    """
    matrix_f = np.asarray(camera_matrix, np.float64)
    coeff_f = np.asarray(coefficients, np.float64).reshape(4, 1)
    width, height = image_size
    xs = np.linspace(0.0, width - 1.0, _CONVERSION_GRID[0])
    ys = np.linspace(0.0, height - 1.0, _CONVERSION_GRID[1])
    pixels = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 1, 2)
    normalised = cv2.fisheye.undistortPoints(pixels, matrix_f, coeff_f).reshape(-1, 2)
    back = cv2.fisheye.distortPoints(normalised.reshape(-1, 1, 2), matrix_f, coeff_f).reshape(-1, 2)
    max_radius = math.tan(math.radians(CONVERSION_MAX_ANGLE_DEG))
    valid = (
        np.all(np.isfinite(normalised), axis=1)
        & (np.linalg.norm(back - pixels.reshape(-1, 2), axis=1) < 0.05)
        & (np.linalg.norm(normalised, axis=1) < max_radius)
    )
    share = float(valid.mean())
    if share < 0.5:
        raise CalibrationError(
            f"only {share:.0%} of the image is within {CONVERSION_MAX_ANGLE_DEG:.0f}° of the "
            "fisheye lens's axis; the standard model cannot represent it"
        )
    target = pixels.reshape(-1, 2)[valid]
    rays = np.c_[normalised[valid], np.ones(int(valid.sum()))]
    zero = np.zeros(3)

    def residual(matrix: Float64Array, dist: Float64Array) -> tuple[Float64Array, Float64Array]:
        projected, jacobian = cv2.projectPoints(rays, zero, zero, matrix, dist)
        # Columns: rvec (3), tvec (3), fx fy, cx cy, k1 k2 p1 p2 k3.
        return (
            np.asarray(projected.reshape(-1) - target.reshape(-1), np.float64),
            np.asarray(jacobian[:, 6:15], np.float64),
        )

    def with_step(
        matrix: Float64Array, dist: Float64Array, step: Float64Array
    ) -> tuple[Float64Array, Float64Array]:
        new = matrix.copy()
        new[0, 0] += step[0]
        new[1, 1] += step[1]
        new[0, 2] += step[2]
        new[1, 2] += step[3]
        return new, dist + step[4:]

    matrix = matrix_f.copy()
    matrix[0, 1] = 0.0
    dist = np.zeros(5)
    res, jac = residual(matrix, dist)
    cost = float(res @ res)
    damping = 1e-3
    for _ in range(200):
        normal = jac.T @ jac
        step = np.asarray(
            np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), -(jac.T @ res)),
            np.float64,
        )
        trial_matrix, trial_dist = with_step(matrix, dist, step)
        trial_res, trial_jac = residual(trial_matrix, trial_dist)
        trial_cost = float(trial_res @ trial_res)
        if math.isfinite(trial_cost) and trial_cost < cost:
            converged = cost - trial_cost < 1e-12 * max(cost, 1.0)
            matrix, dist, res, jac, cost = (
                trial_matrix,
                trial_dist,
                trial_res,
                trial_jac,
                trial_cost,
            )
            damping = max(damping / 3.0, 1e-12)
            if converged:
                break
        else:
            damping *= 5.0
            if damping > 1e12:
                break
    errors = np.linalg.norm(res.reshape(-1, 2), axis=1)
    limit = standard_lens_limit(dist)
    if float(np.max(np.linalg.norm(rays[:, :2], axis=1))) >= limit:
        raise CalibrationError(
            "the standard model fitted to the fisheye lens turns back inside the image; "
            "it cannot represent this lens"
        )
    return matrix, dist, float(np.sqrt(np.mean(errors**2))), float(errors.max()), share


def board_rms(
    objects: Sequence[npt.NDArray[Any]],
    images: Sequence[npt.NDArray[Any]],
    camera_matrix: Float64Array,
    distortion: Float64Array,
) -> float:
    """RMS reprojection error of a fixed standard lens on the board views (poses re-fitted)."""
    views = []
    for obj, img in zip(objects, images, strict=True):
        ok, rvec, tvec = cv2.solvePnP(obj, img, camera_matrix, distortion, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            return math.nan
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera_matrix, distortion, rvec, tvec)
        views.append((rvec, tvec))
    rms = _view_rms(
        objects,
        images,
        [v[0] for v in views],
        [v[1] for v in views],
        camera_matrix,
        distortion,
        "standard",
    )
    return _overall_rms(rms)


def coverage(corners: Sequence[Float64Array], image_size: tuple[int, int]) -> float:
    """Share of the image's `COVERAGE_GRID` cells that hold at least one board corner."""
    cols, rows = COVERAGE_GRID
    width, height = image_size
    cells = np.zeros((rows, cols), np.bool_)
    for points in corners:
        cx = np.clip((points[:, 0] / width * cols).astype(int), 0, cols - 1)
        cy = np.clip((points[:, 1] / height * rows).astype(int), 0, rows - 1)
        cells[cy, cx] = True
    return float(cells.mean())


def calibrate_lens(
    photos: str | Path | Sequence[str | Path],
    *,
    name: str,
    image_size: tuple[int, int] | None = None,
    board: tuple[int, int] | None = None,
    model: str = "auto",
    min_images: int = MIN_BOARD_IMAGES,
) -> LensCalibration:
    """Calibrate a camera's lens from checkerboard photos.

    Args:
        photos: A folder of photos, or the photo files.
        name: The camera's name (for messages).
        image_size: ``(width, height)`` of the video the lens is for; photos of another size
            (same aspect ratio) have their corners mapped onto the video's pixel grid before
            fitting. Default: the photos' size.
        board: Inner corners ``(columns, rows)``; found automatically when None.
        model: ``"auto"`` (lower RMS wins), ``"standard"`` or ``"fisheye"``.
        min_images: Fewest photos with a board accepted.

    Returns:
        Both fits, the choice and the lens to write (standard model).

    Raises:
        BoardNotFoundError: No board found.
        TooFewPointsError: Fewer than ``min_images`` photos with a board.
        CalibrationError: The chosen model's fit failed, or a bad argument.
    """
    if model not in ("auto", *MODELS):
        raise CalibrationError(f"lens model {model!r} is not auto, standard or fisheye")
    paths = list_images(photos) if isinstance(photos, (str, Path)) else [Path(p) for p in photos]
    detections = detect_boards(paths, board)
    size = image_size or detections.photo_size
    if size != detections.photo_size:
        check_same_aspect(detections.photo_size, size)
    corners = [scale_points(c, detections.photo_size, size) for c in detections.corners]
    if len(corners) < min_images:
        where = paths[0].parent if paths else "?"
        raise TooFewPointsError(
            f"camera {name!r}: a {detections.board[0]}x{detections.board[1]} board was found in "
            f"{len(corners)} of {len(paths)} photos in {where}; at least {min_images} are needed"
        )
    objects, images = board_points(detections, corners)
    standard, _, _ = fit_standard(objects, images, size)
    dropped: list[SkippedImage] = []
    if standard.ok:
        # Drop views that fit far worse than the rest (a misdetected or blurred board) once.
        median = float(np.median(standard.view_rms_px))
        limit = max(OUTLIER_VIEW_MIN_PX, OUTLIER_VIEW_FACTOR * median)
        keep = [rms <= limit for rms in standard.view_rms_px]
        if not all(keep) and sum(keep) >= min_images:
            used_names = detections.names
            dropped = [
                SkippedImage(n, f"board RMS {r:.2f} px, over {limit:.2f} px (3x the median)")
                for n, r, k in zip(used_names, standard.view_rms_px, keep, strict=True)
                if not k
            ]
            corners = [c for c, k in zip(corners, keep, strict=True) if k]
            objects, images = board_points(detections, corners)
            standard, _, _ = fit_standard(objects, images, size)
    fisheye = fit_fisheye(objects, images, size)

    candidates = [f for f in (standard, fisheye) if f.ok and model in ("auto", f.model)]
    if not candidates:
        failed = standard if model in ("auto", "standard") else fisheye
        raise CalibrationError(
            f"camera {name!r}: the {failed.model} lens fit failed: {failed.error}"
        )
    best = min(candidates, key=lambda f: f.rms_px)
    conversion: Conversion | None = None
    chosen = best.model
    matrix, distortion, rms = standard.camera_matrix, standard.coefficients, standard.rms_px
    if best.model == "fisheye":
        try:
            conv_matrix, conv_dist, conv_rms, conv_max, conv_share = fisheye_to_standard(
                fisheye.camera_matrix, fisheye.coefficients, size
            )
            conv_board = board_rms(objects, images, conv_matrix, conv_dist)
        except CalibrationError as error:
            conversion = Conversion(math.nan, math.nan, math.nan, False, str(error))
        else:
            better = not standard.ok or conv_board < standard.rms_px
            forced = model == "fisheye"
            accepted = math.isfinite(conv_board) and (better or forced)
            reason = (
                "beats the standard fit on the board"
                if better
                else ("fisheye asked for" if forced else "the standard fit is better on the board")
            )
            conversion = Conversion(conv_rms, conv_max, conv_board, accepted, reason, conv_share)
            if accepted:
                matrix, distortion, rms = conv_matrix, conv_dist, conv_board
        if conversion is None or not conversion.accepted:
            if model == "fisheye" or not standard.ok:
                raise CalibrationError(
                    f"camera {name!r}: the fisheye lens cannot be written as the standard model "
                    f"({conversion.reason if conversion else 'conversion failed'})"
                )
            chosen = "standard"
    return LensCalibration(
        name=name,
        image_size=(int(size[0]), int(size[1])),
        detections=detections,
        corners=corners,
        standard=standard,
        fisheye=fisheye,
        chosen=chosen,
        camera_matrix=np.asarray(matrix, np.float64),
        distortion=np.asarray(distortion, np.float64).reshape(5),
        rms_px=float(rms),
        conversion=conversion,
        coverage=coverage(corners, size),
        dropped=dropped,
    )
