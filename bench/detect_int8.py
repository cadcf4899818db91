"""INT8 YOLOX-nano on real panoramas: does recall hold, and how much CPU does it save?

The float model (``fp32``) and its 8-bit versions (:mod:`bench.int8_model`) detect
the labelled SoccerTrack-v2 panoramas side by side, with the pipeline's tiling (the default
layout ``x1.5-o96``: 277-px windows resized to the 416 input, tiles planned with the pitch as
the region of interest) and scored as ``bench/detect_real.py`` scores its ``pitch`` scope
(detections with their feet on the pitch; person and ball recall/precision at IoU 0.3 and
0.5, ``evaluation.detection.detection_pr``). Its loading, tiling and scoring functions are
reused, not copied.

- **Calibration on one source, evaluation on the others**: the static INT8 model is calibrated
  on the pitch tiles of the first ``--calibration-frames`` frames of clip
  ``--calibration-clip`` (default ``1st_6``, 3 frames, 120 tiles); the whole clip is then
  left out, and the figures are on the frames of the other clips (39 of the 48 by default).
- **Variants** (``--variants``): ``fp32``; ``int8`` (static QDQ, per-channel signed weights,
  unsigned activations, min-max ranges, output head float); ``int8-dynamic`` (weights only,
  ``ConvInteger``); and for experiments ``int8-percentile``, ``int8-entropy``,
  ``int8-pertensor``, ``int8-qhead`` (the output head quantized too).
- **Recall and precision**: at each variant's own operating point (the lowest threshold on
  the 0.05 grid with person precision@0.3 >= ``--precision``, as ``detect_real``), and at the
  float model's operating threshold (the same threshold for all: what swapping the file in
  the pipeline would give). ``agreement``: the share of the float model's person boxes at that
  threshold that the variant also finds (IoU >= 0.5).
- **CPU per tile**: ``time.process_time`` (CPU seconds of this process, so load from other
  processes adds no time, only cache contention), one ONNX Runtime intra-op thread.
  ``detect_cpu_s_per_tile``: the whole tile in the detection pass (resize, letterbox,
  inference, decode, per-tile NMS), variants interleaved image by image in a rotating order.
  ``infer_cpu_s_per_tile``: inference alone on the same preprocessed tiles, ``--rounds``
  rounds, each round running every variant in a rotating order; the ratio is the median of
  the per-round ratios to ``fp32``.

Run: ``python -m bench.detect_int8`` (about 4 minutes on 2 cores; ``--images N`` for the first N
evaluation frames only). Needs the ``onnx`` package. ``PV_TEST_DATA`` and ``PV_MODELS_DIR``
override the data locations. Writes ``bench/results/detect_int8.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from activities.detect.backend import OnnxDetector
from activities.detect.detections import Detections
from activities.detect.model_spec import BUNDLED_SPEC
from activities.detect.model_store import YOLOX_NANO_NAME, resolve_model
from activities.detect.tiling import detect_tiles
from bench.detect_real import (
    DATASET,
    FEET_MARGIN,
    INTERPOLATIONS,
    LAYOUTS,
    MODELS_DIR,
    PITCH_POLYGON,
    Frame,
    Layout,
    PerTile,
    Run,
    Scope,
    _matched_truth,
    evaluate,
    feet_mask,
    load_frames,
    score_at,
)
from bench.int8_model import QuantSettings, quantize_model
from bench.results_file import write_results

VARIANTS: dict[str, QuantSettings | None] = {
    "fp32": None,
    "int8": QuantSettings(),
    "int8-dynamic": QuantSettings(mode="dynamic"),
    "int8-percentile": QuantSettings(calibration="percentile"),
    "int8-entropy": QuantSettings(calibration="entropy"),
    "int8-pertensor": QuantSettings(per_channel=False),
    "int8-qhead": QuantSettings(float_head=False),
}
DEFAULT_VARIANTS = ("fp32", "int8", "int8-dynamic")
DEFAULT_LAYOUT = "x1.5-o96"  # the detect stage's defaults (tile 416, overlap 96, upscale 1.5)


def clip_of(frame: Frame) -> str:
    """The clip a frame comes from: ``1st_6`` for ``G_20231125_TOP_B_1st_6_004_png...``."""
    parts = frame.path.name.split("_png")[0].split("_")
    return "_".join(parts[-3:-1])


def read_image(frame: Frame) -> np.ndarray:
    raw = cv2.imread(str(frame.path))
    if raw is None:
        raise FileNotFoundError(frame.path)
    return np.asarray(raw, np.uint8)


def tile_images(image: np.ndarray, layout: Layout, roi: np.ndarray) -> list[np.ndarray]:
    """The pitch tiles of one image as the detector gets them (cropped, resized to 416)."""
    height, width = image.shape[:2]
    out = []
    for tile in layout.tiles(width, height, roi):
        crop = tile.crop(image)
        if tile.input_size != (tile.w, tile.h):
            resized = cv2.resize(
                crop, tile.input_size, interpolation=INTERPOLATIONS[layout.interpolation]
            )
            crop = np.asarray(resized, np.uint8)
        out.append(crop)
    return out


def build_models(
    source: Path, workdir: Path, names: list[str], calibration: list[np.ndarray]
) -> tuple[dict[str, Path], dict[str, float]]:
    """Each variant's model file, and the seconds each quantization took."""
    paths: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    for name in names:
        settings = VARIANTS[name]
        if settings is None:
            paths[name] = source
            continue
        started = time.perf_counter()
        paths[name] = quantize_model(
            source, workdir / f"{name}.onnx", calibration, BUNDLED_SPEC, settings
        )
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"  quantized {name} in {seconds[name]:.1f} s")
    return paths, seconds


