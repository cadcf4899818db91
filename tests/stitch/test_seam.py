"""The seam: a minimum-cost path inside the overlap, around moving things, stable in time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from activities.stitch.maps import StitchMaps
from activities.stitch.seam import OUTSIDE_COST, min_cost_seam, upsample_seam
from activities.stitch.stitch_plan import SeamChoice, choose_seam_and_gains
from polyvision.geometry import Rig
from synth.render import Renderer, RenderStyle
from synth.simulation import simulate

BLOB_ROWS = (20, 70, 120, 170, 220)  # one blob per sample, top to bottom of the 276-row panorama
BLOB_LEFT, BLOB_RIGHT = 4, 9  # columns the blobs reach left and right of the straight seam
BLOB_HEIGHT = 36


@pytest.fixture(scope="module")
def backgrounds(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """The empty stadium in both cameras, without noise (and with their exposures)."""
    style = dataclasses.replace(RenderStyle.clean(), sensor_noise=0.0)
    renderer = Renderer(rig, simulate(0.2, 25.0, 1).agents, seed=1, style=style)
    return renderer.background("left"), renderer.background("right")


def paint(image: np.ndarray, maps: StitchMaps, camera: str, box: tuple[int, int, int, int]) -> None:
    """Paint a dark red block where the camera sees the panorama box ``(u0, v0, u1, v1)``."""
    u0, v0, u1, v1 = box
    map1 = getattr(maps, f"{camera}_map1")[v0:v1, u0:u1].reshape(-1, 2)
    seen = map1[(map1 >= 0).all(axis=1)]
    x0, y0 = seen.min(axis=0)
    x1, y1 = seen.max(axis=0) + 2
    image[y0:y1, x0:x1] = (40, 30, 190)


def blob_box(maps: StitchMaps, row: int) -> tuple[int, int, int, int]:
    anchor = round(maps.anchor_u)
    return (anchor - BLOB_LEFT, row, anchor + BLOB_RIGHT + 1, row + BLOB_HEIGHT)


def samples_with_blobs(
    maps: StitchMaps, backgrounds: tuple[np.ndarray, np.ndarray], rows: tuple[int, ...]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One sample per blob row: the empty stadium with one blob, on the straight seam."""
    lefts, rights = [], []
    for row in rows:
        left, right = backgrounds[0].copy(), backgrounds[1].copy()
        paint(left, maps, "left", blob_box(maps, row))
        paint(right, maps, "right", blob_box(maps, row))
        lefts.append(left)
        rights.append(right)
    return lefts, rights


@pytest.fixture(scope="module")
def choice(maps: StitchMaps, backgrounds: tuple[np.ndarray, np.ndarray]) -> SeamChoice:
    return choose_seam_and_gains(maps, *samples_with_blobs(maps, backgrounds, BLOB_ROWS))


def test_min_cost_path_follows_the_valley_and_steps_at_most_max_step() -> None:
    height, width = 60, 40
    columns = np.arange(width)
    valley = (20 + 10 * np.sin(np.arange(height) / 6)).round()
    cost = np.abs(columns[None, :] - valley[:, None]).astype(np.float64)
    path = min_cost_seam(cost, max_step=2, step_cost=0.1)
    assert path.dtype == np.int32 and path.shape == (height,)
    assert np.abs(np.diff(path)).max() <= 2
    np.testing.assert_array_equal(path, valley.astype(np.int32))
    # A wall of "outside" cost with one gap: the path goes through the gap.
    walled = np.zeros((height, width))
    walled[30, :] = OUTSIDE_COST
    walled[30, 5] = 0
    path = min_cost_seam(walled, max_step=1, step_cost=0.0)
    assert path[30] == 5 and np.abs(np.diff(path)).max() <= 1
    with pytest.raises(ValueError):
        min_cost_seam(cost, max_step=0)


