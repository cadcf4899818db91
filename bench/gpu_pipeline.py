"""The detector on a GPU: CUDA and TensorRT FP16 vs the CPU layout, batch vs tile by tile.

The Python half of ``scripts/gpu_check.sh``, for a lent GPU machine; it also runs on CPU
(``--backends cpu``), which is how it is tested where there is no GPU. For each backend:

- which execution providers the session really got (ONNX Runtime falls back to CPU, with only
  a log line, when the CUDA or TensorRT libraries do not load: ``fell_back`` says so);
- how long the session takes to start (for TensorRT: the engine build, then a second start
  that should load the engine from the cache);
- milliseconds per frame (all the frame's tiles) as one batch and tile by tile, and tiles per
  second, against the CPU layout :func:`~activities.detect.inference.settings_for_machine`
  picks (the CPU baseline);
- how well its boxes agree with the CPU's (FP16 moves scores a little): the fraction of CPU
  boxes matched by a box of the same class at IoU >= 0.5.

The bundled YOLOX export fixes its batch axis to 1, so batching needs a copy with a dynamic
batch axis (:func:`dynamic_batch_model`, which needs the ``onnx`` package; without it only the
tile-by-tile figures are measured).

Results are written, after each backend (so a timeout keeps what was done), to
``--out/gpu_check.json`` (``$OUT`` by default; nothing is written without either).

Run: ``python -m bench.gpu_pipeline --backends cpu,cuda,tensorrt [--tiles tiles.npz]``;
``--save-tiles tiles.npz`` writes the real tiles for a machine without the recording.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnxruntime as ort

from activities.detect.backend import OnnxDetector
from activities.detect.detections import Detections
from activities.detect.inference import (
    CPU_EP,
    CUDA_EP,
    TENSORRT_EP,
    Backend,
    BatchProfile,
    DetectorPool,
    InferenceSettings,
    build_detector,
    probe_tensorrt_version,
    settings_for_machine,
)
from activities.detect.model_spec import BUNDLED_SPEC
from bench.detect_tiling import LEFT_CAMERA, MODELS_DIR
from polyvision.capabilities import detect_capabilities

MODEL_NAME = "yolox_nano.onnx"
EXPECTED_EP = {"cpu": CPU_EP, "cuda": CUDA_EP, "tensorrt": TENSORRT_EP}

Detector = OnnxDetector | DetectorPool


def dynamic_batch_model(src: Path, dst: Path) -> Path:
    """Copy an export whose batch axis is fixed to 1 with a dynamic (named) batch axis.

    The input's and outputs' first axis becomes ``batch``, and every ``Reshape`` whose target
    shape is a constant starting with 1 gets 0 there instead ("copy the input's axis": the
    batch, in the YOLOX head's ``[1, 85, -1]`` reshapes). Intermediate shape annotations are
    dropped (they spell batch 1). Check the copy against the original on a batch: this is
    written for exports like ours, not every graph.

    Raises:
        ModuleNotFoundError: the ``onnx`` package is not installed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    initializers = {t.name: t for t in graph.initializer}
    constants = {
        node.output[0]: attr.t
        for node in graph.node
        if node.op_type == "Constant"
        for attr in node.attribute
        if attr.name == "value"
    }
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        tensor = initializers.get(node.input[1]) or constants.get(node.input[1])
        if tensor is None:
            continue
        shape = numpy_helper.to_array(tensor).copy()
        if shape.ndim == 1 and shape.size > 0 and shape[0] == 1:
            shape[0] = 0
            tensor.CopyFrom(numpy_helper.from_array(shape, tensor.name))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def real_tiles() -> tuple[list[np.ndarray], str] | None:
    """The pitch tiles of frame 0 of the left camera (see ``bench.ort_threads``), if present."""
    if not LEFT_CAMERA.is_file():
        return None
    try:
        from bench.ort_threads import real_tiles as cut

        return cut(LEFT_CAMERA)
    except ImportError:  # PyAV missing (the lent GPU machines have none)
        return None


def load_tiles(path: Path | None, count: int) -> tuple[list[np.ndarray], str]:
    """Tiles from ``--tiles``, else from the recording, else synthetic noise."""
    if path is not None:
        with np.load(path) as data:
            tiles = [np.ascontiguousarray(t) for t in data["tiles"]]
            source = str(data["source"])
        return tiles[:count], source
    found = real_tiles()
    if found is not None:
        return found[0][:count], found[1]
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (416, 416, 3), dtype=np.uint8) for _ in range(count)]
    return tiles, f"{count} synthetic noise tiles (no recording, no --tiles)"


