"""Tile planning (coverage, overlap, clamping, ROI skipping) and the border merge, model-free.

The merge tests use a fake detector over a synthetic scene: it "sees" each scene object
clipped to the crop it is given, exactly as a real detector sees a player cut by a tile edge.
The crop's origin is read back from the pixels (each pixel encodes its own x and y), so the
tests also check that ``detect_tiled`` crops where the tile says.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from activities.detect.detections import Detections
from activities.detect.tiling import (
    Tile,
    detect_tiled,
    detect_tiles,
    merge_tiled,
    plan_tiles,
    tile_positions,
    window_size,
)
from activities.detect.yolox import nms

SIZES = [(3072, 1728), (1000, 500), (416, 416), (417, 900), (300, 200), (3840, 2160)]


def _coverage(tiles: list[Tile], width: int, height: int) -> np.ndarray:
    seen = np.zeros((height, width), np.int32)
    for t in tiles:
        seen[t.y : t.y2, t.x : t.x2] += 1
    return seen


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_tiles_cover_every_pixel_inside_the_image(width: int, height: int) -> None:
    tiles = plan_tiles(width, height, tile=416, overlap=96)
    assert all(t.x >= 0 and t.x2 <= width and t.y >= 0 and t.y2 <= height for t in tiles)
    assert all(t.w == min(416, width) and t.h == min(416, height) for t in tiles)
    assert (_coverage(tiles, width, height) >= 1).all()
    assert len(set(tiles)) == len(tiles)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_neighbours_overlap_by_at_least_the_requested_pixels(width: int, height: int) -> None:
    for length in (width, height):
        pos = tile_positions(length, min(416, length), min(96, min(416, length) - 1))
        assert pos[0] == 0 and pos[-1] + min(416, length) == length
        gaps = np.diff(pos)
        assert (gaps > 0).all()
        assert (min(416, length) - gaps >= 96).all()  # the shared band between neighbours


def test_4k_camera_frame_needs_sixty_tiles() -> None:
    tiles = plan_tiles(3072, 1728)
    assert len(tiles) == 60  # 10 columns x 6 rows
    assert sorted({t.x for t in tiles})[-1] == 3072 - 416  # the edge tile is clamped inside
    with pytest.raises(ValueError, match="overlap"):
        tile_positions(1000, 416, 416)


def test_roi_polygon_skips_tiles_outside_and_margin_adds_neighbours() -> None:
    width, height = 3072, 1728
    # Columns start at 0, 295, 590, 885, 1180, 1475, 1770, 2065, ...; rows at 0, 262, 524, 787,
    # 1049, 1312. The rectangle x 1000..2000, y 900..1700 meets columns 590..1770 (5) and rows
    # 524..1312 (4).
    rect = np.array([[1000, 900], [2000, 900], [2000, 1700], [1000, 1700]], np.float64)
    kept = plan_tiles(width, height, roi=rect)
    assert len(kept) == 20
    inside = np.zeros((height, width), bool)
    inside[900:1701, 1000:2001] = True
    dropped = set(plan_tiles(width, height)) - set(kept)
    assert len(dropped) == 40
    assert not any(inside[t.y : t.y2, t.x : t.x2].any() for t in dropped)
    assert all(inside[t.y : t.y2, t.x : t.x2].any() for t in kept)
    # A boolean mask of the same region plans the same tiles.
    assert plan_tiles(width, height, roi=inside) == kept
    # A 100-px margin reaches the column starting at 2065 (2065 - 100 <= 2000) only.
    assert len(plan_tiles(width, height, roi=rect, roi_margin=100)) == 24


def test_roi_edge_cases() -> None:
    outside = np.array([[5000, 5000], [6000, 5000], [6000, 6000]], np.float64)
    assert plan_tiles(3072, 1728, roi=outside) == []
    everything = np.array([[0, 0], [3072, 0], [3072, 1728], [0, 1728]], np.float64)
    assert len(plan_tiles(3072, 1728, roi=everything)) == 60
    with pytest.raises(ValueError, match="roi"):
        plan_tiles(3072, 1728, roi=np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="roi"):
        plan_tiles(3072, 1728, roi=np.zeros((2, 2), np.float64))


# --- the border merge -----------------------------------------------------------------------


def _coded_image(width: int, height: int) -> np.ndarray:
    """Each pixel encodes its own (x, y), so a crop knows where it was taken."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx & 255, (xx >> 8) | ((yy >> 8) << 4), yy & 255], axis=-1).astype(np.uint8)


