"""Tiles sized to the players: upscaled where players are small, shrunk where they are large.

The detector works best when a player is a few tens of pixels tall in its input
(`activities.detect.tiling`: YOLOX-nano misses most people under 15 px and finds those of
30 px and more). A panorama of a football pitch holds both: a player at the far touchline is
30 px tall, one at the near touchline 200. One upscale for the whole panorama spends the far
side's magnification on the near side too, and the number of tiles grows with its square.

So the tiles are planned in horizontal bands by the height a player has there, read off the
panorama model: for the players whose feet are on a band's rows, the band's scale makes the
smallest of them ``target_px`` tall in the model's input, rounded up to one of a few levels
and never above ``max_upscale`` (the single upscale used before). Each band's tiles reach up
by the tallest player's height above its first row, so every player is whole in the band of
his feet, and overlap by that height, so he is whole in one of its tiles. Tiles that see no
part of the region are dropped as before (`plan_tiles`).

On the SoccerTrack panorama (4540x1322, players 31 to 195 px tall) this is 46 tiles a frame
where the single upscale of 1.5 took 120 (``bench/pipeline.py`` measures the players found
and the cost of both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.detect.tiling import Tile, plan_tiles
from activities.stitch.panorama import PanoramaModel, panorama_to_pitch, pitch_to_panorama
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

PERSON_HEIGHT_M = 1.8

FOOT_DEPTH = 0.25
"""How far below the centre of his feet a player's box reaches, as a share of his height (the
near edge of a 0.6-m footprint seen from above)."""

LEVELS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)
"""The scales a band may take: few, so that bands are few and tall."""


@dataclass(frozen=True)
class Band:
    """Rows whose players' feet get one tile scale.

    Attributes:
        top: First row of feet.
        bottom: One past the last row of feet.
        scale: Model pixels per source pixel of this band's tiles.
        reach_px: Tallest player (pixels) with his feet in the band: the band's tiles overlap
            by this much.
        head_top: Highest row a head of those players reaches: where the band's tiles start.
    """

    top: int
    bottom: int
    scale: float
    reach_px: float
    head_top: int


def player_heights(
    model: PanoramaModel, margin_m: float = 3.0, step: int = 8
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per panorama row: the smallest and the largest height (pixels) of a person standing
    with his feet on that row, over the pitch grown by ``margin_m``; NaN where no feet can be.

    Sampled every ``step`` columns.
    """
    cols = np.arange(0, model.width, step, dtype=np.float64)
    rows = np.arange(model.height, dtype=np.float64)
    uu, vv = np.meshgrid(cols, rows)
    feet = panorama_to_pitch(model, np.column_stack([uu.ravel(), vv.ravel()]))
    inside = (
        np.isfinite(feet).all(axis=1)
        & (feet[:, 0] >= -margin_m)
        & (feet[:, 0] <= PITCH_LENGTH_M + margin_m)
        & (feet[:, 1] >= -margin_m)
        & (feet[:, 1] <= PITCH_WIDTH_M + margin_m)
    )
    heights = np.full(len(feet), np.nan)
    if inside.any():
        top = np.column_stack([feet[inside], np.full(int(inside.sum()), PERSON_HEIGHT_M)])
        heights[inside] = vv.ravel()[inside] - pitch_to_panorama(model, top)[:, 1]
    grid = heights.reshape(uu.shape)
    seen = np.isfinite(grid).any(axis=1)
    low = np.full(len(rows), np.nan)
    high = np.full(len(rows), np.nan)
    low[seen] = np.nanmin(grid[seen], axis=1)
    high[seen] = np.nanmax(grid[seen], axis=1)
    return low, high


def plan_bands(
    low_px: npt.NDArray[np.float64],
    high_px: npt.NDArray[np.float64],
    *,
    target_px: float,
    max_upscale: float,
    levels: Sequence[float] = LEVELS,
    min_rows: int = 32,
) -> list[Band]:
    """Group the rows with feet into bands of one scale (pure).

    A row's scale is the smallest level that makes its smallest player ``target_px`` tall,
    capped at ``max_upscale``. Runs shorter than ``min_rows`` join their upper neighbour
    with the larger scale of the two (never a smaller one: small players stay magnified).
    """
    allowed = sorted({min(level, max_upscale) for level in levels})
    bands: list[list[float]] = []  # [top, bottom, scale, reach, head_top]
    for row in np.flatnonzero(np.isfinite(low_px)).tolist():
        need = target_px / max(float(low_px[row]), 1.0)
        scale = next((level for level in allowed if level >= need), allowed[-1])
        reach = float(high_px[row])
        head = float(row) - reach
        last = bands[-1] if bands else None
        if last is not None and last[1] == row and last[2] == scale:
            last[1] = row + 1
            last[3] = max(last[3], reach)
            last[4] = min(last[4], head)
        else:
            bands.append([float(row), float(row + 1), scale, reach, head])
    merged: list[list[float]] = []
    for band in bands:
        if merged and (band[1] - band[0] < min_rows or merged[-1][1] - merged[-1][0] < min_rows):
            prev = merged[-1]
            if prev[1] == band[0]:
                prev[1] = band[1]
                prev[2] = max(prev[2], band[2])
                prev[3] = max(prev[3], band[3])
                prev[4] = min(prev[4], band[4])
                continue
        merged.append(list(band))
    return [Band(int(t), int(b), s, r, math.floor(h)) for t, b, s, r, h in merged]


def plan_band_tiles(
    bands: Sequence[Band],
    width: int,
    height: int,
    region: npt.NDArray[np.bool_],
    *,
    tile: int = 416,
    overlap: int = 96,
) -> list[Tile]:
    """The tiles of every band (pure): from the highest head to the lowest feet of its players,
    tiled at its scale with an overlap of at least the tallest one's height (source pixels),
    minus the tiles that miss ``region``."""
    tiles: list[Tile] = []
    for band in bands:
        top = max(0, band.head_top)
        # A player's box reaches below his feet' centre by the near half of his footprint.
        bottom = min(height, band.bottom + math.ceil(FOOT_DEPTH * band.reach_px))
        rows = max(1, bottom - top)
        window = max(1, round(tile / band.scale))
        band_overlap = min(max(overlap, math.ceil(1.1 * band.reach_px)), window - 1)
        part = plan_tiles(
            width,
            rows,
            tile,
            band_overlap,
            roi=region[top:bottom],
            upscale=band.scale,
        )
        tiles += [Tile(t.x, t.y + top, t.w, t.h, t.scale) for t in part]
    return tiles


def plan_pitch_tiles(
    model: PanoramaModel,
    region: npt.NDArray[np.bool_],
    *,
    tile: int = 416,
    overlap: int = 96,
    max_upscale: float = 1.5,
    target_px: float = 36.0,
) -> list[Tile]:
    """Tiles for a panorama of ``model``: bands by player size (module docstring).

    Args:
        model: The panorama.
        region: ``[H, W]`` where a player can be seen (`player_region_mask`).
        tile: The model's input side.
        overlap: Least overlap between neighbouring tiles, source pixels.
        max_upscale: No band is magnified more.
        target_px: The smallest player of a band is made this tall (model pixels).
    """
    low, high = player_heights(model)
    bands = plan_bands(low, high, target_px=target_px, max_upscale=max_upscale)
    return plan_band_tiles(bands, model.width, model.height, region, tile=tile, overlap=overlap)