def matched_fraction(reference: list[Detections], other: list[Detections], iou: float) -> float:
    """Fraction of reference boxes with a same-class box in ``other`` at IoU >= ``iou``."""
    total = hits = 0
    for ref, got in zip(reference, other, strict=True):
        total += len(ref)
        if len(ref) == 0 or len(got) == 0:
            continue
        a, b = ref.xyxy[:, None, :], got.xyxy[None, :, :]
        wh = np.clip(
            np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None
        )
        inter = wh[..., 0] * wh[..., 1]
        union = ref.area[:, None] + got.area[None, :] - inter
        same_class = ref.class_id[:, None] == got.class_id[None, :]
        hits += int(((inter / np.maximum(union, 1e-6) >= iou) & same_class).any(axis=1).sum())
    return 1.0 if total == 0 else hits / total


def time_frames(run: Callable[[], list[Detections]], frames: int) -> tuple[float, list[Detections]]:
    """Median milliseconds of ``frames`` runs (after one warm-up) and the detections."""
    found = run()
    times = []
    for _ in range(frames):
        started = time.perf_counter()
        found = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3, found


def one_by_one(detector: Detector, tiles: Sequence[np.ndarray]) -> list[Detections]:
    """Each tile through :meth:`detect` on the calling thread."""
    return [detector.detect(t, score_threshold=0.3, nms_iou=0.45) for t in tiles]


def many(detector: Detector, tiles: Sequence[np.ndarray]) -> list[Detections]:
    """All tiles through :meth:`detect_many` (one batch, or spread over sessions)."""
    return detector.detect_many(tiles, score_threshold=0.3, nms_iou=0.45)


def check_backend(
    backend: str,
    model: Path,
    batched_model: Path | None,
    tiles: list[np.ndarray],
    *,
    cache_dir: Path,
    device_name: str,
    trt_version: str,
    frames: int,
    cpu_ms: float,
    cpu_found: list[Detections],
) -> dict[str, Any]:
    """Start ``backend``'s session (twice for TensorRT) and time it batched and tile by tile."""
    settings = InferenceSettings(
        cast(Backend, backend),
        intra_op_threads=1,
        fp16=True,
        cache_dir=cache_dir if backend == "tensorrt" else None,
    )
    path = batched_model or model
    profile = (
        BatchProfile("images", BUNDLED_SPEC.input_hw, max_batch=len(tiles))
        if batched_model is not None
        else None
    )

    def start() -> tuple[Detector, float]:
        started = time.perf_counter()
        detector = build_detector(
            path,
            BUNDLED_SPEC,
            settings,
            device_name=device_name,
            trt_version=trt_version,
            batch_profile=profile,
            adopt_model_input_size=True,
        )
        # A TensorRT engine is built on the first run, not at session creation.
        many(detector, tiles)
        return detector, time.perf_counter() - started

    detector, first_start = start()
    result: dict[str, Any] = {
        "providers": detector.providers,
        "fell_back": detector.providers[0] != EXPECTED_EP[backend],
        "model": "dynamic batch copy" if batched_model is not None else "fixed batch 1",
        "first_start_and_run_s": round(first_start, 2),
    }
    if backend == "tensorrt":
        del detector
        detector, second_start = start()
        result["cached_start_and_run_s"] = round(second_start, 2)
        result["engine_cache_files"] = sorted(
            str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*") if p.is_file()
        )
    single_ms, single_found = time_frames(lambda: one_by_one(detector, tiles), frames)
    result["one_by_one_ms_per_frame"] = round(single_ms, 2)
    if batched_model is not None:
        batch_ms, batch_found = time_frames(lambda: many(detector, tiles), frames)
        result["batch_ms_per_frame"] = round(batch_ms, 2)
        result["batch_vs_one_by_one_speedup"] = round(single_ms / batch_ms, 2)
        result["batch_agrees_with_one_by_one"] = round(
            matched_fraction(single_found, batch_found, 0.5), 3
        )
    best_ms = min(result.get("batch_ms_per_frame", single_ms), single_ms)
    result["tiles_per_s"] = round(len(tiles) / best_ms * 1e3, 1)
    result["speedup_vs_cpu"] = round(cpu_ms / best_ms, 2)
    result["cpu_boxes_matched"] = round(matched_fraction(cpu_found, single_found, 0.5), 3)
    result["boxes"] = sum(len(d) for d in single_found)
    return result


