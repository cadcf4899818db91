"""The stitch stage on the real recording: its speed, where the time goes, and doubles on the seam.

On SoccerTrack (3072x1728 HEVC, 250 frames, one 10 s chunk; the right camera's frame ``i - 4``
shows the left's frame ``i``, so ``right_offset = -4``), with the rig fitted from its CVAT
keypoints (`bench.stitch_quality.real_rig`):

1. ``speed``: the chunk as the activity stitches it, without the object store: the lookup table
   loaded from its stored ``.npz`` bytes, the seam and gains chosen (`sample_camera` on both
   recordings side by side, `choose_seam_and_gains`), then `stitch_chunk` (threaded decode of
   both, native stitch, x264 encode with the activity's settings: crf 20, veryfast, 2 threads).
   ``activity_fps`` counts all of it, ``stitch_chunk_fps`` the last step alone. ``parts``: each
   step timed alone in one sequential (unthreaded) pass over the chunk: decode left, decode right
   (shifted), `stitch_frame`, encode (same `VideoWriter` settings); plus maps build / load and
   the seam choice. Shares are of the sum of the parts (map build excluded: `prepare` does it
   once per match; the chunk loads it).
2. ``seam_doubles``: every 5th frame, the stitched panorama, the left camera warped alone and the
   right camera warped alone (the same maps) are cropped to the seam's columns +-150 px (clipped
   to the overlap, rows of the pitch), and YOLOX-nano (tiled like detect) counts people in each
   crop. A player shown twice by the stitch gives more people in the stitched crop than in
   either camera's own view: frames where stitched > max(left, right) are candidate doubles,
   written as PNGs (stitched | left | right, boxes drawn) to ``.polyvision/stitch_activity/``.
   The same for the previous stitch (a straight seam at the middle, a 2 % linear ramp, no gains:
   `bench.stitch_quality.baseline_plan`), whose crop is the same. ``on_pitch``: the same counting
   only people whose feet (box bottom centre) are on the pitch plus 1 m: the crop's top rows hold
   spectators and substitutes beyond the far touchline, tiny and detected erratically, which add
   +-1 differences that are not doubles.

Run: ``python -m bench.stitch_activity [--real DIR] [--every 5] [--margin 150]``; results in
``bench/results/stitch_activity.json``. Timings on a shared machine are noisy: read the shares.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from activities.detect.detections import Detections
from activities.detect.model_store import resolve_model
from activities.detect.tiling import detect_tiled, plan_tiles
from activities.detect.yolox import YoloxDetector
from activities.stitch.chunk import shifted_frames, stitch_chunk
from activities.stitch.maps import StitchMaps, build_stitch_maps
from activities.stitch.panorama import (
    panorama_model_from_rig,
    pitch_outline,
    pitch_polygon,
    pitch_to_panorama,
)
from activities.stitch.samples import sample_camera
from activities.stitch.stitch_plan import StitchPlan, choose_seam_and_gains, stitch_frame
from bench.results_file import write_results
from bench.stitch_quality import REAL_DIR, baseline_plan, real_rig
from polyvision.media.writer import VideoWriter

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / ".polyvision" / "stitch_activity"
RIGHT_OFFSET = -4
FPS = 25.0
FRAMES = 250


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def choose(maps: StitchMaps, left: Path, right: Path) -> tuple[Any, float, float]:
    """The activity's `_choose`, its sampling and choosing timed apart."""
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        lefts = pool.submit(sample_camera, left, 0, FRAMES, FPS)
        rights = pool.submit(sample_camera, right, 0, FRAMES, FPS, offset=RIGHT_OFFSET)
        lefts_r, rights_r = lefts.result(), rights.result()
    sampled = time.perf_counter() - started
    choice, chosen = _timed(choose_seam_and_gains, maps, lefts_r, rights_r)
    return choice, sampled, chosen


def seam_crop(maps: StitchMaps, plans: list[StitchPlan], margin: int) -> tuple[slice, slice]:
    """Rows of the pitch; the columns of every plan's seam over them +-margin, in the overlap."""
    polygon = np.asarray(pitch_polygon(maps.model), np.float64)
    top = max(0, int(np.floor(polygon[:, 1].min())))
    bottom = min(maps.height, int(np.ceil(polygon[:, 1].max())) + 1)
    seams = np.concatenate([p.seam[top:bottom] for p in plans])
    first, stop = maps.overlap_columns
    a = max(first, int(seams.min()) - margin)
    b = min(stop, int(seams.max()) + margin + 1)
    return slice(top, bottom), slice(a, b)


