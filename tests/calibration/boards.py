"""Synthetic checkerboard photos rendered through a known lens (standard or fisheye model).

Each square is filled as a polygon whose edges are subdivided and projected point by point
(`cv2.projectPoints` / `cv2.fisheye.projectPoints`), so the edges curve as the lens bends them;
drawing happens on a 4x supersampled canvas that is averaged down, and a slight blur and noise
make the photo look like one.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

SUPERSAMPLE = 4
_SUBDIVISIONS = 8
_SHIFT = 4  # fixed-point bits of the polygon vertices


def look(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """A board rotation: yaw about the camera's y, pitch about x, roll about z (degrees)."""
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def project(
    points: np.ndarray,
    rvec: np.ndarray,
    tvec: np.ndarray,
    matrix: np.ndarray,
    distortion: np.ndarray,
    model: str,
) -> np.ndarray:
    """Pixels of board-plane points through the lens."""
    pts = np.asarray(points, np.float64).reshape(-1, 1, 3)
    if model == "fisheye":
        out, _ = cv2.fisheye.projectPoints(pts, rvec, tvec, matrix, distortion.reshape(4, 1))
    else:
        out, _ = cv2.projectPoints(pts, rvec, tvec, matrix, distortion)
    return np.asarray(out, np.float64).reshape(-1, 2)


def render_board(
    size: tuple[int, int],
    board: tuple[int, int],
    rotation: np.ndarray,
    tvec: np.ndarray,
    matrix: np.ndarray,
    distortion: np.ndarray,
    *,
    model: str = "standard",
    seed: int = 0,
) -> np.ndarray:
    """A grey photo of a checkerboard with ``board`` inner corners (square side 1).

    The board's inner corner ``(i, j)`` is at ``(i, j, 0)``; ``rotation`` and ``tvec`` place the
    board in the camera frame.
    """
    width, height = size
    cols, rows = board
    rvec, _ = cv2.Rodrigues(rotation)
    tvec = np.asarray(tvec, np.float64)
    canvas = np.full((height * SUPERSAMPLE, width * SUPERSAMPLE), 90, np.uint8)

    def polygon(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        t = np.linspace(0.0, 1.0, _SUBDIVISIONS, endpoint=False)
        edges = [
            np.c_[x0 + (x1 - x0) * t, np.full_like(t, y0)],
            np.c_[np.full_like(t, x1), y0 + (y1 - y0) * t],
            np.c_[x1 - (x1 - x0) * t, np.full_like(t, y1)],
            np.c_[np.full_like(t, x0), y1 - (y1 - y0) * t],
        ]
        outline = np.concatenate(edges)
        pixels = project(
            np.c_[outline, np.zeros(len(outline))], rvec, tvec, matrix, distortion, model
        )
        canvas_xy = (pixels + 0.5) * SUPERSAMPLE - 0.5
        return np.round(canvas_xy * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    cv2.fillPoly(canvas, [polygon(-1.6, -1.6, cols + 0.6, rows + 0.6)], 235, shift=_SHIFT)
    squares = [
        polygon(i, j, i + 1.0, j + 1.0)
        for i in range(-1, cols)
        for j in range(-1, rows)
        if (i + j) % 2 == 0
    ]
    cv2.fillPoly(canvas, squares, 25, shift=_SHIFT)
    small = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    blurred = np.asarray(cv2.GaussianBlur(small, (0, 0), 0.6), np.float32)
    noise = np.random.default_rng(seed).normal(0.0, 2.0, blurred.shape).astype(np.float32)
    return np.clip(blurred + noise, 0, 255).astype(np.uint8)


def board_poses(
    count: int,
    board: tuple[int, int],
    distance: float,
    seed: int = 1,
    spread: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Varied board poses spread over the field of view (board centred on the line of sight)."""
    rng = np.random.default_rng(seed)
    cols, rows = board
    centre = np.array([(cols - 1) / 2, (rows - 1) / 2, 0.0])
    poses = []
    for k in range(count):
        rotation = look(rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(-30, 30))
        # Aim the board centre over a 4 x 3 grid of directions covering the image.
        u = ((k % 4) - 1.5) * 0.2 * spread + offset[0]
        v = ((k // 4) % 3 - 1.0) * 0.15 * spread + offset[1]
        where = np.array([u, v, 1.0]) * distance * rng.uniform(0.95, 1.1)
        poses.append((rotation, where - rotation @ centre))
    return poses


def write_photos(
    folder: Path,
    size: tuple[int, int],
    board: tuple[int, int],
    matrix: np.ndarray,
    distortion: np.ndarray,
    *,
    count: int = 12,
    distance: float = 22.0,
    model: str = "standard",
    spread: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> list[Path]:
    """Render ``count`` photos into ``folder`` (PNG); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (rotation, tvec) in enumerate(
        board_poses(count, board, distance, spread=spread, offset=offset)
    ):
        image = render_board(size, board, rotation, tvec, matrix, distortion, model=model, seed=k)
        path = folder / f"{k}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths
