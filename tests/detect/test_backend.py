"""The detector backend: letterbox, both decoders on hand-built outputs, the class map, and real
ONNX Runtime sessions over tiny constant-output models (``tests.detect.onnx_models``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from activities.detect.backend import (
    PAD_VALUE,
    YOLOV8_INPUT,
    YOLOX_INPUT,
    OnnxDetector,
    check_model_file,
    decode_yolov8,
    decode_yolox,
    letterbox,
    make_grids,
    preprocess,
)
from activities.detect.detections import Detections
from activities.detect.model_spec import (
    BUNDLED_SPEC,
    ModelSpec,
    ModelSpecError,
    format_class_map,
    parse_class_map,
    parse_input_size,
    parse_model_ref,
)
from activities.detect.yolox import YoloxDetector
from activities.detect.yolox import decode as yolox_decode
from tests.detect.onnx_models import write_constant_model, yolov8_output
from tests.fixtures.pipeline import MODELS_DIR, requires_model

PERSON, BALL = Detections.PERSON, Detections.SPORTS_BALL
SOCCERTRACK_V2 = MODELS_DIR.parent / "soccertrack-v2-dev" / "images"


def _spec(decoder: str = "yolov8", size: tuple[int, int] = (64, 64), **kw: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "tiny",
        "version": "1",
        "decoder": decoder,
        "input_size": size,
        "class_map": ((0, PERSON), (1, BALL)),
        "sha256": "0" * 64,
    }
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- letterbox and input conventions -------------------------------------------------------


def test_letterbox_fits_top_left_and_pads_grey() -> None:
    image = np.full((100, 200, 3), 7, np.uint8)  # wide: width limits the scale
    canvas, scale = letterbox(image, (64, 96))  # (h, w)
    assert scale == pytest.approx(96 / 200)
    assert canvas.shape == (64, 96, 3)
    assert (canvas[:48] == 7).all()  # 100 * 0.48 = 48 rows of image, pasted at the top
    assert (canvas[48:] == PAD_VALUE).all()


def test_letterbox_at_native_size_copies_pixels_exactly() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert letterbox(image, (64, 64))[1] == pytest.approx(64 / 40)
    small, native = letterbox(image, (40, 40))
    assert native == 1.0
    np.testing.assert_array_equal(small[:, :30], image)
    assert (small[:, 30:] == PAD_VALUE).all()
    with pytest.raises(ValueError, match="BGR"):
        letterbox(np.zeros((4, 4), np.uint8), (8, 8))


def test_input_conventions_yolox_bgr_raw_and_yolov8_rgb_unit() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51  # blue 255, red 51
    bgr, _ = preprocess(image, (8, 8), YOLOX_INPUT)
    rgb, _ = preprocess(image, (8, 8), YOLOV8_INPUT)
    assert bgr.shape == rgb.shape == (1, 3, 8, 8) and bgr.dtype == rgb.dtype == np.float32
    assert bgr[0, :, 0, 0].tolist() == [255.0, 0.0, 51.0]
    np.testing.assert_allclose(rgb[0, :, 0, 0], [0.2, 0.0, 1.0])


# --- decoders -------------------------------------------------------------------------------


def test_yolov8_decoder_maps_boxes_classes_and_threshold() -> None:
    # Classes of the model: 0 person, 1 ball, 2 "orange" (not ours).
    raw = yolov8_output(
        boxes=[(32, 32, 16, 8), (10, 10, 4, 4), (50, 50, 10, 10), (5, 5, 2, 2)],
        scores=[
            [0.9, 0.1, 0.0],  # a person
            [0.0, 0.5, 0.8],  # "orange" scores higher, but the ball is ours and above 0.3
            [0.2, 0.0, 0.0],  # below the threshold
            [0.3, 0.0, 0.0],  # exactly the threshold: not kept (strictly above)
        ],
        n_classes=3,
        n_anchors=10,
    )
    det = decode_yolov8(raw, 0.5, 0.3, class_map=((0, PERSON), (1, BALL)))
    assert det.class_id.tolist() == [PERSON, BALL]
    np.testing.assert_allclose(det.score, [0.9, 0.5])
    # cx, cy, w, h in input pixels, divided by the letterbox scale 0.5.
    np.testing.assert_allclose(det.xyxy, [[48, 56, 80, 72], [16, 16, 24, 24]])
    # The same output, only persons asked for: the ball box is gone.
    persons = decode_yolov8(raw, 1.0, 0.3, class_map=((0, PERSON),))
    assert persons.class_id.tolist() == [PERSON]
    assert len(decode_yolov8(raw, 1.0, 0.95, class_map=((0, PERSON),))) == 0


def test_yolov8_decoder_several_model_classes_to_one_of_ours() -> None:
    # player (0) and goalkeeper (2) are both persons; the box keeps its best of them.
    raw = yolov8_output([(20, 20, 10, 10)], [[0.4, 0.0, 0.7]], n_classes=3, n_anchors=4)
    det = decode_yolov8(raw, 1.0, 0.3, class_map=parse_class_map("person=0,person=2,ball=1"))
    assert det.class_id.tolist() == [PERSON]
    assert det.score.tolist() == pytest.approx([0.7])


def test_yolov8_decoder_refuses_wrong_layouts_and_clamps_negative_sizes() -> None:
    raw = yolov8_output([(20, 20, -4, 6)], [[0.9]], n_classes=1, n_anchors=3)
    det = decode_yolov8(raw, 1.0, 0.3, class_map=((0, PERSON),))
    np.testing.assert_allclose(det.xyxy, [[20, 17, 20, 23]])  # width clamped to 0, not inverted
    with pytest.raises(ValueError, match=r"within \[0, 1\)"):
        decode_yolov8(raw, 1.0, 0.3, class_map=((1, BALL),))
    with pytest.raises(ValueError, match=r"\[1, 4 \+ C, N\]"):
        decode_yolov8(np.zeros((1, 4, 10), np.float32), 1.0, 0.3, class_map=((0, PERSON),))
    with pytest.raises(ValueError, match="one image"):
        decode_yolov8(np.zeros((2, 6, 10), np.float32), 1.0, 0.3, class_map=((0, PERSON),))


def test_yolox_decoder_renames_model_classes_to_ours() -> None:
    input_hw = (64, 64)
    anchors = make_grids(input_hw)[0].shape[0]
    assert anchors == 8 * 8 + 4 * 4 + 2 * 2
    raw = np.zeros((1, anchors, 5 + 2), np.float32)
    raw[0, 9] = [0.5, 0.5, 0, 0, 0.9, 0.0, 0.8]  # stride-8 cell (1, 1): a model-class-1 box
    det = decode_yolox(raw, 1.0, 0.3, input_hw=input_hw, class_map=((0, PERSON), (1, BALL)))
    assert det.class_id.tolist() == [BALL]
    assert det.score.tolist() == pytest.approx([0.72])
    np.testing.assert_allclose(det.xyxy, [[8, 8, 16, 16]])  # centre (1.5 * 8), 8 px wide
    # The YOLOX-flavoured decode reports the model's own index, as it always did.
    coco = yolox_decode(raw, 1.0, 0.3, input_hw=input_hw, class_ids=(0, 1))
    assert coco.class_id.tolist() == [1]
    np.testing.assert_array_equal(coco.xyxy, det.xyxy)
    with pytest.raises(ValueError, match="anchors"):
        decode_yolox(raw[:, :50], 1.0, 0.3, input_hw=input_hw, class_map=((0, PERSON),))


# --- specs and class maps ---------------------------------------------------------------------


def test_class_map_text_round_trips_and_refuses_unknown_classes() -> None:
    parsed = parse_class_map("ball=32, person=0")
    assert parsed == ((0, PERSON), (32, BALL))
    assert format_class_map(parsed) == "person=0,ball=32"
    for bad in ("person", "person=x", "goal=3", "person=0,ball=0", ""):
        with pytest.raises(ValueError):
            parse_class_map(bad)
    assert parse_input_size("640") == (640, 640)
    assert parse_input_size("640x384") == (640, 384)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_input_size("big")
    assert parse_model_ref("yolov8s:2") == ("yolov8s", "2")
    assert parse_model_ref("yolov8s") == ("yolov8s", None)
    with pytest.raises(ValueError, match="name"):
        parse_model_ref("../etc")


def test_spec_validation() -> None:
    assert BUNDLED_SPEC.input_hw == (416, 416) and BUNDLED_SPEC.ref == "yolox-nano:bundled"
    with pytest.raises(ValueError, match="multiple of 32"):
        _spec("yolox", (100, 100))
    with pytest.raises(ValueError, match="decoder"):
        _spec("detr")
    with pytest.raises(ValueError, match="sha256"):
        _spec(sha256="xyz")
    with pytest.raises(ValueError, match="distinct"):
        _spec(class_map=((0, PERSON), (0, BALL)))
    assert _spec(class_map=((3, BALL), (1, PERSON))).class_map == ((1, PERSON), (3, BALL))


# --- real ONNX Runtime sessions ----------------------------------------------------------------


def test_yolov8_model_end_to_end_letterbox_clip_and_nms(tmp_path: Path) -> None:
    raw = yolov8_output(
        boxes=[(32, 16, 16, 8), (33, 16, 16, 8), (60, 40, 20, 20)],
        scores=[[0.9, 0.0], [0.8, 0.0], [0.0, 0.6]],  # the second duplicates the first
        n_classes=2,
        n_anchors=16,
    )
    path = write_constant_model(tmp_path / "v8.onnx", raw, (64, 64))
    detector = OnnxDetector(path, _spec(sha256=_sha(path)), providers=["CPUExecutionProvider"])
    assert detector.input_hw == (64, 64) and detector.providers == ["CPUExecutionProvider"]
    image = np.zeros((150, 200, 3), np.uint8)  # scale 64 / 200 = 0.32
    det = detector.detect(image)
    assert det.class_id.tolist() == [PERSON, BALL]
    np.testing.assert_allclose(det.xyxy[0], [75, 37.5, 125, 62.5], rtol=1e-5)
    # The ball box (50..70 x 30..50 input px = 156..219 x 94..156 image px) is clipped to the
    # 200 x 150 image.
    np.testing.assert_allclose(det.xyxy[1], [156.25, 93.75, 200, 150], rtol=1e-5)
    check_model_file(_spec(sha256=_sha(path)), path)


def test_yolox_model_end_to_end(tmp_path: Path) -> None:
    anchors = make_grids((64, 64))[0].shape[0]
    raw = np.zeros((1, anchors, 5 + 2), np.float32)
    raw[0, 9] = [0.5, 0.5, 0, 0, 0.9, 0.8, 0.0]
    path = write_constant_model(tmp_path / "x.onnx", raw, (64, 64))
    spec = _spec("yolox", sha256=_sha(path))
    det = OnnxDetector(path, spec, providers=["CPUExecutionProvider"]).detect(
        np.zeros((64, 64, 3), np.uint8)
    )
    assert det.class_id.tolist() == [PERSON]
    np.testing.assert_allclose(det.xyxy, [[8, 8, 16, 16]])


def test_a_file_that_does_not_fit_its_spec_is_refused_at_load(tmp_path: Path) -> None:
    raw = yolov8_output([(8, 8, 4, 4)], [[0.9, 0.1]], n_classes=2, n_anchors=4)
    path = write_constant_model(tmp_path / "v8.onnx", raw, (64, 64))
    cpu = ["CPUExecutionProvider"]
    with pytest.raises(ModelSpecError, match="input is 64x64, its spec says 128x128"):
        OnnxDetector(path, _spec(size=(128, 128)), providers=cpu)
    with pytest.raises(ModelSpecError, match="does not fit the yolox decoder"):
        OnnxDetector(path, _spec("yolox"), providers=cpu)
    with pytest.raises(ModelSpecError, match="class map asks for index 32"):
        OnnxDetector(path, _spec(class_map=((0, PERSON), (32, BALL))), providers=cpu)
    # Shapes fit but the values do not decode (a broken export): loading passes, running the
    # model once, as `models add` does, catches it.
    broken = raw.copy()
    broken[0, 0, 0] = np.nan
    path = write_constant_model(tmp_path / "nan.onnx", broken, (64, 64))
    OnnxDetector(path, _spec(), providers=cpu)
    with pytest.raises(ModelSpecError, match="does not decode"):
        check_model_file(_spec(), path)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelSpecError, match="cannot load"):
        check_model_file(_spec(), tmp_path / "junk.onnx")


@requires_model
def test_bundled_spec_detects_exactly_as_yolox_detector() -> None:
    """The bundled default through the generic backend gives YoloxDetector's boxes, bit for bit."""
    images = sorted(SOCCERTRACK_V2.glob("*.jpg"))
    if not images:
        pytest.skip(f"no SoccerTrack-v2 frames in {SOCCERTRACK_V2} (set PV_MODELS_DIR)")
    import cv2

    image = cv2.imread(str(images[0]))
    assert image is not None
    # One 416 tile at native resolution, where the players are.
    crop = np.ascontiguousarray(image[300:716, 800:1216], dtype=np.uint8)
    path = MODELS_DIR / "yolox_nano.onnx"
    cpu = ["CPUExecutionProvider"]
    generic = OnnxDetector(path, BUNDLED_SPEC, providers=cpu).detect(crop)
    legacy = YoloxDetector(path, providers=cpu).detect(crop)
    assert len(generic) > 0
    np.testing.assert_array_equal(generic.xyxy, legacy.xyxy)
    np.testing.assert_array_equal(generic.score, legacy.score)
    np.testing.assert_array_equal(generic.class_id, legacy.class_id)
