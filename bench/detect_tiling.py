"""Tiled detection on a real 4K camera frame: whole frame vs all tiles vs pitch-ROI tiles.

Frame 0 of the SoccerTrack left camera (3072x1728), YOLOX-nano on CPU ONNX Runtime.

- (a) whole frame letterboxed into one 416 input: fast, but far players shrink to a few pixels;
- (b) every 416 tile with >= 96 px overlap, at native resolution, merged (``detect_tiled``);
- (c) only the tiles that touch the pitch polygon grown by ``--roi-margin`` px.

The pitch polygon is hand-set from the recording's own CVAT keypoints
(``left_keypoints.xml``, distorted image coordinates): the far touchline from the corner
(0, 0) to the point (61, 0) and on to the right image edge, the near touchline from the right
edge through (52.5, 68) ... (0, 68), and the goal line back up through (0, 53.16) ... (0, 0).
Rounded to the pixel; the lens distortion bends the lines, hence the many vertices.

"People lost" compares (c) with (b): a person of (b) counts as found by (c) when a box of (c)
overlaps it with IoU >= 0.5. Lost people are split into those whose feet (bottom centre) are on
the pitch — players, which must not be lost — and the others (spectators, substitutes on the
bench or the stands), which skipping the stands is meant to lose.

Run: ``python -m bench.detect_tiling`` (needs ``../shared/data``: ``PV_TEST_DATA`` and
``PV_MODELS_DIR`` override the locations).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from activities.detect.detections import Detections
from activities.detect.model_store import resolve_model
from activities.detect.tiling import Tile, detect_tiled, plan_tiles
from activities.detect.yolox import YoloxDetector
from bench.results_file import write_results

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PV_TEST_DATA", REPO.parent / "shared" / "data"))
MODELS_DIR = Path(os.environ.get("PV_MODELS_DIR", SHARED_DATA / "models"))
LEFT_CAMERA = SHARED_DATA / "soccertrack-v1" / "left_camera.mp4"
TILE, OVERLAP = 416, 96

# (x, y) image pixels of the left camera's pitch outline, from left_keypoints.xml (see above).
LEFT_PITCH_POLYGON = np.array(
    [
        # far touchline, y = 0 m, left to right, extended to the image edge
        (1587, 790), (2031, 770), (2427, 755), (2769, 747), (2970, 743), (3072, 741),
        # right image edge down to the near touchline (extrapolated past (52.5, 68))
        (3072, 1572),
        # near touchline, y = 68 m, right to left
        (2871, 1568), (2521, 1563), (1902, 1513), (1381, 1441), (1003, 1370), (734, 1310),
        (538, 1260), (395, 1221), (281, 1189), (196, 1163), (128, 1141),
        # goal line, x = 0 m, bottom to top
        (564, 1031), (860, 959), (1062, 911), (1242, 868), (1413, 829),
    ],
    dtype=np.float64,
)  # fmt: skip


def first_frame(path: Path) -> np.ndarray:
    """Frame 0 of a video as BGR."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return np.asarray(frame.to_ndarray(format="bgr24"))


