"""YOLOX preprocessing and decoding on hand-built tensors, and the real model on a real frame.

The real-model tests need ``yolox_nano.onnx`` (``PV_MODELS_DIR``, else
``<repo>/../shared/data/models``) and the SoccerTrack left camera (``PV_TEST_DATA``, else
``<repo>/../shared/data``); they skip, saying what is missing, where those are absent.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from activities.detect.detections import Detections
from activities.detect.model_store import YOLOX_NANO_NAME, resolve_model
from activities.detect.tiling import detect_tiled, plan_tiles
from activities.detect.yolox import (
    PAD_VALUE,
    YoloxDetector,
    clip_to_image,
    decode,
    make_grids,
    nms,
    preprocess,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("PV_TEST_DATA", REPO.parent / "shared" / "data"))
MODELS_DIR = Path(os.environ.get("PV_MODELS_DIR", SHARED_DATA / "models"))
LEFT_CAMERA = SHARED_DATA / "soccertrack-v1" / "left_camera.mp4"
N_ANCHORS_416 = 52 * 52 + 26 * 26 + 13 * 13  # 3549


def _iou_matrix(xyxy: np.ndarray) -> np.ndarray:
    lt = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
    rb = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=-1)
    return inter / (area[:, None] + area[None, :] - inter)


# --- Detections -----------------------------------------------------------------------------


def test_detections_normalise_dtypes_and_validate() -> None:
    d = Detections.from_arrays(xyxy=[[0, 0, 10, 20]], score=[0.5], class_id=[32])
    assert d.xyxy.dtype == np.float32 and d.score.dtype == np.float32
    assert d.class_id.dtype == np.int16 and len(d) == 1
    assert d.area.tolist() == [200.0]
    with pytest.raises(ValueError, match="x2 >= x1"):
        Detections.from_arrays(xyxy=[[10, 0, 0, 20]], score=[0.5], class_id=[0])
    with pytest.raises(ValueError, match="non-finite"):
        Detections.from_arrays(xyxy=[[0, 0, np.nan, 20]], score=[0.5], class_id=[0])
    with pytest.raises(ValueError, match="non-finite"):
        Detections.from_arrays(xyxy=[[0, 0, 1, 1]], score=[np.inf], class_id=[0])
    with pytest.raises(ValueError, match="score must have shape"):
        Detections.from_arrays(xyxy=[[0, 0, 1, 1]], score=[0.5, 0.4], class_id=[0])
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        Detections.from_arrays(xyxy=[[0, 0, 1]], score=[0.5], class_id=[0])
    with pytest.raises(ValueError, match="int16"):
        Detections.from_arrays(xyxy=[[0, 0, 1, 1]], score=[0.5], class_id=[0.5])


def test_detections_empty_concat_filter() -> None:
    e = Detections.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4)
    a = Detections.from_arrays(xyxy=[[0, 0, 1, 1]], score=[0.9], class_id=[Detections.PERSON])
    b = Detections.from_arrays(
        xyxy=[[2, 2, 3, 3], [4, 4, 5, 5]], score=[0.4, 0.7], class_id=[32, 0]
    )
    c = Detections.concat([a, e, b])
    assert len(c) == 3 and c.class_id.tolist() == [0, 32, 0]
    assert len(Detections.concat([])) == 0
    people = c.of_class(Detections.PERSON)
    assert people.score.tolist() == pytest.approx([0.9, 0.7])
    assert c.filter(np.array([2, 0])).score.tolist() == pytest.approx([0.7, 0.9])
    with pytest.raises(ValueError, match="boolean mask"):
        c.filter(np.array([True, False]))


# --- preprocess / decode / nms --------------------------------------------------------------


def test_preprocess_letterboxes_top_left_with_114() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R stay in this order
    tensor, scale = preprocess(image, (416, 416))
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    assert scale == pytest.approx(416 / 200)
    assert tensor.flags.c_contiguous
    content_h = round(100 * scale)  # 208 rows of content, the rest is padding
    assert tensor[0, :, :content_h, :].reshape(3, -1).min(axis=1).tolist() == [10, 20, 30]
    assert tensor[0, :, :content_h, :].reshape(3, -1).max(axis=1).tolist() == [10, 20, 30]
    assert (tensor[0, :, content_h:, :] == PAD_VALUE).all()


def test_preprocess_native_tile_is_untouched() -> None:
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (416, 300, 3), dtype=np.uint8)
    tensor, scale = preprocess(tile, (416, 416))
    assert scale == 1.0
    np.testing.assert_array_equal(tensor[0].transpose(1, 2, 0)[:, :300], tile)
    assert (tensor[0, :, :, 300:] == PAD_VALUE).all()
    with pytest.raises(ValueError, match="BGR"):
        preprocess(np.zeros((4, 4), np.uint8))


def test_grids_follow_export_order() -> None:
    grid, stride = make_grids((416, 416))
    assert grid.shape == (N_ANCHORS_416, 2) and stride.shape == (N_ANCHORS_416, 1)
    assert grid[1].tolist() == [1, 0] and grid[52].tolist() == [0, 1]  # x fastest
    assert stride[52 * 52 - 1, 0] == 8 and stride[52 * 52, 0] == 16 and stride[-1, 0] == 32
    assert grid[-1].tolist() == [12, 12]


def _raw_with(rows: dict[int, list[float]]) -> np.ndarray:
    raw = np.zeros((1, N_ANCHORS_416, 85), np.float32)
    for idx, values in rows.items():
        raw[0, idx, : len(values)] = values
    return raw


def test_decode_known_cell_gives_known_box() -> None:
    # Stride-16 cell (x=3, y=5): rows of stride 8 come first, then row-major 26x26.
    idx = 52 * 52 + 5 * 26 + 3
    cls = np.zeros(80, np.float32)
    cls[0] = 0.8
    raw = _raw_with({idx: [0.5, 0.25, math.log(2), math.log(4), 0.9, *cls]})
    det = decode(raw, scale=0.5, score_threshold=0.3)
    assert len(det) == 1
    # centre (3.5, 5.25) * 16 = (56, 84), size (2, 4) * 16 = (32, 64), then / scale 0.5
    np.testing.assert_allclose(det.xyxy[0], np.array([40, 52, 72, 116]) / 0.5, rtol=1e-5)
    assert det.score[0] == pytest.approx(0.72)
    assert det.class_id[0] == Detections.PERSON


def test_decode_keeps_best_allowed_class_and_thresholds() -> None:
    ball = np.zeros(80, np.float32)
    ball[32], ball[49] = 0.6, 0.9  # 49 = orange: outside the class set, so "ball" wins
    car = np.zeros(80, np.float32)
    car[2], car[0] = 0.95, 0.2  # person score 0.2 * 0.9 = 0.18: below the threshold
    weak = np.zeros(80, np.float32)
    weak[0] = 0.3  # 0.3 * 0.9 = 0.27
    raw = _raw_with(
        {
            0: [0, 0, 0, 0, 0.9, *ball],  # stride-8 cell (0, 0)
            N_ANCHORS_416 - 1: [0, 0, 0, 0, 0.9, *car],  # stride-32 cell (12, 12)
            100: [0, 0, 0, 0, 0.9, *weak],
        }
    )
    det = decode(raw, scale=1.0, score_threshold=0.3)
    assert det.class_id.tolist() == [Detections.SPORTS_BALL]
    assert det.score[0] == pytest.approx(0.54)
    np.testing.assert_allclose(det.xyxy[0], [-4, -4, 4, 4])  # exp(0) * 8 = 8 px wide
    everything = decode(raw, scale=1.0, score_threshold=0.3, class_ids=range(80))
    assert sorted(everything.class_id.tolist()) == [2, 49]
    assert len(decode(raw, scale=1.0, score_threshold=0.99)) == 0
    with pytest.raises(ValueError, match="anchors"):
        decode(raw[:, :100], scale=1.0, score_threshold=0.3)


def test_nms_is_class_wise_and_clip_clamps() -> None:
    det = Detections.from_arrays(
        xyxy=[[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]],
        score=[0.6, 0.9, 0.8, 0.5],
        class_id=[0, 0, 32, 0],
    )
    kept = nms(det, 0.45)
    assert kept.score.tolist() == pytest.approx([0.9, 0.8, 0.5])  # 0.6 is the duplicate
    assert kept.class_id.tolist() == [0, 32, 0]
    assert len(nms(Detections.empty(), 0.45)) == 0
    clipped = clip_to_image(Detections.from_arrays([[-5, -5, 20, 30]], [0.5], [0]), 15, 25)
    assert clipped.xyxy.tolist() == [[0, 0, 15, 25]]


# --- the real model on a real frame -------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> YoloxDetector:
    if not (MODELS_DIR / YOLOX_NANO_NAME).is_file():
        pytest.skip(f"{YOLOX_NANO_NAME} not in {MODELS_DIR} (set PV_MODELS_DIR)")
    path = resolve_model(MODELS_DIR, url=None)  # verifies the sha256 too
    return YoloxDetector(path, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def frame0() -> np.ndarray:
    if not LEFT_CAMERA.is_file():
        pytest.skip(f"SoccerTrack left camera not at {LEFT_CAMERA} (set PV_TEST_DATA)")
    av = pytest.importorskip("av")
    with av.open(str(LEFT_CAMERA)) as container:
        frame = next(container.decode(video=0))
        return np.asarray(frame.to_ndarray(format="bgr24"))


def test_model_reads_its_input_size(detector: YoloxDetector) -> None:
    assert detector.input_hw == (416, 416)
    assert detector.providers == ["CPUExecutionProvider"]


def test_tiled_finds_many_more_people_than_whole_frame(
    detector: YoloxDetector, frame0: np.ndarray
) -> None:
    height, width = frame0.shape[:2]
    assert (width, height) == (3072, 1728)
    whole = detector.detect(frame0)
    tiles = plan_tiles(width, height, tile=416, overlap=96)
    tiled = detect_tiled(detector, frame0, tiles)
    people_whole = len(whole.of_class(Detections.PERSON))
    people = tiled.of_class(Detections.PERSON)
    # README (threshold 0.25): 6 whole-frame, 44 tiled; at the default 0.3 we see 5 and 39.
    assert 1 <= people_whole <= 10
    assert len(people) >= 35
    assert len(people) >= 4 * people_whole
    assert float(np.median(people.score)) > 0.6
    assert len(tiled.of_class(Detections.SPORTS_BALL)) >= 2
    iou = _iou_matrix(people.xyxy.astype(np.float64))
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.6, "duplicate person boxes survived the merge"
    # No half-player fragment either: on this frame plain NMS keeps two (a box ending on an
    # inner tile border and lying inside the full box from the neighbouring tile).
    xs = {t.x for t in tiles if t.x > 0} | {t.x2 for t in tiles if t.x2 < width}
    ys = {t.y for t in tiles if t.y > 0} | {t.y2 for t in tiles if t.y2 < height}
    b = people.xyxy
    on_border = np.zeros(len(people), bool)
    for x in xs:
        on_border |= (np.abs(b[:, 0] - x) <= 2) | (np.abs(b[:, 2] - x) <= 2)
    for y in ys:
        on_border |= (np.abs(b[:, 1] - y) <= 2) | (np.abs(b[:, 3] - y) <= 2)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inside = (
        np.prod(np.clip(rb - lt, 0, None), axis=-1) / np.prod(b[:, 2:] - b[:, :2], axis=-1)[:, None]
    )
    np.fill_diagonal(inside, 0)
    fragments = on_border & (inside.max(axis=1) >= 0.8)
    assert not fragments.any(), f"tile-edge fragments kept: {b[fragments].tolist()}"
    assert (tiled.xyxy[:, 0::2] >= 0).all() and (tiled.xyxy[:, 0::2] <= width).all()
    assert (tiled.xyxy[:, 1::2] >= 0).all() and (tiled.xyxy[:, 1::2] <= height).all()
