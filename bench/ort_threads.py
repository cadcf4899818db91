"""ONNX Runtime CPU layouts for the detector: threads, sessions and spinning, on real tiles.

YOLOX-nano on the 416-px tiles of frame 0 of the SoccerTrack left camera (the tiles that touch
the pitch, as the pipeline plans them), ``N = os.cpu_count()``, four layouts:

- ``naive``: ONNX Runtime's default ``SessionOptions`` (threads per physical core, spinning on,
  a default inter-op pool), one session, tiles one by one;
- ``threads_spin``: one session, ``N`` intra-op threads, spinning on, tiles one by one;
- ``threads_nospin``: the same with spinning off;
- ``sessions``: ``N`` sessions of one thread each, spinning off, the tiles spread over them by
  a thread pool (:class:`~activities.detect.inference.DetectorPool`).

Each layout runs the whole detector per tile (letterbox, inference, decode, NMS) on all tiles
of the frame. Throughput is tiles per second of wall time; cost is CPU seconds per tile
(``time.process_time``: every thread of this process). The CPU window of a layout runs on for
``--settle`` seconds after its last tile, so that the spinning its idle threads do afterwards
is charged to it and not to the next layout. Layouts run interleaved, round by round, so that
load from other processes on the shared machine weighs on all alike; the medians over rounds
are reported (and the best wall time).

Run: ``python -m bench.ort_threads [--rounds 6]`` (needs ``../shared/data``: ``PV_TEST_DATA``
and ``PV_MODELS_DIR`` override the locations; without the recording, tiles are synthesised).
Writes ``bench/results/ort_threads.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from activities.detect.backend import OnnxDetector
from activities.detect.detections import Detections
from activities.detect.inference import (
    CPU_EP,
    DetectorPool,
    InferenceSettings,
    build_detector,
)
from activities.detect.model_spec import BUNDLED_SPEC
from activities.detect.model_store import resolve_model
from activities.detect.tiling import plan_tiles
from bench.detect_tiling import LEFT_CAMERA, MODELS_DIR, REPO
from bench.results_file import write_results

TILE, OVERLAP, ROI_MARGIN = 416, 96, 64


def real_tiles(path: Path) -> tuple[list[np.ndarray], str]:
    """The pitch tiles of frame 0 of the left camera, as native-resolution crops."""
    import av

    from bench.detect_tiling import LEFT_PITCH_POLYGON

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        image = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    height, width = image.shape[:2]
    tiles = plan_tiles(width, height, TILE, OVERLAP, roi=LEFT_PITCH_POLYGON, roi_margin=ROI_MARGIN)
    crops = [np.ascontiguousarray(t.crop(image)) for t in tiles]
    return crops, f"soccertrack-v1/left_camera.mp4 frame 0 ({width}x{height}), pitch tiles"


def synthetic_tiles(count: int, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """Noise tiles, for a machine without the recording (same cost per tile, no players)."""
    rng = np.random.default_rng(seed)
    crops = [rng.integers(0, 256, (TILE, TILE, 3), dtype=np.uint8) for _ in range(count)]
    return crops, f"{count} synthetic noise tiles (recording not found)"


@dataclass
class Samples:
    """One layout's measurements, one per round."""

    wall_s: list[float]
    cpu_s: list[float]


def measure(
    detector: OnnxDetector | DetectorPool, tiles: list[np.ndarray], settle_s: float
) -> tuple[float, float, list[Detections]]:
    """Wall and CPU seconds to detect in every tile, and the detections."""
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    found = detector.detect_many(tiles, score_threshold=0.3, nms_iou=0.45)
    wall = time.perf_counter() - wall0
    # Idle pool threads may spin on after the last run: charge that to this layout.
    time.sleep(settle_s)
    return wall, time.process_time() - cpu0, found