def _origin(crop: np.ndarray) -> tuple[int, int]:
    b, g, r = (int(v) for v in crop[0, 0])
    return b | ((g & 15) << 8), r | ((g >> 4) << 8)


class SceneDetector:
    """Reports each scene box, clipped to the crop, whose visible area is >= 20 % of it."""

    def __init__(self, scene: Detections, full_size: tuple[int, int] | None = None) -> None:
        self.scene = scene
        self.full_size = full_size
        self.calls = 0

    def detect(
        self, image_bgr: np.ndarray, score_threshold: float = 0.3, nms_iou: float = 0.45
    ) -> Detections:
        self.calls += 1
        h, w = image_bgr.shape[:2]
        if self.full_size == (w, h):
            return self.scene  # the whole frame: everything seen complete
        x0, y0 = _origin(image_bgr)
        boxes = self.scene.xyxy - np.array([x0, y0, x0, y0], np.float32)
        clipped = boxes.copy()
        np.clip(clipped[:, 0::2], 0, w, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], 0, h, out=clipped[:, 1::2])
        visible = np.prod(clipped[:, 2:] - clipped[:, :2], axis=1)
        keep = visible >= 0.2 * np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
        return Detections.from_arrays(
            clipped[keep], self.scene.score[keep], self.scene.class_id[keep]
        )


# Two tiles side by side: [0, 416) and [320, 736), sharing the 96-px band 320..416.
WIDTH, HEIGHT = 736, 416


def test_tiles_of_the_two_tile_scene() -> None:
    assert plan_tiles(WIDTH, HEIGHT) == [Tile(0, 0, 416, 416), Tile(320, 0, 416, 416)]


def test_object_split_by_a_tile_edge_keeps_the_complete_box() -> None:
    # A player at x 390..470: tile 0 sees only the 26-px sliver 390..416 (cut by its right
    # edge); tile 1 sees him whole.
    player = [390, 100, 470, 260]
    scene = Detections.from_arrays([player], [0.8], [Detections.PERSON])
    image = _coded_image(WIDTH, HEIGHT)
    merged = detect_tiled(SceneDetector(scene), image, plan_tiles(WIDTH, HEIGHT))
    assert len(merged) == 1
    assert merged.xyxy[0].tolist() == player
    # Plain NMS would keep the sliver as a second person (IoU 26/80 < 0.45).
    fake = SceneDetector(scene)
    raw = [fake.detect(t.crop(image)) for t in plan_tiles(WIDTH, HEIGHT)]
    shifted = [Detections.from_arrays(raw[0].xyxy, raw[0].score, raw[0].class_id)]
    shifted.append(
        Detections.from_arrays(
            raw[1].xyxy + np.array([320, 0, 320, 0], np.float32), raw[1].score, raw[1].class_id
        )
    )
    assert len(nms(Detections.concat(shifted), 0.45)) == 2


def test_object_wider_than_the_overlap_is_joined_from_its_fragments() -> None:
    wide = [250, 50, 450, 380]  # 200 px: no tile sees it whole
    scene = Detections.from_arrays([wide], [0.7], [Detections.PERSON])
    merged = detect_tiled(
        SceneDetector(scene), _coded_image(WIDTH, HEIGHT), plan_tiles(WIDTH, HEIGHT)
    )
    assert len(merged) == 1
    assert merged.xyxy[0].tolist() == wide
    assert merged.score[0] == pytest.approx(0.7)


def test_full_frame_pass_adds_large_objects_only() -> None:
    # A 120 x 300 near player is only ever seen cut, but whole on the full frame; the ball
    # is small, so the full frame's copy of it is ignored in favour of the tiles'.
    scene = Detections.from_arrays(
        [[200, 60, 320, 360], [600, 300, 612, 312]], [0.9, 0.5], [Detections.PERSON, 32]
    )
    fake = SceneDetector(scene, full_size=(WIDTH, HEIGHT))
    merged = detect_tiled(
        fake,
        _coded_image(WIDTH, HEIGHT),
        plan_tiles(WIDTH, HEIGHT),
        full_frame_pass=True,
        full_frame_min_size=128,
    )
    assert fake.calls == 3
    assert len(merged) == 2
    assert merged.of_class(Detections.PERSON).xyxy.tolist() == [[200, 60, 320, 360]]
    assert merged.of_class(32).xyxy.tolist() == [[600, 300, 612, 312]]


