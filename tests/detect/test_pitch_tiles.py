"""Tiles sized to the players: bands by player height, every player whole in some tile."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from activities.detect.pitch_tiles import Band, plan_band_tiles, plan_bands, plan_pitch_tiles
from activities.detect.tiling import plan_tiles
from activities.stitch.panorama import (
    PanoramaModel,
    panorama_model_from_rig,
    pitch_to_panorama,
    player_region_mask,
)
from synth.rig import default_rig


@pytest.fixture(scope="module")
def model() -> PanoramaModel:
    return panorama_model_from_rig(default_rig(1920, 1080))


def test_rows_are_grouped_by_the_scale_their_smallest_player_needs() -> None:
    low = np.array([np.nan] * 10 + [20.0] * 40 + [40.0] * 40 + [100.0] * 60)
    high = low * 1.5
    bands = plan_bands(low, high, target_px=36, max_upscale=1.5, min_rows=8)
    assert [(b.top, b.bottom, b.scale) for b in bands] == [
        (10, 50, 1.5),  # 20 px: 1.8 wanted, capped at 1.5
        (50, 90, 1.0),  # 40 px: 0.9 -> the next level up
        (90, 150, 0.5),  # 100 px: 0.36 -> the smallest level
    ]
    assert bands[1].reach_px == 60 and bands[1].head_top == 50 - 60


def test_a_short_run_joins_its_upper_neighbour_at_the_larger_scale() -> None:
    low = np.array([20.0] * 40 + [40.0] * 5 + [100.0] * 60)
    bands = plan_bands(low, low, target_px=36, max_upscale=1.5, min_rows=8)
    assert [(b.top, b.bottom, b.scale) for b in bands] == [(0, 45, 1.5), (45, 105, 0.5)]


def test_band_tiles_start_at_the_highest_head_and_overlap_by_the_tallest_player() -> None:
    region = np.ones((600, 2000), np.bool_)
    band = Band(top=300, bottom=600, scale=0.5, reach_px=200.0, head_top=120)
    tiles = plan_band_tiles([band], 2000, 600, region)
    assert min(t.y for t in tiles) == 120 and max(t.y2 for t in tiles) == 600
    xs = sorted({t.x for t in tiles})
    widths = {t.w for t in tiles}
    assert widths == {832} and all(b - a <= 832 - 220 for a, b in itertools.pairwise(xs))
    assert {t.scale for t in tiles} == {0.5}


def test_every_player_on_the_pitch_is_whole_in_a_tile_and_fewer_tiles_are_needed(
    model: PanoramaModel,
) -> None:
    region = player_region_mask(model)
    tiles = plan_pitch_tiles(model, region, max_upscale=1.5)
    uniform = plan_tiles(model.width, model.height, 416, 96, roi=region, upscale=1.5)
    assert len(tiles) < 0.6 * len(uniform)
    boxes = np.array([[t.x, t.y, t.x2, t.y2] for t in tiles], np.float64)
    xs, ys = np.meshgrid(np.linspace(-2, 107, 45), np.linspace(-2, 70, 30))
    missed = []
    for x, y in zip(xs.ravel(), ys.ravel(), strict=True):
        corners = [
            (x + dx, y + dy, z) for dx in (-0.3, 0.3) for dy in (-0.3, 0.3) for z in (0.0, 1.8)
        ]
        uv = pitch_to_panorama(model, np.array(corners))
        if not np.isfinite(uv).all():
            continue
        x1, y1 = uv.min(axis=0)
        x2, y2 = uv.max(axis=0)
        if x1 < 0 or y1 < 0 or x2 > model.width or y2 > model.height:
            continue  # partly outside the panorama: no tile can hold him
        inside = (
            (boxes[:, 0] <= x1) & (boxes[:, 1] <= y1) & (boxes[:, 2] >= x2) & (boxes[:, 3] >= y2)
        )
        if not inside.any():
            missed.append((round(x, 1), round(y, 1)))
    assert not missed, missed