def test_upsampled_seam_keeps_its_slope() -> None:
    path = np.array([10, 12, 14, 15], np.int32)
    seam = upsample_seam(path, 2, first_column=100, height=8)
    assert seam.shape == (8,)
    assert np.abs(np.diff(seam)).max() <= 2
    # Through the centres of the reduced pixels (2c + 0.5, rounded half up).
    assert seam[0] == 100 + 2 * 10 + 1 and seam[-1] == 100 + 2 * 15 + 1


def test_seam_stays_inside_the_overlap(maps: StitchMaps, choice: SeamChoice) -> None:
    seam = choice.seam
    assert seam.dtype == np.int32 and seam.shape == (maps.height,)
    rows = np.flatnonzero(maps.overlap.any(axis=1))
    assert maps.overlap[rows, seam[rows]].all()
    assert choice.figures["rows_outside_overlap"] == 0
    # The feather band too, where the overlap is wide enough for it.
    band = choice.band_half
    for row in rows:
        overlap = np.flatnonzero(maps.overlap[row])
        if overlap[-1] - overlap[0] > 4 * band:
            assert overlap[0] <= seam[row] - band and seam[row] + band <= overlap[-1]
    assert np.abs(np.diff(seam)).max() <= 2


def test_seam_avoids_a_moving_blob_on_the_straight_seam(
    maps: StitchMaps, choice: SeamChoice
) -> None:
    seam, band = choice.seam, choice.band_half
    anchor = round(maps.anchor_u)
    for row in BLOB_ROWS:
        u0, v0, u1, v1 = blob_box(maps, row)
        assert u0 <= anchor < u1  # the straight seam would cut every blob
        rows = np.arange(v0, v1)
        # The band [seam - band, seam + band] clears the blob in each of its rows.
        clear = (seam[rows] + band < u0) | (seam[rows] - band >= u1)
        assert clear.all(), (row, seam[rows])
    assert choice.figures["moving_share_on_seam"] == 0.0


def test_same_samples_give_the_same_seam(
    maps: StitchMaps, backgrounds: tuple[np.ndarray, np.ndarray], choice: SeamChoice
) -> None:
    again = choose_seam_and_gains(maps, *samples_with_blobs(maps, backgrounds, BLOB_ROWS))
    np.testing.assert_array_equal(again.seam, choice.seam)
    np.testing.assert_array_equal(again.gains, choice.gains)


def test_a_small_change_moves_the_seam_little(
    maps: StitchMaps, backgrounds: tuple[np.ndarray, np.ndarray], choice: SeamChoice
) -> None:
    lefts, rights = samples_with_blobs(maps, backgrounds, BLOB_ROWS)
    rng = np.random.default_rng(3)

    def noisy(image: np.ndarray) -> np.ndarray:
        noise = rng.normal(0, 2.0, image.shape)
        return np.clip(image + noise, 0, 255).astype(np.uint8)

    changed = choose_seam_and_gains(maps, [noisy(i) for i in lefts], [noisy(i) for i in rights])
    moved = np.abs(changed.seam - choice.seam)
    assert np.median(moved) <= 1 and np.percentile(moved, 90) <= 4
    np.testing.assert_allclose(changed.gains, choice.gains, rtol=0.01)


def test_the_seam_keeps_to_the_previous_chunks_where_nothing_moves(
    maps: StitchMaps, backgrounds: tuple[np.ndarray, np.ndarray]
) -> None:
    lefts, rights = [backgrounds[0]] * 3, [backgrounds[1]] * 3
    free = choose_seam_and_gains(maps, lefts, rights)
    previous = np.clip(free.seam + 8, 0, maps.width - 1)
    kept = choose_seam_and_gains(maps, lefts, rights, prior_seam=previous)
    rows = np.flatnonzero(maps.overlap.any(axis=1))
    assert np.median(np.abs(kept.seam[rows] - previous[rows])) <= 1
    assert np.median(np.abs(free.seam[rows] - previous[rows])) >= 6