def ground_outline(maps: StitchMaps, margin_m: float = 1.0) -> np.ndarray:
    """The pitch outline plus a margin on the ground, in panorama pixels (feet inside: a player,
    not a spectator or a substitute behind the far touchline)."""
    ring = pitch_outline(maps.model, margin_m, samples=80)
    return np.asarray(pitch_to_panorama(maps.model, ring), np.float32).reshape(-1, 1, 2)


def count_people(
    detector: YoloxDetector, image: np.ndarray, tiles: Any, outline: np.ndarray
) -> tuple[int, int, Any]:
    """People in a crop, and those whose feet (box bottom centre) are on the pitch."""
    found = detect_tiled(detector, np.ascontiguousarray(image), tiles)
    boxes = found.xyxy[found.class_id == Detections.PERSON]
    on_pitch = sum(
        cv2.pointPolygonTest(outline, (float((x0 + x1) / 2), float(y1)), False) >= 0
        for x0, _, x1, y1 in boxes
    )
    return len(boxes), int(on_pitch), boxes


def draw(image: np.ndarray, boxes: np.ndarray, label: str) -> np.ndarray:
    out = image.copy()
    for x0, y0, x1, y1 in boxes.astype(int):
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 255), 2)
    cv2.putText(out, label, (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 255, 255), 2)
    return out


