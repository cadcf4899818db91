"""The heatmap grid: the same cells as the analyze stage's ``heatmaps.json``.

`activities.analyze.metrics.heatmap_grid` defines the grid: ``round(pitch / cell)`` cells
along each axis, each exactly ``pitch / cells`` long so that the cells tile the pitch; points
off the pitch count in the nearest edge cell; points without coordinates are left out; the
grid is indexed ``[ix][iy]`` (x along the length, y across). The SQL in
`api.analytics.queries.heatmap_query` computes the same cell indices as a GROUP BY.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.analyze.contracts import CELL_M
from polyvision.geometry.pitch import PITCH_M

#: Square cell sizes (metres) a client may ask for; none means the analyze stage's grid.
CELL_SIZES_M: tuple[float, ...] = (1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class GridSpec:
    """A heatmap grid over the pitch.

    Attributes:
        pitch_m: Pitch length and width in metres.
        shape: Cells along x (length) and along y (width).
    """

    pitch_m: tuple[float, float]
    shape: tuple[int, int]

    @property
    def cell_m(self) -> tuple[float, float]:
        """The actual cell length and width: the pitch divided by the cell counts."""
        return (self.pitch_m[0] / self.shape[0], self.pitch_m[1] / self.shape[1])


def grid_spec(cell_m: float | None = None, pitch_m: tuple[float, float] = PITCH_M) -> GridSpec:
    """The grid for a requested cell size.

    Args:
        cell_m: Requested square cell size in metres; None gives the analyze stage's grid
            (`CELL_M`, 20 x 16 cells). The cells actually used are the nearest size that
            tiles the pitch exactly, as in `heatmap_grid`, so they may be slightly
            rectangular (10 m asks for 10 x 7 cells of 10.5 x 9.71 m).
        pitch_m: Pitch length and width in metres.

    Returns:
        The grid.

    Raises:
        ValueError: ``cell_m`` is not positive.
    """
    cell = CELL_M if cell_m is None else (cell_m, cell_m)
    if cell[0] <= 0 or cell[1] <= 0:
        raise ValueError(f"cell size must be positive, got {cell_m}")
    # Python's round, like heatmap_grid's: the same cell counts for the same request.
    nx = max(1, round(pitch_m[0] / cell[0]))
    ny = max(1, round(pitch_m[1] / cell[1]))
    return GridSpec(pitch_m=pitch_m, shape=(nx, ny))


def grid_from_cells(
    spec: GridSpec, ix: npt.ArrayLike, iy: npt.ArrayLike, counts: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """Scatter ``(ix, iy, count)`` rows of a GROUP BY into a dense grid.

    Args:
        spec: The grid the rows were computed for.
        ix: Cell index along x of each row.
        iy: Cell index along y of each row.
        counts: Points in each cell.

    Returns:
        An ``int64`` array of shape ``spec.shape`` indexed ``[ix, iy]``; cells without a row
        are 0.

    Raises:
        ValueError: A cell index lies outside the grid.
    """
    xs = np.asarray(ix, dtype=np.int64)
    ys = np.asarray(iy, dtype=np.int64)
    values = np.asarray(counts, dtype=np.int64)
    grid = np.zeros(spec.shape, dtype=np.int64)
    if xs.size == 0:
        return grid
    if xs.min() < 0 or ys.min() < 0 or xs.max() >= spec.shape[0] or ys.max() >= spec.shape[1]:
        raise ValueError(f"cell index outside the {spec.shape} grid")
    # np.add.at rather than assignment: a repeated cell (never from a GROUP BY) would add up.
    np.add.at(grid, (xs, ys), values)
    return grid
