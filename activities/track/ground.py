"""Where a detected person stands: the ground contact point of a box, and the pitch filter.

The bottom edge of a box is not where a figure touches the grass. The box's lowest pixels are
the toe of the nearer foot, and often a shadow cast towards the camera: on a synthetic match
with a low sun the bottom edge sat 18 % of the box height below the feet on one half of the
pitch and 7 % on the other, which put players 0.4 to 1 m nearer the cameras than they were.
A fixed correction cannot be right for every sun and every side of the pitch, so the match
corrects itself. The top of a box (the head, no shadow there), taken at the average box-top
height `PERSON_HEIGHT_M`, also says where the person stands; the lift that makes the bottom
agree with the top, as a fraction of the box height, is measured per cell of panorama columns
and rows (far and near boxes have different slack) over a chunk's confident detections
(`calibrate_lift`). The bottom edge raised by that lift is then the ground point: per detection
it is steadier than the top (a person's height varies by 10 cm either way, which moves a
top-based point by a metre on the far side), and the cell's median removes its bias.
`bench/foot_point.py` measures the estimators against a synthetic match's truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch, pitch_to_panorama
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

FOOT_LIFT = 0.07
"""Ground contact above the box bottom, as a fraction of the box height, where a band has too
few detections to measure its own (the figure for shadowless, upright players)."""

PERSON_HEIGHT_M = 1.85
"""Height of a person box's top edge above the ground: an average footballer (1.80 m) plus the
detector's slack above the head. Measured: 1.80 left tracked positions 0.1 to 0.2 m beyond the
players on synthetic matches, 1.90 as much in front of them (`bench/foot_point.py`)."""

LIFT_BANDS = 8
"""Bands of panorama columns the lift is measured in (the sun's shadow turns across them)."""

ROW_QUANTILES = (1 / 3, 2 / 3)
"""Row bands: split at these quantiles of the boxes' bottom edges (far, middle and near)."""

MIN_BOX_PX = 12.0
"""Boxes shorter than this are too coarse to measure the lift with."""

MIN_SAMPLES = 20
"""A band needs this many boxes to use its own lift."""

LIFT_RANGE = (0.0, 0.3)
"""A measured lift outside this is not a foot or a shadow: clipped."""

PITCH_MARGIN_M = 3.0
"""People this far outside the touch and goal lines are still tracked (throw-ins, assistant
referees, goalkeepers behind the line); beyond it they are spectators, staff or substitutes."""


@dataclass(frozen=True)
class FootLift:
    """The lift per cell of panorama columns x rows (`calibrate_lift`).

    Attributes:
        band_width_px: width of a column band.
        row_edges: rows where one row band ends and the next begins (near and far players
            differ: a far box has more slack around a smaller figure).
        lift: ``lift[row_band][column_band]``.
    """

    band_width_px: float
    row_edges: tuple[float, ...]
    lift: tuple[tuple[float, ...], ...]

    def at(self, u: npt.ArrayLike, v: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The lift at panorama columns ``u`` and rows ``v`` (a box's bottom edge)."""
        grid = np.asarray(self.lift, np.float64)
        column = np.floor(np.asarray(u, np.float64) / self.band_width_px).astype(np.int64)
        row = np.searchsorted(np.asarray(self.row_edges, np.float64), np.asarray(v, np.float64))
        return grid[np.clip(row, 0, grid.shape[0] - 1), np.clip(column, 0, grid.shape[1] - 1)]


def _boxes(xyxy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(xyxy, np.float64).reshape(-1, 4)


def ground_points(
    xyxy: npt.ArrayLike, lift: float | FootLift = FOOT_LIFT
) -> npt.NDArray[np.float64]:
    """The image point where each boxed person touches the ground, ``[N, 2]``.

    Args:
        xyxy: ``[N, 4]`` boxes ``x1, y1, x2, y2`` in image pixels.
        lift: contact point above the bottom edge, as a fraction of the box height: one
            figure, or measured per column band.
    """
    boxes = _boxes(xyxy)
    u = (boxes[:, 0] + boxes[:, 2]) * 0.5
    height = boxes[:, 3] - boxes[:, 1]
    if isinstance(lift, FootLift):
        fraction = lift.at(u, boxes[:, 3])
    else:
        fraction = np.full(len(u), float(lift))
    return np.stack([u, boxes[:, 3] - fraction * height], axis=1)


def calibrate_lift(
    model: PanoramaModel,
    xyxy: npt.ArrayLike,
    *,
    bands: int = LIFT_BANDS,
    height_m: float = PERSON_HEIGHT_M,
    default: float = FOOT_LIFT,
) -> FootLift:
    """Measure the foot lift per column band from person boxes (see the module docstring).

    Args:
        model: The panorama the boxes are in.
        xyxy: ``[N, 4]`` confident person boxes in panorama pixels.
        bands: column bands across the panorama.
        height_m: height the top edge is taken to be at.
        default: the lift of a band with fewer than `MIN_SAMPLES` usable boxes.
    """
    boxes = _boxes(xyxy)
    height = boxes[:, 3] - boxes[:, 1]
    boxes, height = boxes[height >= MIN_BOX_PX], height[height >= MIN_BOX_PX]
    u = (boxes[:, 0] + boxes[:, 2]) * 0.5
    # Where a person of `height_m` whose head is at the top edge stands, seen in the image.
    standing = panorama_to_pitch(model, np.column_stack([u, boxes[:, 1]]), height_m)
    feet = pitch_to_panorama(model, np.column_stack([standing, np.zeros(len(standing))]))
    with np.errstate(invalid="ignore"):
        measured = (boxes[:, 3] - feet[:, 1]) / height
    usable = np.isfinite(measured)
    width = model.width / bands
    band = np.clip(np.floor(u / width).astype(np.int64), 0, bands - 1)
    u, band, measured = u[usable], band[usable], measured[usable]
    bottom = boxes[usable, 3]
    row_edges = tuple(float(e) for e in np.quantile(bottom, ROW_QUANTILES)) if len(bottom) else ()
    row = np.searchsorted(np.asarray(row_edges, np.float64), bottom)
    grid: list[tuple[float, ...]] = []
    for r in range(len(row_edges) + 1):
        lifts: list[float] = []
        for b in range(bands):
            cell = (band == b) & (row == r)
            mine = measured[cell]
            if len(mine) < MIN_SAMPLES and np.sum(row == r) >= MIN_SAMPLES:
                # A cell with few players (a goal area, the panorama's ends) borrows from the
                # nearest boxes of its row band: the shadow turns smoothly across the panorama.
                in_row = np.flatnonzero(row == r)
                nearest = in_row[np.argsort(np.abs(u[in_row] - (b + 0.5) * width), kind="stable")]
                mine = measured[nearest[:MIN_SAMPLES]]
            value = float(np.median(mine)) if len(mine) >= MIN_SAMPLES else default
            lifts.append(float(np.clip(value, *LIFT_RANGE)))
        grid.append(tuple(lifts))
    return FootLift(band_width_px=width, row_edges=row_edges, lift=tuple(grid))


def on_pitch(xy: npt.ArrayLike, margin_m: float = PITCH_MARGIN_M) -> npt.NDArray[np.bool_]:
    """Which pitch points lie inside the pitch grown by ``margin_m`` (NaN: no)."""
    points = np.asarray(xy, np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        return (
            (points[:, 0] >= -margin_m)
            & (points[:, 0] <= PITCH_LENGTH_M + margin_m)
            & (points[:, 1] >= -margin_m)
            & (points[:, 1] <= PITCH_WIDTH_M + margin_m)
        )