def same(a: list[Detections], b: list[Detections]) -> bool:
    """Whether two layouts found the same boxes (to float32 rounding of the kernels)."""
    return len(a) == len(b) and all(
        len(x) == len(y)
        and np.array_equal(x.class_id, y.class_id)
        and np.allclose(x.xyxy, y.xyxy, atol=1e-2)
        for x, y in zip(a, b, strict=True)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--settle", type=float, default=0.2, help="s of CPU window after a run")
    parser.add_argument("--max-tiles", type=int, default=32, help="cap on tiles per round")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    model = resolve_model(MODELS_DIR, url=None)
    if LEFT_CAMERA.is_file():
        tiles, source = real_tiles(LEFT_CAMERA)
    else:
        tiles, source = synthetic_tiles(args.max_tiles)
    tiles = tiles[: args.max_tiles]
    n = os.cpu_count() or 1

    def single(settings: InferenceSettings) -> OnnxDetector | DetectorPool:
        return build_detector(model, BUNDLED_SPEC, settings, adopt_model_input_size=True)

    layouts: dict[str, OnnxDetector | DetectorPool] = {
        "naive": OnnxDetector(
            model,
            BUNDLED_SPEC,
            providers=[CPU_EP],
            session_options=ort.SessionOptions(),
            adopt_model_input_size=True,
        ),
        "threads_spin": single(InferenceSettings(intra_op_threads=n, allow_spinning=True)),
        "threads_nospin": single(InferenceSettings(intra_op_threads=n, allow_spinning=False)),
        "sessions": single(InferenceSettings(sessions=n, intra_op_threads=1)),
    }
    descriptions = {
        "naive": "one session, default SessionOptions (spinning on)",
        "threads_spin": f"one session, {n} intra-op threads, spinning on",
        "threads_nospin": f"one session, {n} intra-op threads, spinning off",
        "sessions": f"{n} sessions x 1 thread, spinning off, thread pool",
    }

    # Warm-up: the first run allocates the arenas and packs the weights.
    reference = {name: measure(d, tiles, args.settle)[2] for name, d in layouts.items()}
    agree = {name: same(reference["naive"], found) for name, found in reference.items()}
    samples = {name: Samples([], []) for name in layouts}
    for _ in range(args.rounds):
        for name, detector in layouts.items():
            wall, cpu, _ = measure(detector, tiles, args.settle)
            samples[name].wall_s.append(wall)
            samples[name].cpu_s.append(cpu)
    for detector in layouts.values():
        if isinstance(detector, DetectorPool):
            detector.close()

    count = len(tiles)
    figures: dict[str, Any] = {}
    for name, s in samples.items():
        wall = statistics.median(s.wall_s)
        figures[name] = {
            "layout": descriptions[name],
            "tiles_per_s": round(count / wall, 1),
            "best_tiles_per_s": round(count / min(s.wall_s), 1),
            "cpu_ms_per_tile": round(statistics.median(s.cpu_s) * 1e3 / count, 1),
            "same_detections_as_naive": agree[name],
        }

    def ratio(a: str, b: str, key: str) -> float:
        return round(float(figures[a][key]) / float(figures[b][key]), 2)

    record = {
        "source": source,
        "model": model.name,
        "tiles": count,
        "threads_n": n,
        "rounds": args.rounds,
        "settle_s": args.settle,
        "onnxruntime": ort.__version__,
        "layouts": figures,
        "ratios": {
            "sessions_vs_threads_nospin_throughput": ratio(
                "sessions", "threads_nospin", "tiles_per_s"
            ),
            "sessions_vs_naive_throughput": ratio("sessions", "naive", "tiles_per_s"),
            "threads_nospin_vs_spin_throughput": ratio(
                "threads_nospin", "threads_spin", "tiles_per_s"
            ),
            "threads_spin_vs_nospin_cpu_per_tile": ratio(
                "threads_spin", "threads_nospin", "cpu_ms_per_tile"
            ),
            "naive_vs_sessions_cpu_per_tile": ratio("naive", "sessions", "cpu_ms_per_tile"),
        },
        "run_s": round(time.perf_counter() - started, 1),
    }
    path = write_results("ort_threads", record)
    print(f"{count} tiles: {source}; N = {n}; median of {args.rounds} rounds")
    for name, f in figures.items():
        print(
            f"  {name:15s} {f['tiles_per_s']:6.1f} tiles/s (best {f['best_tiles_per_s']:.1f}), "
            f"{f['cpu_ms_per_tile']:5.1f} CPU ms/tile  [{f['layout']}]"
            + ("" if f["same_detections_as_naive"] else "  DETECTIONS DIFFER")
        )
    for key, value in record["ratios"].items():
        print(f"  {key}: {value}")
    print(f"results: {path.relative_to(REPO)} ({record['run_s']} s)")


if __name__ == "__main__":
    main()