def test_distinct_neighbours_and_unmatched_fragments_survive() -> None:
    tiles = plan_tiles(WIDTH, HEIGHT)
    # Tile 0 alone (tile 1 skipped, e.g. outside the ROI): its cut box is all we have.
    cut_only = Detections.from_arrays([[380, 100, 416, 200]], [0.6], [0])
    merged = merge_tiled([(tiles[0], cut_only)], WIDTH, HEIGHT)
    assert merged.xyxy.tolist() == cut_only.xyxy.tolist()
    # Two players side by side in the band, each whole in tile 1 and one cut in tile 0: the
    # cut box is dropped, both players stay.
    a, b = [330, 100, 370, 200], [372, 100, 412, 200]
    tile1 = Detections.from_arrays([a, b], [0.8, 0.7], [0, 0])
    tile0 = Detections.from_arrays([[372, 100, 416, 200], a], [0.6, 0.75], [0, 0])
    merged = merge_tiled([(tiles[0], tile0), (tiles[1], tile1)], WIDTH, HEIGHT)
    assert sorted(merged.xyxy.tolist()) == [a, b]
    # A box touching the image's own edge is not cut: nothing to replace it with, kept.
    edge = Detections.from_arrays([[700, 10, 736, 90]], [0.5], [0])
    assert len(merge_tiled([(tiles[1], edge)], WIDTH, HEIGHT)) == 1
    assert len(merge_tiled([], WIDTH, HEIGHT)) == 0


# --- upsampled tiles ------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize(("upscale", "overlap"), [(1.5, 64), (2.0, 48), (2.5, 40), (3.0, 32)])
def test_upscaled_windows_cover_the_image_and_feed_the_model_its_input_size(
    width: int, height: int, upscale: float, overlap: int
) -> None:
    window = window_size(416, upscale)
    assert window == round(416 / upscale)
    tiles = plan_tiles(width, height, tile=416, overlap=overlap, upscale=upscale)
    assert all(t.x >= 0 and t.x2 <= width and t.y >= 0 and t.y2 <= height for t in tiles)
    assert all(t.w == min(window, width) and t.h == min(window, height) for t in tiles)
    assert all(t.scale == 416 / window for t in tiles)
    # A full window becomes exactly the model's input; one clamped to a small image less.
    assert all(t.input_size == (416, 416) for t in tiles if t.w == t.h == window)
    assert (_coverage(tiles, width, height) >= 1).all()
    for axis_len, starts in (
        (width, sorted({t.x for t in tiles})),
        (height, sorted({t.y for t in tiles})),
    ):
        side = min(window, axis_len)
        assert (side - np.diff(starts) >= min(overlap, side - 1)).all()  # source-pixel overlap


def test_upscale_one_is_the_native_plan() -> None:
    assert plan_tiles(3072, 1728, upscale=1.0) == plan_tiles(3072, 1728)
    assert all(t.scale == 1.0 and t.input_size == (t.w, t.h) for t in plan_tiles(3072, 1728))
    # Twice the scale: windows of 208 px at a 48-px overlap, 14 x 7 of them on 2160x1080.
    assert len(plan_tiles(2160, 1080, 416, 48, upscale=2.0)) == 14 * 7
    # The ROI test runs on the windows, as at native resolution.
    rect = np.array([[1000, 900], [1100, 900], [1100, 950], [1000, 950]], np.float64)
    kept = plan_tiles(3072, 1728, 416, 48, roi=rect, upscale=2.0)
    assert kept and all(t.x < 1100 and t.x2 > 1000 and t.y < 950 and t.y2 > 900 for t in kept)


def test_bad_scales_are_refused() -> None:
    for upscale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="upscale"):
            plan_tiles(1000, 500, upscale=upscale)
    with pytest.raises(ValueError, match="scale"):
        Tile(0, 0, 10, 10, scale=0.0)


class FixedBoxDetector:
    """Returns one box at fixed *input* pixels for every image, and records the input sizes."""

    def __init__(self, box: list[float]) -> None:
        self.box = box
        self.sizes: list[tuple[int, int]] = []

    def detect(
        self, image_bgr: np.ndarray, score_threshold: float = 0.3, nms_iou: float = 0.45
    ) -> Detections:
        self.sizes.append((image_bgr.shape[1], image_bgr.shape[0]))
        return Detections.from_arrays([self.box], [0.9], [Detections.PERSON])


