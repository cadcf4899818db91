"""A heatmap grid drawn as a PNG: counts scaled to the busiest cell, a colormap, pitch lines.

The image shows the pitch as its coordinates run: x (the length) left to right, y (the width)
top to bottom, one block of pixels per grid cell (nearest-neighbour scaling: a cell's colour
is its own count, not a blend with its neighbours). Everything here is deterministic: the
same grid and size give the same bytes, so the endpoint's ETag is stable.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: Image widths the endpoint accepts (pixels); the height follows the pitch's proportions.
MIN_WIDTH_PX = 105
MAX_WIDTH_PX = 2100
DEFAULT_WIDTH_PX = 840

#: Pitch markings in metres (IFAB Laws of the Game, law 1).
CENTRE_CIRCLE_M = 9.15
PENALTY_AREA_M = (16.5, 40.32)
GOAL_AREA_M = (5.5, 18.32)

_LINE_BGR = (235, 235, 235)
_COLORMAP = cv2.COLORMAP_INFERNO


def image_size(width: int, pitch_m: tuple[float, float]) -> tuple[int, int]:
    """Width and height in pixels of an image ``width`` wide with the pitch's proportions."""
    return width, max(1, round(width * pitch_m[1] / pitch_m[0]))


def render_heatmap(
    grid: npt.NDArray[np.int64],
    pitch_m: tuple[float, float],
    width: int,
    *,
    lines: bool = True,
) -> npt.NDArray[np.uint8]:
    """Draw a heatmap grid as a BGR image.

    Args:
        grid: Point counts indexed ``[ix, iy]`` (x along the length).
        pitch_m: Pitch length and width in metres.
        width: Image width in pixels.
        lines: Draw the pitch markings over the heat.

    Returns:
        A ``uint8`` array of shape ``(height, width, 3)``.

    Raises:
        ValueError: The grid is not 2-D or empty, or ``width`` is not positive.
    """
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 2-D array, got shape {grid.shape}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    width, height = image_size(width, pitch_m)
    counts = grid.T.astype(np.float64)  # rows are y, columns are x
    peak = float(counts.max())
    # Scaled to the busiest cell: an empty grid stays all zeros instead of dividing by zero.
    levels = np.rint(counts * (255.0 / peak)) if peak > 0 else np.zeros_like(counts)
    cells = levels.astype(np.uint8)
    scaled = cv2.resize(cells, (width, height), interpolation=cv2.INTER_NEAREST)
    image = np.asarray(cv2.applyColorMap(scaled, _COLORMAP), dtype=np.uint8)
    if lines:
        _draw_pitch(image, pitch_m)
    return image


def encode_png(image: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of a BGR image.

    Raises:
        ValueError: OpenCV could not encode the image.
    """
    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(buffer.tobytes())


def heatmap_png(
    grid: npt.NDArray[np.int64], pitch_m: tuple[float, float], width: int, *, lines: bool = True
) -> bytes:
    """`render_heatmap` encoded as PNG."""
    return encode_png(render_heatmap(grid, pitch_m, width, lines=lines))


def _draw_pitch(image: npt.NDArray[np.uint8], pitch_m: tuple[float, float]) -> None:
    """Draw the touchlines, halfway line, centre circle, penalty and goal areas in place."""
    height, width = image.shape[:2]
    length, breadth = pitch_m
    sx, sy = (width - 1) / length, (height - 1) / breadth
    thickness = max(1, round(width / 420))

    def point(x: float, y: float) -> tuple[int, int]:
        return round(x * sx), round(y * sy)

    def box(x0: float, y0: float, x1: float, y1: float) -> None:
        cv2.rectangle(image, point(x0, y0), point(x1, y1), _LINE_BGR, thickness, cv2.LINE_AA)

    box(0.0, 0.0, length, breadth)
    cv2.line(
        image, point(length / 2, 0.0), point(length / 2, breadth), _LINE_BGR, thickness, cv2.LINE_AA
    )
    centre = point(length / 2, breadth / 2)
    axes = (round(CENTRE_CIRCLE_M * sx), round(CENTRE_CIRCLE_M * sy))
    cv2.ellipse(image, centre, axes, 0.0, 0.0, 360.0, _LINE_BGR, thickness, cv2.LINE_AA)
    cv2.circle(image, centre, thickness + 1, _LINE_BGR, -1, cv2.LINE_AA)
    for depth, span in (PENALTY_AREA_M, GOAL_AREA_M):
        top, bottom = (breadth - span) / 2, (breadth + span) / 2
        box(0.0, top, depth, bottom)
        box(length - depth, top, length, bottom)