def write(out: Path | None, record: dict[str, Any]) -> None:
    """Write the record so far (called after each stage)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default="cuda,tensorrt", help="comma list: cpu,cuda,tensorrt")
    parser.add_argument("--tiles", type=Path, default=None, help="npz from --save-tiles")
    parser.add_argument("--max-tiles", type=int, default=32)
    parser.add_argument("--frames", type=int, default=20, help="timed frames per mode")
    parser.add_argument("--cpu-frames", type=int, default=3, help="timed frames, CPU baseline")
    parser.add_argument("--budget-s", type=float, default=240.0, help="skip backends after this")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) if "OUT" in os.environ else None
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="TensorRT engine cache")
    parser.add_argument("--save-tiles", type=Path, default=None, help="write tiles and exit")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    tiles, source = load_tiles(args.tiles, args.max_tiles)
    if args.save_tiles is not None:
        np.savez_compressed(args.save_tiles, tiles=np.stack(tiles), source=np.array(source))
        print(f"wrote {len(tiles)} tiles to {args.save_tiles}")
        return {}

    model = MODELS_DIR / MODEL_NAME
    if not model.is_file():
        sys.exit(f"MISSING: {MODEL_NAME} not in {MODELS_DIR} (set PV_MODELS_DIR)")
    # Outside --out: the model copy and the engines need not travel back with the results.
    work = Path(tempfile.gettempdir()) / "polyvision-gpu-check"
    cache_dir = args.cache_dir or work / "trt_engines"
    gpus = [gpu.name for gpu in detect_capabilities().gpus]
    record: dict[str, Any] = {
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "gpus": gpus,
        "tensorrt": probe_tensorrt_version(),
        "tiles": len(tiles),
        "tile_source": source,
        "backends": {},
    }
    batched: Path | None
    try:
        batched = dynamic_batch_model(model, work / "yolox_nano_batch.onnx")
        record["dynamic_batch_model"] = "made"
    except ModuleNotFoundError as exc:
        batched = None
        record["dynamic_batch_model"] = f"MISSING {exc.name}: batch figures skipped"

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if {"cuda", "tensorrt"} & set(backends) and hasattr(ort, "preload_dlls"):
        # onnxruntime-gpu >= 1.21 finds CUDA and cuDNN in the nvidia-* pip packages this way.
        try:
            ort.preload_dlls()
            record["preload_dlls"] = "ok"
        except Exception as exc:  # ONNX Runtime's own error types; the sessions will say more
            record["preload_dlls"] = f"failed: {exc}"

    cpu_settings = settings_for_machine(os.cpu_count() or 1, [CPU_EP], [])
    cpu = build_detector(model, BUNDLED_SPEC, cpu_settings, adopt_model_input_size=True)
    cpu_ms, cpu_found = time_frames(lambda: many(cpu, tiles), args.cpu_frames)
    if isinstance(cpu, DetectorPool):
        cpu.close()
    record["cpu_baseline"] = {
        "layout": f"{cpu_settings.sessions} sessions x {cpu_settings.intra_op_threads} thread",
        "ms_per_frame": round(cpu_ms, 1),
        "tiles_per_s": round(len(tiles) / cpu_ms * 1e3, 1),
        "boxes": sum(len(d) for d in cpu_found),
    }
    write(args.out, record)
    print(f"CPU baseline: {record['cpu_baseline']}", flush=True)

    for backend in backends:
        if backend not in EXPECTED_EP:
            record["backends"][backend] = {"error": "unknown backend"}
            continue
        if time.perf_counter() - started > args.budget_s:
            record["backends"][backend] = {"skipped": f"time budget {args.budget_s} s spent"}
            continue
        if EXPECTED_EP[backend] not in ort.get_available_providers():
            record["backends"][backend] = {
                "skipped": f"MISSING: this onnxruntime has no {EXPECTED_EP[backend]} "
                "(install onnxruntime-gpu; TensorRT also needs the tensorrt libraries)"
            }
            print(f"{backend}: {record['backends'][backend]['skipped']}", flush=True)
            write(args.out, record)
            continue
        try:
            figures = check_backend(
                backend,
                model,
                batched,
                tiles,
                cache_dir=cache_dir,
                device_name=gpus[0] if gpus else "cpu",
                trt_version=record["tensorrt"] or "unknown",
                frames=args.frames,
                cpu_ms=cpu_ms,
                cpu_found=cpu_found,
            )
        except Exception as exc:  # report the failure of one backend and go on to the next
            figures = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        record["backends"][backend] = figures
        print(f"{backend}: {json.dumps(figures)}", flush=True)
        write(args.out, record)
    record["run_s"] = round(time.perf_counter() - started, 1)
    write(args.out, record)
    return record


if __name__ == "__main__":
    main()