def detect_pass(
    detectors: dict[str, OnnxDetector],
    frames: list[Frame],
    layout: Layout,
    floor: float,
) -> dict[str, Run]:
    """Every pitch tile's detections at ``floor`` and its CPU seconds, per variant and image."""
    names = list(detectors)
    runs: dict[str, Run] = {}
    for i, frame in enumerate(frames):
        image = read_image(frame)
        height, width = image.shape[:2]
        tiles = layout.tiles(width, height, PITCH_POLYGON)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            run = runs.setdefault(name, Run([], [], (width, height)))
            per_tile: PerTile = []
            seconds = []
            for tile in tiles:
                started = time.process_time()
                per_tile += detect_tiles(
                    detectors[name],
                    image,
                    [tile],
                    score_threshold=floor,
                    interpolation=INTERPOLATIONS[layout.interpolation],
                )
                seconds.append(time.process_time() - started)
            run.per_image.append(per_tile)
            run.tile_seconds.append(seconds)
        print(f"  image {i + 1}/{len(frames)}", end="\r", flush=True)
    print()
    return runs


def timing_rounds(
    detectors: dict[str, OnnxDetector], tiles: list[np.ndarray], rounds: int
) -> dict[str, list[float]]:
    """CPU seconds per tile of inference alone, per variant and round (rotating order)."""
    names = list(detectors)
    tensors = [detectors[names[0]].preprocess(t)[0] for t in tiles]
    for detector in detectors.values():  # warm-up: first runs allocate
        detector.infer(tensors[0])
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            detector = detectors[name]
            started = time.process_time()
            for tensor in tensors:
                detector.infer(tensor)
            out[name].append((time.process_time() - started) / len(tensors))
    return out


def agreement(
    reference: list[PerTile], other: list[PerTile], scope: Scope, threshold: float, size
) -> float | None:
    """Share of the reference's person boxes (at ``threshold``) the other finds at IoU 0.5."""
    found = total = 0
    for ref_tiles, other_tiles in zip(reference, other, strict=True):
        ref = scope.merged(ref_tiles, threshold, size).of_class(Detections.PERSON)
        oth = scope.merged(other_tiles, threshold, size).of_class(Detections.PERSON)
        found += int(_matched_truth(ref.xyxy.astype(np.float64), oth, 0.5).sum())
        total += len(ref)
    return round(found / total, 4) if total else None


