"""The SoccerTrack recording's rig (``soccertrack-v1``) from its calibration files.

Files read per camera (``left`` and ``right``): ``{cam}_camera_matrix.npy`` (3x3),
``{cam}_distortion_coefficients.npy`` (k1 k2 p1 p2 k3) and ``{cam}_keypoints.xml`` (CVAT points
labelled with their pitch positions on a 105 x 68 m pitch).

Label convention. SoccerTrack labels ``(x, y)`` with ``x`` along the touchlines from the left
goal line (as ours) but ``y`` measured from the *far* touchline: ``y = 0`` is the touchline at
the top of both images, ``y = 68`` the one at their bottom, nearest the cameras. That frame is
mirrored with respect to ours (``x`` right, ``y`` away from the cameras, ``z`` up): fitted to
the raw labels, the left camera lands about 11 m *below* the ground and the right one fits no
pose at all. The mapping is therefore
``pitch = (x_label, 68 - y_label)``, after which both cameras stand about 16 m beyond the near
touchline (``y < 0``), about 8 m up, looking at the pitch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from polyvision.calibration.cvat import PointAnnotation, load_cvat_points
from polyvision.calibration.errors import CalibrationError
from polyvision.calibration.pose import PoseFit, fit_camera_pose
from polyvision.geometry import RIG_VERSION, Float64Array, Rig
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

CAMERAS = ("left", "right")


def label_to_pitch(label_xy: tuple[float, float]) -> tuple[float, float]:
    """Map a SoccerTrack label position to the project's pitch frame (see the module doc)."""
    return label_xy[0], PITCH_WIDTH_M - label_xy[1]


def _load_array(path: Path, shape: tuple[int, ...], what: str) -> Float64Array:
    if not path.is_file():
        raise CalibrationError(f"missing {what}: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CalibrationError(f"cannot read {what} {path}: {error}") from error
    array = np.asarray(array, dtype=np.float64)
    if array.size != int(np.prod(shape)):
        raise CalibrationError(f"{what} {path} has shape {array.shape}, expected {shape}")
    return array.reshape(shape)


def _image_size(points: list[PointAnnotation], source: Path) -> tuple[int, int]:
    sizes = {p.image_size for p in points if p.image_size is not None}
    if len(sizes) != 1:
        raise CalibrationError(
            f"{source}: expected one annotated frame size, found {sorted(sizes) or 'none'}"
        )
    return sizes.pop()


def fit_soccertrack_camera(
    data_dir: Path,
    name: str,
    *,
    lens_from: str | None = None,
    ransac_threshold_px: float | None = None,
) -> PoseFit:
    """Calibrate one SoccerTrack camera.

    Args:
        data_dir: The ``soccertrack-v1`` folder.
        name: ``"left"`` or ``"right"``.
        lens_from: Camera whose intrinsics and lens files to use (default: ``name``'s own). For
            diagnosing a suspect lens model only.
        ransac_threshold_px: See `fit_camera_pose`.

    Returns:
        The camera's pose fit.

    Raises:
        CalibrationError: A file is missing or malformed, or the fit fails its checks.
    """
    lens = lens_from or name
    matrix = _load_array(data_dir / f"{lens}_camera_matrix.npy", (3, 3), "camera matrix")
    distortion = _load_array(
        data_dir / f"{lens}_distortion_coefficients.npy", (5,), "distortion coefficients"
    )
    keypoints = data_dir / f"{name}_keypoints.xml"
    if not keypoints.is_file():
        raise CalibrationError(f"missing keypoints: {keypoints}")
    points = load_cvat_points(keypoints)
    return fit_camera_pose(
        image_points=[p.image_xy for p in points],
        pitch_points=[label_to_pitch(p.pitch_xy) for p in points],
        camera_matrix=matrix,
        distortion=distortion,
        image_size=_image_size(points, keypoints),
        name=name,
        labels=[p.label for p in points],
        ransac_threshold_px=ransac_threshold_px,
    )


def build_soccertrack_rig(
    data_dir: Path,
    *,
    lens_from: Mapping[str, str] | None = None,
    ransac_threshold_px: float | None = None,
) -> tuple[Rig, dict[str, PoseFit]]:
    """Build the SoccerTrack recording's two-camera rig from its calibration files.

    Args:
        data_dir: The ``soccertrack-v1`` folder.
        lens_from: Per camera, whose lens files to use instead of its own (diagnostics only).
        ransac_threshold_px: See `fit_camera_pose`.

    Returns:
        The rig (cameras ``left`` and ``right``, 105 x 68 m pitch) and each camera's fit, whose
        ``outliers`` list the rejected annotations.

    Raises:
        CalibrationError: A file is missing or malformed, a fit fails its checks, or a camera is
            not beyond the near touchline.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CalibrationError(f"SoccerTrack data folder not found: {data_dir}")
    overrides = dict(lens_from or {})
    fits = {
        name: fit_soccertrack_camera(
            data_dir,
            name,
            lens_from=overrides.get(name),
            ransac_threshold_px=ransac_threshold_px,
        )
        for name in CAMERAS
    }
    for name, fit in fits.items():
        # Both cameras film from the near side: a camera on the far side means the label
        # mapping is wrong, not that the rig moved.
        y = float(fit.camera.center[1])
        if y >= 0:
            raise CalibrationError(
                f"camera {name!r} fitted at y = {y:.1f} m, not beyond the near touchline (y < 0)"
            )
    rig = Rig(
        version=RIG_VERSION,
        pitch_length_m=PITCH_LENGTH_M,
        pitch_width_m=PITCH_WIDTH_M,
        cameras={name: fit.camera for name, fit in fits.items()},
    )
    return rig, fits
