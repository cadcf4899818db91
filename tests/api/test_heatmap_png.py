"""The heatmap grid definition and its PNG rendering, without the API around them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from activities.analyze.contracts import CELL_M
from activities.analyze.metrics import heatmap_grid
from api.analytics.grid import GridSpec, grid_from_cells, grid_spec
from api.analytics.heatmap_png import heatmap_png, image_size, render_heatmap
from polyvision.geometry.pitch import PITCH_M


def _decode(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _colour(level: int) -> tuple[int, int, int]:
    """The BGR colour the renderer's colormap gives a level of 0..255."""
    pixel = cv2.applyColorMap(np.array([[level]], dtype=np.uint8), cv2.COLORMAP_INFERNO)
    b, g, r = (int(v) for v in pixel[0, 0])
    return b, g, r


def test_default_grid_is_the_analyze_stage_grid() -> None:
    spec = grid_spec()
    assert spec.shape == (20, 16)
    assert spec.cell_m == pytest.approx(CELL_M)
    assert spec.pitch_m == PITCH_M


@pytest.mark.parametrize(
    ("cell_m", "shape"),
    [(1.0, (105, 68)), (2.5, (42, 27)), (5.0, (21, 14)), (10.0, (10, 7))],
)
def test_square_cells_tile_the_pitch_like_heatmap_grid(
    cell_m: float, shape: tuple[int, int]
) -> None:
    spec = grid_spec(cell_m)
    assert spec.shape == shape
    # The analyze stage's histogram gives the same shape for the same request.
    grids = heatmap_grid([1.0], [1.0], [0], cell_m=(cell_m, cell_m))
    assert grids[0].shape == shape
    assert spec.cell_m == pytest.approx((105.0 / shape[0], 68.0 / shape[1]))


def test_grid_spec_refuses_a_non_positive_cell() -> None:
    with pytest.raises(ValueError, match="positive"):
        grid_spec(0.0)


def test_grid_from_cells_scatters_counts_and_refuses_outside_cells() -> None:
    spec = GridSpec(pitch_m=PITCH_M, shape=(3, 2))
    grid = grid_from_cells(spec, [0, 2], [1, 0], [5, 7])
    assert grid.tolist() == [[0, 5], [0, 0], [7, 0]]
    assert grid_from_cells(spec, [], [], []).tolist() == [[0, 0], [0, 0], [0, 0]]
    with pytest.raises(ValueError, match="outside"):
        grid_from_cells(spec, [3], [0], [1])


def test_png_decodes_to_the_requested_size() -> None:
    grid = np.arange(20 * 16, dtype=np.int64).reshape(20, 16)
    for width, height in ((840, 544), (210, 136), (105, 68), (1000, 648)):
        image = _decode(heatmap_png(grid, PITCH_M, width))
        assert image.shape == (height, width, 3)
        assert image_size(width, PITCH_M) == (width, height)


def test_png_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    grid = rng.integers(0, 500, size=(20, 16)).astype(np.int64)
    first = heatmap_png(grid, PITCH_M, 840)
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert heatmap_png(grid.copy(), PITCH_M, 840) == first
    assert heatmap_png(grid, PITCH_M, 840, lines=False) != first


def test_empty_grid_renders_the_colormap_floor() -> None:
    grid = np.zeros((20, 16), dtype=np.int64)
    image = _decode(heatmap_png(grid, PITCH_M, 420, lines=False))
    assert image.shape == (272, 420, 3)
    assert {tuple(int(v) for v in px) for px in image.reshape(-1, 3)} == {_colour(0)}
    # With the markings the image still renders, and the lines are drawn on top.
    with_lines = _decode(heatmap_png(grid, PITCH_M, 420))
    assert (with_lines != image).any()


def test_hot_cell_lands_where_the_pitch_says() -> None:
    # x along the length runs left to right, y across runs top to bottom.
    grid = np.zeros((10, 7), dtype=np.int64)
    grid[9, 0] = 8  # far end, y = 0: the top-right corner cell
    grid[0, 6] = 4  # near end, y = width: the bottom-left corner cell
    image = render_heatmap(grid, PITCH_M, 1050, lines=False)
    height, width = image.shape[:2]
    cell_w, cell_h = width / 10, height / 7
    top_right = image[int(cell_h / 2), int(width - cell_w / 2)]
    bottom_left = image[int(height - cell_h / 2), int(cell_w / 2)]
    middle = image[height // 2, width // 2]
    assert tuple(int(v) for v in top_right) == _colour(255)
    assert tuple(int(v) for v in bottom_left) == _colour(128)  # 4 / 8 * 255 = 127.5 -> 128
    assert tuple(int(v) for v in middle) == _colour(0)


def test_render_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="2-D"):
        render_heatmap(np.zeros(5, dtype=np.int64), PITCH_M, 100)
    with pytest.raises(ValueError, match="width"):
        render_heatmap(np.zeros((2, 2), dtype=np.int64), PITCH_M, 0)