def best_times(
    runs: dict[str, Callable[[], Detections]], repeats: int
) -> tuple[dict[str, Detections], dict[str, float]]:
    """Each run's result and its best wall time over ``repeats`` rounds (after a warm-up).

    The runs are interleaved round by round and the minimum is kept, so that a burst of
    load from other processes on this shared 2-core machine skews no single variant.
    """
    results = {name: fn() for name, fn in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            started = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return results, best


def matched(reference: Detections, candidate: Detections, iou: float = 0.5) -> np.ndarray:
    """For each reference box, whether some candidate box overlaps it by IoU >= ``iou``."""
    if len(candidate) == 0:
        return np.zeros(len(reference), bool)
    a, b = reference.xyxy[:, None, :], candidate.xyxy[None, :, :]
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = reference.area[:, None] + candidate.area[None, :] - inter
    return np.asarray((inter / np.maximum(union, 1e-6) >= iou).any(axis=1))


def on_pitch(people: Detections, polygon: np.ndarray) -> np.ndarray:
    """Whether each box's bottom centre (the feet) lies inside ``polygon``."""
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    feet = np.stack([(people.xyxy[:, 0] + people.xyxy[:, 2]) / 2, people.xyxy[:, 3]], axis=1)
    return np.array(
        [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in feet], bool
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--score-threshold", type=float, default=0.3)
    parser.add_argument("--roi-margin", type=int, default=64, help="px around the pitch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="ONNX intra-op threads")
    args = parser.parse_args(argv)

    model = resolve_model(MODELS_DIR, url=None)
    detector = YoloxDetector(
        model, providers=["CPUExecutionProvider"], intra_op_threads=args.threads
    )
    image = first_frame(LEFT_CAMERA)
    height, width = image.shape[:2]
    th = args.score_threshold

    all_tiles = plan_tiles(width, height, TILE, OVERLAP)
    roi_tiles = plan_tiles(
        width, height, TILE, OVERLAP, roi=LEFT_PITCH_POLYGON, roi_margin=args.roi_margin
    )

    def run_tiles(tiles: list[Tile]) -> Callable[[], Detections]:
        return lambda: detect_tiled(detector, image, tiles, score_threshold=th)

    results, best = best_times(
        {
            "whole": lambda: detector.detect(image, score_threshold=th),
            "all": run_tiles(all_tiles),
            "roi": run_tiles(roi_tiles),
        },
        args.repeats,
    )
    whole, tiled, roi = results["whole"], results["all"], results["roi"]
    t_whole, t_all, t_roi = best["whole"], best["all"], best["roi"]

    people_all = tiled.of_class(Detections.PERSON)
    people_roi = roi.of_class(Detections.PERSON)
    lost = ~matched(people_all, people_roi)
    feet_in = on_pitch(people_all, LEFT_PITCH_POLYGON)
    figures = {
        "frame": f"left_camera.mp4 frame 0, {width}x{height}",
        "model": model.name,
        "providers": detector.providers,
        "score_threshold": th,
        "tile": TILE,
        "overlap": OVERLAP,
        "roi_margin_px": args.roi_margin,
        "whole_frame": {
            "images_per_s": round(1 / t_whole, 2),
            "ms": round(t_whole * 1e3, 1),
            "people": len(whole.of_class(Detections.PERSON)),
            "balls": len(whole.of_class(Detections.SPORTS_BALL)),
        },
        "all_tiles": {
            "tiles": len(all_tiles),
            "images_per_s": round(1 / t_all, 3),
            "ms": round(t_all * 1e3, 1),
            "ms_per_tile": round(t_all * 1e3 / len(all_tiles), 2),
            "people": len(people_all),
            "people_median_score": round(float(np.median(people_all.score)), 3),
            "people_on_pitch": int(feet_in.sum()),
            "balls": len(tiled.of_class(Detections.SPORTS_BALL)),
        },
        "roi_tiles": {
            "tiles": len(roi_tiles),
            "images_per_s": round(1 / t_roi, 3),
            "ms": round(t_roi * 1e3, 1),
            "ms_per_tile": round(t_roi * 1e3 / max(len(roi_tiles), 1), 2),
            "people": len(people_roi),
            "balls": len(roi.of_class(Detections.SPORTS_BALL)),
        },
        "roi_vs_all": {
            "tiles_skipped": len(all_tiles) - len(roi_tiles),
            "tiles_skipped_fraction": round(1 - len(roi_tiles) / len(all_tiles), 3),
            "time_saved_fraction": round(1 - t_roi / t_all, 3),
            "speedup": round(t_all / t_roi, 2),
            "people_lost": int(lost.sum()),
            "people_lost_on_pitch": int((lost & feet_in).sum()),
            "people_lost_off_pitch": int((lost & ~feet_in).sum()),
        },
        "tiled_vs_whole_people_ratio": round(
            len(people_all) / max(len(whole.of_class(Detections.PERSON)), 1), 1
        ),
    }
    path = write_results("detect_tiling", figures)
    a, r, c = figures["whole_frame"], figures["all_tiles"], figures["roi_vs_all"]
    print(f"(a) whole frame: {a['images_per_s']} img/s, {a['people']} people, {a['balls']} balls")
    print(
        f"(b) all {r['tiles']} tiles: {r['images_per_s']} img/s ({r['ms_per_tile']} ms/tile), "
        f"{r['people']} people (median score {r['people_median_score']}, "
        f"{r['people_on_pitch']} on the pitch), {r['balls']} balls"
    )
    roi_fig = figures["roi_tiles"]
    print(
        f"(c) {roi_fig['tiles']} pitch-ROI tiles: {roi_fig['images_per_s']} img/s, "
        f"{roi_fig['people']} people, {roi_fig['balls']} balls"
    )
    print(
        f"(c) vs (b): {c['tiles_skipped']} tiles skipped ({c['tiles_skipped_fraction']:.0%}), "
        f"time saved {c['time_saved_fraction']:.0%} ({c['speedup']}x), people lost "
        f"{c['people_lost']} ({c['people_lost_on_pitch']} on the pitch, "
        f"{c['people_lost_off_pitch']} off it)"
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
