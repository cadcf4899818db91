"""How the detector runs: session options, execution providers, the machine's layout, and the
session pool, which must find exactly what one session finds tile by tile.

The real-model tests need ``yolox_nano.onnx`` and the SoccerTrack-v2 frames (``PV_MODELS_DIR``,
else ``<repo>/../shared/data``) and skip, saying what is missing, where those are absent.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from activities.detect.backend import OnnxDetector
from activities.detect.detections import Detections
from activities.detect.inference import (
    CPU_EP,
    CUDA_EP,
    INTER_OP_SPINNING,
    INTRA_OP_SPINNING,
    TENSORRT_EP,
    BatchProfile,
    DetectorPool,
    InferenceSettings,
    build_detector,
    engine_cache_path,
    execution_providers,
    session_options,
    settings_for_machine,
    slug,
)
from activities.detect.model_spec import BUNDLED_SPEC
from tests.fixtures.pipeline import MODELS_DIR, requires_model

SOCCERTRACK_V2 = MODELS_DIR.parent / "soccertrack-v2-dev" / "images"
MODEL = MODELS_DIR / "yolox_nano.onnx"
H100 = "NVIDIA H100 80GB HBM3"


# --- session options ----------------------------------------------------------------------


@pytest.mark.parametrize(("spinning", "value"), [(False, "0"), (True, "1")])
def test_session_options_carry_threads_and_spinning(spinning: bool, value: str) -> None:
    options = session_options(InferenceSettings(intra_op_threads=3, allow_spinning=spinning))
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry(INTRA_OP_SPINNING) == value
    assert options.get_session_config_entry(INTER_OP_SPINNING) == value


def test_settings_refuse_what_cannot_run() -> None:
    with pytest.raises(ValueError, match="backend"):
        InferenceSettings("rocm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sessions"):
        InferenceSettings(sessions=0)
    with pytest.raises(ValueError, match="intra_op_threads"):
        InferenceSettings(intra_op_threads=-1)
    with pytest.raises(ValueError, match="CPU layout"):
        InferenceSettings("cuda", sessions=2)


# --- execution providers ------------------------------------------------------------------


def test_cpu_and_cuda_provider_lists() -> None:
    assert execution_providers(InferenceSettings("cpu")) == [CPU_EP]
    cuda = execution_providers(InferenceSettings("cuda"), H100, "10.9.0")
    assert [p if isinstance(p, str) else p[0] for p in cuda] == [CUDA_EP, CPU_EP]
    assert not isinstance(cuda[0], str) and cuda[0][1]["device_id"] == "0"


def test_tensorrt_providers_cache_engines_per_gpu_and_version(tmp_path: Path) -> None:
    settings = InferenceSettings("tensorrt", fp16=True, cache_dir=tmp_path)
    providers = execution_providers(settings, H100, "10.9.0.34")
    assert [p if isinstance(p, str) else p[0] for p in providers] == [TENSORRT_EP, CUDA_EP, CPU_EP]
    trt = providers[0]
    assert not isinstance(trt, str)
    folder = str(tmp_path / "nvidia-h100-80gb-hbm3-trt10.9.0.34")
    assert dict(trt[1]) == {
        "device_id": "0",
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": folder,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": folder,
    }
    assert engine_cache_path(tmp_path, H100, "10.9.0.34") == Path(folder)


def test_tensorrt_without_cache_dir_and_fp32_and_batch_profile() -> None:
    profile = BatchProfile("images", (416, 416), max_batch=24, opt_batch=16)
    providers = execution_providers(
        InferenceSettings("tensorrt", fp16=False), H100, "10.9", batch_profile=profile
    )
    trt = providers[0]
    assert not isinstance(trt, str)
    assert dict(trt[1]) == {
        "device_id": "0",
        "trt_fp16_enable": "False",
        "trt_profile_min_shapes": "images:1x3x416x416",
        "trt_profile_opt_shapes": "images:16x3x416x416",
        "trt_profile_max_shapes": "images:24x3x416x416",
    }
    with pytest.raises(ValueError, match="opt_batch"):
        BatchProfile("images", (416, 416), max_batch=4, opt_batch=5).trt_options()


def test_slug_makes_file_names() -> None:
    assert slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert slug("NVIDIA GeForce RTX 4090 / (x)") == "nvidia-geforce-rtx-4090-x"
    assert slug("10.9.0.34") == "10.9.0.34"
    assert slug("  ") == "unknown"


# --- the machine's layout -----------------------------------------------------------------


def test_settings_for_machine_prefers_tensorrt_then_cuda_then_cpu(tmp_path: Path) -> None:
    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = settings_for_machine(16, gpu_build, [H100], cache_dir=tmp_path)
    assert (trt.backend, trt.sessions, trt.fp16, trt.cache_dir) == ("tensorrt", 1, True, tmp_path)
    assert settings_for_machine(16, gpu_build[1:], [H100]).backend == "cuda"
    # A GPU build of ONNX Runtime on a machine without a GPU runs on the CPU.
    assert settings_for_machine(16, gpu_build, []).backend == "cpu"


def test_settings_for_machine_on_cpu_is_one_single_thread_session_per_core() -> None:
    cpu = settings_for_machine(8, [CPU_EP], [])
    assert cpu == InferenceSettings("cpu", sessions=8, intra_op_threads=1, allow_spinning=False)
    assert settings_for_machine(0, [CPU_EP], []).sessions == 1


# --- detectors on the real model ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiles() -> list[np.ndarray]:
    """Six 416 tiles at native resolution from a SoccerTrack-v2 panorama, where players are."""
    if not MODEL.is_file():
        pytest.skip(f"yolox_nano.onnx not found in {MODELS_DIR} (set PV_MODELS_DIR)")
    images = sorted(SOCCERTRACK_V2.glob("*.jpg"))
    if not images:
        pytest.skip(f"no SoccerTrack-v2 frames in {SOCCERTRACK_V2} (set PV_MODELS_DIR)")
    import cv2

    image = cv2.imread(str(images[0]))
    assert image is not None
    crops = [
        np.ascontiguousarray(image[y : y + 416, x : x + 416])
        for y in (300, 600)
        for x in (400, 800, 1200)
    ]
    # The last one smaller: letterboxed, as a tile at the image edge is.
    crops[-1] = np.ascontiguousarray(crops[-1][:300, :350])
    return crops


def _assert_same(expected: list[Detections], got: list[Detections]) -> None:
    assert len(got) == len(expected)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g.xyxy, e.xyxy)
        np.testing.assert_array_equal(g.score, e.score)
        np.testing.assert_array_equal(g.class_id, e.class_id)


def _one_by_one(detector: OnnxDetector, images: list[np.ndarray]) -> list[Detections]:
    return [detector.detect(t, score_threshold=0.3, nms_iou=0.45) for t in images]


@requires_model
def test_pool_detect_many_finds_what_one_session_finds_tile_by_tile(
    tiles: list[np.ndarray],
) -> None:
    single = OnnxDetector(MODEL, BUNDLED_SPEC, providers=[CPU_EP], intra_op_threads=1)
    expected = _one_by_one(single, tiles)
    assert sum(len(d) for d in expected) > 0
    settings = InferenceSettings("cpu", sessions=2, intra_op_threads=1)
    pool = build_detector(MODEL, BUNDLED_SPEC, settings)
    assert isinstance(pool, DetectorPool)
    with pool:
        assert len(pool.detectors) == 2
        _assert_same(expected, pool.detect_many(tiles, score_threshold=0.3, nms_iou=0.45))
        # detect() alone, from several threads at once, takes a free session each time.
        got: list[Detections | None] = [None] * len(tiles)

        def work(i: int) -> None:
            got[i] = pool.detect(tiles[i], score_threshold=0.3, nms_iou=0.45)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tiles))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _assert_same(expected, [d for d in got if d is not None])
        assert pool.detect_many([], score_threshold=0.3, nms_iou=0.45) == []


@requires_model
def test_fixed_batch_detector_runs_many_one_by_one(tiles: list[np.ndarray]) -> None:
    settings = InferenceSettings("cpu", sessions=1, intra_op_threads=1)
    detector = build_detector(MODEL, BUNDLED_SPEC, settings)
    assert isinstance(detector, OnnxDetector)
    assert not detector.batched  # the bundled export fixes its batch axis to 1
    expected = _one_by_one(detector, tiles)
    _assert_same(expected, detector.detect_many(tiles, score_threshold=0.3, nms_iou=0.45))


@requires_model
def test_dynamic_batch_copy_detects_a_batch_as_tile_by_tile(
    tiles: list[np.ndarray], tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="the dynamic-batch copy needs the onnx package")
    from bench.gpu_pipeline import dynamic_batch_model, matched_fraction

    batched_path = dynamic_batch_model(MODEL, tmp_path / "batch.onnx")
    reference = OnnxDetector(MODEL, BUNDLED_SPEC, providers=[CPU_EP], intra_op_threads=1)
    batched = OnnxDetector(batched_path, BUNDLED_SPEC, providers=[CPU_EP], intra_op_threads=1)
    assert batched.batched
    expected = _one_by_one(reference, tiles)
    got = batched.detect_many(tiles, score_threshold=0.3, nms_iou=0.45)
    # Batched convolutions may sum in another order: same boxes, to float32 rounding.
    assert matched_fraction(expected, got, iou=0.99) == 1.0
    for e, g in zip(expected, got, strict=True):
        assert len(g) == len(e)
        np.testing.assert_allclose(g.xyxy, e.xyxy, atol=1e-2)
        np.testing.assert_allclose(g.score, e.score, atol=1e-4)


@requires_model
def test_detector_takes_options_or_threads_not_both() -> None:
    with pytest.raises(ValueError, match="session_options"):
        OnnxDetector(
            MODEL,
            BUNDLED_SPEC,
            providers=[CPU_EP],
            intra_op_threads=2,
            session_options=session_options(InferenceSettings()),
        )