def sequential_pass(
    maps: StitchMaps,
    plans: dict[str, StitchPlan],
    left: Path,
    right: Path,
    scratch: Path,
    detector: YoloxDetector,
    every: int,
    margin: int,
) -> tuple[dict[str, float], dict[str, Any]]:
    """One unthreaded pass: each step timed alone; detection on every ``every``th frame."""
    plan = plans["stitch"]
    rows, cols = seam_crop(maps, list(plans.values()), margin)
    crop_h, crop_w = rows.stop - rows.start, cols.stop - cols.start
    tiles = plan_tiles(crop_w, crop_h)
    outline = ground_outline(maps) - np.array([cols.start, rows.start], np.float32)
    writer = VideoWriter(
        scratch / "sequential.mp4",
        plan.width,
        plan.height,
        FPS,
        crf=20,
        preset="veryfast",
        gop=round(FPS),
        threads=2,
    )
    lefts = shifted_frames(left, 0, FRAMES, 0)
    rights = shifted_frames(right, 0, FRAMES, RIGHT_OFFSET)
    times = {"decode_left": 0.0, "decode_right": 0.0, "stitch": 0.0, "encode": 0.0}
    per_frame: list[dict[str, int]] = []
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.png"):
        old.unlink()
    written: list[str] = []
    for index in range(FRAMES):
        frame_l, t = _timed(next, lefts)
        times["decode_left"] += t
        frame_r, t = _timed(next, rights)
        times["decode_right"] += t
        stitched, t = _timed(stitch_frame, frame_l, frame_r, plan)
        times["stitch"] += t
        _, t = _timed(writer.write, stitched)
        times["encode"] += t
        if index % every:
            continue
        views = {
            "stitched": stitched,
            "baseline": stitch_frame(frame_l, frame_r, plans["baseline"]),
            "left": maps.remap("left", frame_l, cols),
            "right": maps.remap("right", frame_r, cols),
        }
        counts, on_pitch, boxes = {}, {}, {}
        for name, image in views.items():
            crop = image[rows] if name in ("left", "right") else image[rows, cols]
            counts[name], on_pitch[name], boxes[name] = count_people(detector, crop, tiles, outline)
        per_frame.append(
            {"frame": index, **counts, **{f"{k}_on_pitch": v for k, v in on_pitch.items()}}
        )
        best_single = max(counts["left"], counts["right"])
        for variant in ("stitched", "baseline"):
            if counts[variant] > best_single or on_pitch[variant] > max(
                on_pitch["left"], on_pitch["right"]
            ):
                crops = [
                    draw(
                        (views[n][rows] if n in ("left", "right") else views[n][rows, cols]),
                        boxes[n],
                        f"{n} {counts[n]} ({on_pitch[n]} on pitch)",
                    )
                    for n in (variant, "left", "right")
                ]
                path = OUT_DIR / f"frame{index:03d}_{variant}.png"
                cv2.imwrite(str(path), np.hstack(crops))
                written.append(str(path.relative_to(REPO)))
    _, t = _timed(writer.close)
    times["encode"] += t
    single = [max(r["left"], r["right"]) for r in per_frame]
    single_on = [max(r["left_on_pitch"], r["right_on_pitch"]) for r in per_frame]
    figures: dict[str, Any] = {
        "crop": {"rows": [rows.start, rows.stop], "columns": [cols.start, cols.stop]},
        "tiles_per_crop": len(tiles),
        "frames_checked": len(per_frame),
        "per_frame": per_frame,
        "pngs": written,
    }
    for variant in ("stitched", "baseline"):
        diffs = [r[variant] - s for r, s in zip(per_frame, single, strict=True)]
        figures[variant] = {
            "people_mean": round(float(np.mean([r[variant] for r in per_frame])), 2),
            "frames_more_than_single_camera": sum(d > 0 for d in diffs),
            "frames_fewer_than_single_camera": sum(d < 0 for d in diffs),
            "candidate_double_frames": [
                r["frame"] for r, d in zip(per_frame, diffs, strict=True) if d > 0
            ],
        }
        on = [r[f"{variant}_on_pitch"] - s for r, s in zip(per_frame, single_on, strict=True)]
        figures[variant]["on_pitch"] = {
            "frames_more_than_single_camera": sum(d > 0 for d in on),
            "frames_fewer_than_single_camera": sum(d < 0 for d in on),
            "candidate_double_frames": [
                r["frame"] for r, d in zip(per_frame, on, strict=True) if d > 0
            ],
        }
    figures["single_camera_max_people_mean"] = round(float(np.mean(single)), 2)
    return times, figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, default=REAL_DIR, help="soccertrack-v1 folder")
    parser.add_argument("--every", type=int, default=5, help="detect on every Nth frame")
    parser.add_argument("--margin", type=int, default=150, help="crop half-width around the seam")
    args = parser.parse_args(argv)
    if not args.real.is_dir():
        print(f"real recording not found at {args.real}: skipped")
        return
    left, right = args.real / "left_camera.mp4", args.real / "right_camera.mp4"
    models_dir = Path(os.environ.get("PV_MODELS_DIR", REPO.parent / "shared" / "data" / "models"))
    detector = YoloxDetector(resolve_model(models_dir, url=None))

    rig, _ = real_rig(args.real)
    model = panorama_model_from_rig(rig)
    maps, build_s = _timed(build_stitch_maps, rig, model)
    data = maps.to_bytes()
    loaded, load_s = _timed(StitchMaps.from_bytes, data)
    choice, sample_s, choose_s = choose(loaded, left, right)
    plan = choice.plan(loaded)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        result, chunk_s = _timed(
            stitch_chunk,
            left,
            right,
            0,
            FRAMES,
            plan,
            scratch / "chunk.mp4",
            FPS,
            encoder_threads=2,
            right_offset=RIGHT_OFFSET,
        )
        assert result.frames == FRAMES
        plans = {"stitch": plan, "baseline": baseline_plan(loaded)}
        times, doubles = sequential_pass(
            loaded, plans, left, right, scratch, detector, args.every, args.margin
        )
    activity_s = load_s + sample_s + choose_s + chunk_s
    parts = {**times, "seam_sampling": sample_s, "seam_choice": choose_s, "maps_load": load_s}
    total = sum(parts.values())
    speed = {
        "panorama": [model.width, model.height],
        "frames": FRAMES,
        "activity_fps": round(FRAMES / activity_s, 2),
        "stitch_chunk_fps": round(FRAMES / chunk_s, 2),
        "activity_s": round(activity_s, 2),
        "stitch_chunk_s": round(chunk_s, 2),
        "sequential_sum_s": round(total, 2),
        "threading_speedup": round(total / activity_s, 2),
        "parts_s": {k: round(v, 2) for k, v in parts.items()},
        "parts_share": {k: round(v / total, 3) for k, v in parts.items()},
        "maps_build_s": round(build_s, 2),
        "maps_bytes": len(data),
        "gains": np.round(choice.gains, 4).tolist(),
        "band_half": choice.band_half,
        "seam_columns": [int(choice.seam.min()), int(choice.seam.max())],
        "note": "2 shared cores, other jobs running: absolute times noisy, read the shares",
    }
    print("speed:", {k: v for k, v in speed.items()})
    summary = {k: v for k, v in doubles.items() if k != "per_frame"}
    print("seam doubles:", summary)
    path = write_results(
        "stitch_activity",
        {"right_offset": RIGHT_OFFSET, "speed": speed, "seam_doubles": doubles},
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
