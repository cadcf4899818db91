"""Detection frames per second per tile layout, with person recall on a synthetic match.

The cost side of the tile layouts ``bench.detect_real`` compares for recall on real panoramas:
each layout (native, upsampled, more overlap) detects on camera frames of a synthetic match,
tiles planned over the pitch region as the pipeline plans them (``plan_tiles(roi=pitch,
roi_margin=16)``, the polygon from ``bench.synth_detect_recall``), and is scored against the
synthetic truth with `evaluation` (greedy by score, person recall and precision at IoU 0.5 and
0.3). The synthetic players are 21-46 px tall (5th-95th percentile at 1280x720), bigger than the
real panoramas' far players, so this shows what upsampling costs more than what it finds.

Frames per second are of detection alone (``detect_tiled``: resize, inference, merge), over the
scored frames of both cameras; layouts run interleaved frame by frame so load from other
processes on a shared machine weighs on all alike. One threshold for all layouts
(``--score-threshold``, default the detect stage's default).

Make a match, then run:
``python -m programs.cli synth --seconds 10 --size 1280x720 --seed 5 --out /tmp/x`` and
``python -m bench.detect_layouts --truth /tmp/x [--every 10] [--layouts x1-o96,x1.5-o96]``.
Writes ``bench/results/detect_layouts.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from activities.detect.contracts import DetectChunkInput
from activities.detect.model_store import YOLOX_NANO_NAME, resolve_model
from activities.detect.tiling import Tile, detect_tiled, plan_tiles
from activities.detect.yolox import YoloxDetector
from bench.detect_real import INTERPOLATIONS, LAYOUTS, Layout
from bench.results_file import write_results
from bench.synth_detect_recall import _subset, pitch_polygon
from evaluation.detection import evaluate_detections
from evaluation.formats import Detections, load_truth
from polyvision.geometry import Rig

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("PV_MODELS_DIR", REPO.parent / "shared" / "data" / "models"))
DEFAULT_LAYOUTS = ("x1-o96", "x1.25-o64", "x1.5-o96", "x1.5-o128", "x2-o48", "x2-o96")
ROI_MARGIN = 16


def read_frames(path: Path, every: int) -> list[tuple[int, np.ndarray]]:
    """Every ``every``-th frame of a camera video as BGR, with its index."""
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % every == 0:
                frames.append((index, np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)))
    return frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--truth", type=Path, required=True, help="a polyvision synth directory")
    parser.add_argument("--every", type=int, default=10, help="score every Nth frame")
    parser.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS), help=",".join(LAYOUTS))
    parser.add_argument("--score-threshold", type=float, default=DetectChunkInput.score_threshold)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)

    layouts: list[Layout] = [LAYOUTS[name] for name in args.layouts.split(",")]
    detector = YoloxDetector(
        resolve_model(MODELS_DIR, YOLOX_NANO_NAME, url=None),
        providers=["CPUExecutionProvider"],
        intra_op_threads=args.threads,
    )
    truth = load_truth(args.truth)
    rig = Rig.load(args.truth / "rig.json")
    found: dict[str, list[tuple[int, str, Any]]] = {layout.name: [] for layout in layouts}
    seconds = dict.fromkeys(found, 0.0)
    tiles: dict[tuple[str, str], list[Tile]] = {}
    scored = 0
    for camera_name, camera in rig.cameras.items():
        width, height = camera.image_size
        roi = pitch_polygon(camera, rig.pitch_length_m, rig.pitch_width_m)
        for layout in layouts:
            tiles[layout.name, camera_name] = plan_tiles(
                width,
                height,
                layout.tile,
                layout.overlap,
                roi=roi,
                roi_margin=ROI_MARGIN,
                upscale=layout.upscale,
            )
        for n, (index, image) in enumerate(
            read_frames(args.truth / f"{camera_name}.mp4", args.every)
        ):
            order = layouts[n % len(layouts) :] + layouts[: n % len(layouts)]
            for layout in order:
                started = time.perf_counter()
                det = detect_tiled(
                    detector,
                    image,
                    tiles[layout.name, camera_name],
                    score_threshold=args.score_threshold,
                    interpolation=INTERPOLATIONS[layout.interpolation],
                )
                seconds[layout.name] += time.perf_counter() - started
                found[layout.name].append((index, camera_name, det))
            scored += 1

    frames_scored = np.unique([i for i, _, _ in next(iter(found.values()))])
    sampled = _subset(truth, np.isin(truth.frame, frames_scored))
    results: dict[str, Any] = {}
    for layout in layouts:
        rows = found[layout.name]
        predictions = Detections(
            frame=np.concatenate([np.full(len(d), i, np.int32) for i, _, d in rows]),
            space=np.concatenate([np.full(len(d), c, dtype=object) for _, c, d in rows]),
            class_id=np.concatenate([d.class_id for _, _, d in rows]).astype(np.int16),
            score=np.concatenate([d.score for _, _, d in rows]).astype(np.float32),
            boxes=np.concatenate([d.xyxy for _, _, d in rows]).astype(np.float32),
        )
        entry: dict[str, Any] = {
            "upscale": layout.upscale,
            "overlap_px": layout.overlap,
            "interpolation": layout.interpolation,
            "tiles_per_frame": {c: len(tiles[layout.name, c]) for c in rig.cameras},
            "frames_per_s": round(scored / seconds[layout.name], 2),
        }
        for iou in (0.5, 0.3):
            tp = fp = fn = 0
            for camera_name in rig.cameras:
                for s in evaluate_detections(sampled, predictions, camera_name, iou_threshold=iou):
                    if s.name == "person":
                        tp, fp, fn = tp + s.tp, fp + s.fp, fn + s.fn
            entry[f"person@{iou}"] = {
                "recall": round(tp / max(tp + fn, 1), 4),
                "precision": round(tp / max(tp + fp, 1), 4),
                "tp": tp,
                "fp": fp,
                "fn": fn,
            }
        results[layout.name] = entry
    base = results[layouts[0].name]["frames_per_s"]
    for entry in results.values():
        entry["cost_vs_first"] = round(base / entry["frames_per_s"], 2)
    figures = {
        "truth": str(args.truth),
        "size": list(truth.size),
        "camera_frames_scored": scored,
        "score_threshold": args.score_threshold,
        "onnx_threads": args.threads,
        "layouts": results,
    }
    path = write_results("detect_layouts", figures)
    print(f"{scored} camera frames, score threshold {args.score_threshold}")
    print(
        f"{'layout':<15} {'tiles L/R':>9} {'fps':>6} {'cost':>5} "
        f"{'person@0.5 R/P':>15} {'person@0.3 R/P':>15}"
    )
    for name, e in results.items():
        t = "/".join(str(v) for v in e["tiles_per_frame"].values())
        p5, p3 = e["person@0.5"], e["person@0.3"]
        r5 = f"{p5['recall']:.3f}/{p5['precision']:.3f}"
        r3 = f"{p3['recall']:.3f}/{p3['precision']:.3f}"
        print(
            f"{name:<15} {t:>9} {e['frames_per_s']:>6.2f} {e['cost_vs_first']:>5.2f} "
            f"{r5:>15} {r3:>15}"
        )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