@pytest.mark.parametrize("upscale", [1.0, 1.5, 2.0, 2.5])
def test_boxes_in_upscaled_tiles_map_back_to_source_pixels(upscale: float) -> None:
    width, height = 2160, 1080
    tiles = plan_tiles(width, height, 416, 40, upscale=upscale)
    fake = FixedBoxDetector([100.0, 52.0, 140.0, 132.0])
    per_tile = detect_tiles(fake, np.zeros((height, width, 3), np.uint8), tiles)
    assert fake.sizes == [t.input_size for t in tiles] == [(416, 416)] * len(tiles)
    for t, det in per_tile:
        sx, sy = 416 / t.w, 416 / t.h  # the resize actually done
        expected = [t.x + 100 / sx, t.y + 52 / sy, t.x + 140 / sx, t.y + 132 / sy]
        assert det.xyxy[0].tolist() == pytest.approx(expected, abs=1e-3)
        # Twice the scale, half the box: the 40 x 80 input box is a 20 x 40 source box.
        if upscale == 2.0:
            assert det.xyxy[0].tolist() == [t.x + 50, t.y + 26, t.x + 70, t.y + 66]


class ScaledSceneDetector(SceneDetector):
    """The scene detector for resized crops: reads origin *and* scale back from the pixels.

    With nearest-neighbour resizing a resized coded crop still holds source codes: its first
    pixel is the window's origin and its last the window's far corner, which gives the scale.
    """

    def detect(
        self, image_bgr: np.ndarray, score_threshold: float = 0.3, nms_iou: float = 0.45
    ) -> Detections:
        self.calls += 1
        h, w = image_bgr.shape[:2]
        x0, y0 = _origin(image_bgr)
        x1, y1 = _origin(image_bgr[-1:, -1:])
        sx, sy = w / (x1 - x0 + 1), h / (y1 - y0 + 1)
        boxes = (self.scene.xyxy - np.array([x0, y0, x0, y0], np.float32)) * [sx, sy, sx, sy]
        clipped = boxes.copy()
        np.clip(clipped[:, 0::2], 0, w, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], 0, h, out=clipped[:, 1::2])
        visible = np.prod(clipped[:, 2:] - clipped[:, :2], axis=1)
        keep = visible >= 0.2 * np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
        return Detections.from_arrays(
            clipped[keep], self.scene.score[keep], self.scene.class_id[keep]
        )


def test_upscaled_tiles_merge_a_player_cut_by_a_window_edge_into_one_source_box() -> None:
    width, height = 736, 384
    tiles = plan_tiles(width, height, 416, 32, upscale=2.0)
    # Windows of 208 px sharing 32: columns at 0, 176, 352, 528, rows at 0, 176.
    assert sorted({t.x for t in tiles}) == [0, 176, 352, 528]
    assert sorted({t.y for t in tiles}) == [0, 176]
    # A 20 x 40 player cut by the first window's right (208) and bottom (208) edges but whole
    # in its neighbour, a small far player inside one window, and a ball: each comes back
    # once, in source pixels.
    scene = Detections.from_arrays(
        [[196, 190, 216, 230], [400, 40, 410, 60], [600, 300, 606, 306]],
        [0.8, 0.6, 0.5],
        [Detections.PERSON, Detections.PERSON, 32],
    )
    fake = ScaledSceneDetector(scene)
    merged = detect_tiled(fake, _coded_image(width, height), tiles, interpolation=cv2.INTER_NEAREST)
    assert fake.calls == len(tiles) == 8
    assert sorted(merged.xyxy.tolist()) == sorted(scene.xyxy.tolist())


def test_tiles_of_mixed_scales_merge_in_source_pixels() -> None:
    # A far band upscaled 2x over rows 0..208 and a native band below: one plan, two scales.
    width, height = 736, 624
    far = [Tile(x, 0, 208, 208, 2.0) for x in (0, 176, 352, 528)]
    near = [Tile(x, 208, 416, 416) for x in (0, 320)]
    scene = Detections.from_arrays(
        [[100, 150, 112, 200], [500, 300, 540, 400]], [0.7, 0.9], [Detections.PERSON] * 2
    )
    fake = ScaledSceneDetector(scene)
    merged = detect_tiled(
        fake, _coded_image(width, height), far + near, interpolation=cv2.INTER_NEAREST
    )
    assert sorted(merged.xyxy.tolist()) == sorted(scene.xyxy.tolist())