def _rp(point: dict[str, Any], key: str) -> dict[str, Any]:
    s = point[key]
    return {"recall": s["recall"], "precision": s["precision"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=",".join(VARIANTS))
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, help=",".join(LAYOUTS))
    parser.add_argument("--calibration-clip", default="1st_6", help="left out of the scores")
    parser.add_argument("--calibration-frames", type=int, default=3)
    parser.add_argument("--images", type=int, default=None, help="first N evaluation frames")
    parser.add_argument("--floor", type=float, default=0.05, help="lowest threshold swept")
    parser.add_argument("--precision", type=float, default=0.85, help="operating point rule")
    parser.add_argument("--rounds", type=int, default=7, help="inference timing rounds")
    parser.add_argument("--timing-images", type=int, default=2, help="their tiles are timed")
    parser.add_argument("--keep", type=Path, default=None, help="keep the models in this folder")
    args = parser.parse_args(argv)

    names = args.variants.split(",")
    if names[0] != "fp32" or any(n not in VARIANTS for n in names):
        parser.error(f"--variants: fp32 first, then any of {', '.join(VARIANTS)}")
    layout = LAYOUTS[args.layout]
    frames = load_frames(DATASET, None)
    clip_frames = [f for f in frames if clip_of(f) == args.calibration_clip]
    if not clip_frames:
        parser.error(f"no frames of clip {args.calibration_clip!r} in {DATASET.name}")
    calibration_frames = clip_frames[: args.calibration_frames]
    evaluation = [f for f in frames if clip_of(f) != args.calibration_clip]
    all_evaluation = len(evaluation)
    evaluation = evaluation[: args.images]
    calibration = [
        t for f in calibration_frames for t in tile_images(read_image(f), layout, PITCH_POLYGON)
    ]
    print(
        f"calibration: {len(calibration)} tiles of {len(calibration_frames)} frames of clip "
        f"{args.calibration_clip}; evaluation: {len(evaluation)} frames of the other clips"
    )

    source = resolve_model(MODELS_DIR, YOLOX_NANO_NAME, url=None)
    with tempfile.TemporaryDirectory(prefix="pv-int8-") as tmp:
        workdir = args.keep if args.keep is not None else Path(tmp)
        paths, quantize_s = build_models(source, workdir, names, calibration)
        detectors = {
            name: OnnxDetector(
                path, BUNDLED_SPEC, providers=["CPUExecutionProvider"], intra_op_threads=1
            )
            for name, path in paths.items()
        }
        sizes = {name: path.stat().st_size for name, path in paths.items()}
        runs = detect_pass(detectors, evaluation, layout, args.floor)
        timing_tiles = [
            t
            for f in evaluation[: args.timing_images]
            for t in tile_images(read_image(f), layout, PITCH_POLYGON)
        ]
        rounds = timing_rounds(detectors, timing_tiles, args.rounds)

    width, height = runs["fp32"].size
    scope = Scope(
        "pitch",
        frozenset(layout.tiles(width, height, PITCH_POLYGON)),
        feet_mask(PITCH_POLYGON, width, height, FEET_MARGIN),
    )
    details = {
        name: evaluate(layout, runs[name], evaluation, scope, args.precision, args.floor)
        for name in names
    }
    fp32_threshold = details["fp32"]["operating_point"]["threshold"]
    base_tile = float(np.mean(np.concatenate(runs["fp32"].tile_seconds)))
    summary: dict[str, Any] = {}
    for name in names:
        op = details[name]["operating_point"]
        at_fp32, _ = score_at(
            evaluation, runs[name].per_image, scope, fp32_threshold, runs[name].size
        )
        tile_s = float(np.mean(np.concatenate(runs[name].tile_seconds)))
        infer = rounds[name]
        summary[name] = {
            "model_bytes": sizes[name],
            "quantize_seconds": quantize_s.get(name),
            "settings": None if VARIANTS[name] is None else vars(VARIANTS[name]),
            "own_operating_point": {
                "threshold": op["threshold"],
                "rule": op["rule"],
                **{k: _rp(op, k) for k in ("person@0.3", "ball@0.3", "person@0.5", "ball@0.5")},
            },
            f"at_fp32_threshold_{fp32_threshold}": {
                k: _rp(at_fp32, k) for k in ("person@0.3", "ball@0.3", "person@0.5", "ball@0.5")
            },
            "agreement_with_fp32": agreement(
                runs["fp32"].per_image, runs[name].per_image, scope, fp32_threshold, runs[name].size
            ),
            "detect_cpu_s_per_tile": round(tile_s, 5),
            "detect_cpu_ratio_to_fp32": round(tile_s / base_tile, 3),
            "infer_cpu_s_per_tile": round(float(np.median(infer)), 5),
            "infer_cpu_ratio_to_fp32": round(
                float(np.median(np.array(infer) / np.array(rounds["fp32"]))), 3
            ),
        }
    figures = {
        "data": f"{DATASET.name}: {len(evaluation)} of {all_evaluation} frames of the clips other "
        f"than {args.calibration_clip}, {width}x{height}"
        + (" (subsampled with --images)" if len(evaluation) < all_evaluation else ""),
        "calibration": f"{len(calibration)} pitch tiles of the first {len(calibration_frames)} "
        f"frames of clip {args.calibration_clip} (left out of the scores)",
        "model": YOLOX_NANO_NAME,
        "layout": {"name": layout.name, "upscale": layout.upscale, "overlap_px": layout.overlap},
        "tiles_per_image": len(runs["fp32"].per_image[0]),
        "scope": f"pitch tiles (+32 px), detections with feet on the pitch (+{FEET_MARGIN} px)",
        "onnx_threads": 1,
        "cpu_time": "time.process_time; detect: whole tile, interleaved image by image; infer: "
        f"inference alone on {len(timing_tiles)} tiles, {args.rounds} interleaved rounds, "
        "median",
        "operating_point_rule": f"lowest threshold (0.05 grid) with person precision@0.3 >= "
        f"{args.precision}; max F1 where none reaches it",
        "variants": summary,
        "details": details,
    }
    path = write_results("detect_int8", figures)
    _print_table(summary, fp32_threshold)
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def _print_table(summary: dict[str, Any], fp32_threshold: float) -> None:
    def rp(s: dict[str, Any]) -> str:
        return f"{s['recall'] or 0:.3f}/{s['precision'] or 0:.3f}"

    print(
        f"\n{'variant':<16} {'thr':>5} {'person@0.3 R/P':>15} {'ball@0.3 R/P':>13} "
        f"{'@fp32 thr person':>17} {'@fp32 thr ball':>15} {'agree':>6} "
        f"{'cpu/tile':>9} {'ratio':>6} {'infer':>8} {'ratio':>6}"
    )
    for name, s in summary.items():
        op = s["own_operating_point"]
        at = s[f"at_fp32_threshold_{fp32_threshold}"]
        print(
            f"{name:<16} {op['threshold']:>5.2f} {rp(op['person@0.3']):>15} "
            f"{rp(op['ball@0.3']):>13} {rp(at['person@0.3']):>17} {rp(at['ball@0.3']):>15} "
            f"{s['agreement_with_fp32'] or 0:>6.3f} {s['detect_cpu_s_per_tile'] * 1000:>7.2f}ms "
            f"{s['detect_cpu_ratio_to_fp32']:>6.3f} {s['infer_cpu_s_per_tile'] * 1000:>6.2f}ms "
            f"{s['infer_cpu_ratio_to_fp32']:>6.3f}"
        )


if __name__ == "__main__":
    main()
