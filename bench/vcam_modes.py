"""The virtual camera's modes on fresh synthetic seeds: ball in view, footprint, jerk.

For every seed, the pipeline (`bench.pipeline`'s ``ours`` settings, through a real stack) tracks
the players and the ball; each mode (`activities.vcam.modes`) then plans its path from those
tracks exactly as the vcam activity does, and the path is scored against the synthetic truth
(`evaluation.vcam.path_quality`): the share of in-play frames whose true ball is inside the view's
ground footprint, the footprint's area in the median frame, and the RMS jerk of the view's
direction against a naive follow-the-ball camera (the reported ball, held through gaps, at the
Director's median zoom, no smoothing).

``--source truth`` skips the pipeline and plans from the truth degraded like a tracker's output
(gaps, noise, false reports): a quick loop for tuning, never the reported figures.

Run: ``python -m bench.vcam_modes [--seeds 3] [--seconds 30]``; results in
``bench/results/vcam_modes.json``. ``--real`` also processes the real recording and renders a
short MP4 of each mode into ``bench/results/vcam/``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig, panorama_to_pitch
from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from activities.vcam.modes import CameraScene, plan_camera
from activities.vcam.plan import VcamPath
from activities.vcam.view import ViewGeometry, view_corners
from bench.results_file import write_results
from evaluation.formats import Truth, load_truth
from evaluation.vcam import PathQuality, path_quality
from polyvision.geometry import Rig

VIEW = (1920, 1080)


def _model(rig_path: Path) -> PanoramaModel:
    return panorama_model_from_rig(Rig.from_json(rig_path.read_text()))


def _ball_truth(truth: Truth) -> tuple[np.ndarray, np.ndarray]:
    ball = (truth.team == "ball") & np.asarray(truth.in_play, bool)
    return truth.frame[ball].astype(np.int64), truth.position[ball, :2].astype(np.float64)


def degraded_scene(truth: Truth, model: PanoramaModel, seed: int) -> CameraScene:
    """The truth as a tracker might report it: players with 0.3 m noise and flicker, the ball
    seen in 75 % of frames (gaps of up to 1.5 s) with 0.5 m noise and 3 % false reports."""
    rng = np.random.default_rng(seed)
    people = truth.is_person
    keep = people & (rng.random(len(people)) > 0.05)
    pf = truth.frame[keep].astype(np.int64)
    pxy = truth.position[keep, :2].astype(np.float64) + rng.normal(0, 0.3, (int(keep.sum()), 2))
    bf, bxy = _ball_truth(truth)
    seen = np.ones(len(bf), bool)
    i = 0
    while i < len(bf):
        if rng.random() < 0.02:
            gap = int(rng.integers(3, int(1.5 * truth.fps)))
            seen[i : i + gap] = False
            i += gap
        i += 1
    bxy = bxy + rng.normal(0, 0.5, bxy.shape)
    false = rng.random(len(bf)) < 0.03
    bxy[false] = rng.uniform(
        [0, 0], [model.pitch_length_m, model.pitch_width_m], (int(false.sum()), 2)
    )
    seen |= false
    return CameraScene(truth.frames, truth.fps, model, pf, pxy, bf[seen], bxy[seen])


def pipeline_scene(results_dir: Path, truth: Truth, model: PanoramaModel) -> CameraScene:
    """The pipeline's exported tracks and reported ball (`polyvision eval --match` output)."""
    tracks = pq.read_table(results_dir / "tracks.parquet").to_pydict()
    pf = np.asarray(tracks["frame"], np.int64)
    pos = np.column_stack([tracks["x_m"], tracks["y_m"]]).astype(np.float64)
    bf = np.zeros(0, np.int64)
    bxy = np.zeros((0, 2))
    ball_file = results_dir / "ball.parquet"
    if ball_file.exists():
        ball = pq.read_table(ball_file).to_pydict()
        reported = np.asarray(ball["visible"], bool) & np.asarray(ball["in_play"], bool)
        bf = np.asarray(ball["frame"], np.int64)[reported]
        bxy = np.column_stack([ball["x_m"], ball["y_m"]]).astype(np.float64)[reported]
    return CameraScene(truth.frames, truth.fps, model, pf, pos, bf, bxy)


def naive_path(scene: CameraScene, width: float) -> VcamPath:
    """Follow-the-ball with no physics: centred on the reported ball (held through gaps)."""
    from activities.vcam.modes import _fill, _ground_to_panorama, _inside, _per_frame_mean

    centre = np.array([scene.model.pitch_length_m / 2, scene.model.pitch_width_m / 2])
    ball = _fill(_per_frame_mean(scene.ball_frame, scene.ball_xy, scene.frames), centre)
    aim = _ground_to_panorama(scene.model, ball)
    cx, cy, w = _inside(scene.model, aim[:, 0], aim[:, 1], np.full(scene.frames, width))
    return VcamPath(cx.astype(np.float32), cy.astype(np.float32), w.astype(np.float32))


def score(path: VcamPath, model: PanoramaModel, truth: Truth) -> PathQuality:
    geometry = ViewGeometry.of(model)
    corners = view_corners(geometry, path.cx, path.cy, path.width, VIEW)
    quads = panorama_to_pitch(model, corners.reshape(-1, 2)).reshape(-1, 4, 2)
    pan = path.cx.astype(np.float64) / geometry.focal_px
    tilt = np.arctan((geometry.cv - path.cy.astype(np.float64)) / geometry.focal_px)
    bf, bxy = _ball_truth(truth)
    return path_quality(quads, np.column_stack([pan, tilt]), truth.fps, bf, bxy)


def score_modes(scene: CameraScene, truth: Truth, causal: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    paths = {m: plan_camera(scene, CameraSettings(mode=m, causal=causal)) for m in CAMERA_MODES}
    naive = naive_path(scene, float(np.median(paths["director"].width)))
    naive_q = score(naive, scene.model, truth)
    for mode, path in paths.items():
        q = score(path, scene.model, truth)
        row = asdict(q)
        row["jerk_vs_naive"] = q.jerk / naive_q.jerk if naive_q.jerk > 0 else None
        out[mode] = row
    out["naive"] = asdict(naive_q)
    return out


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def summarise(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    modes = [*CAMERA_MODES, "naive"]
    summary: dict[str, Any] = {}
    for mode in modes:
        rows = [s[mode] for s in per_seed.values()]
        share = [r["ball_in_view_share"] for r in rows if r["ball_in_view_share"] is not None]
        summary[mode] = {
            "ball_in_view_mean": float(np.mean(share)) if share else None,
            "ball_in_view_min": float(np.min(share)) if share else None,
            "median_footprint_m2_mean": float(np.mean([r["median_footprint_m2"] for r in rows])),
            "median_footprint_m2_max": float(np.max([r["median_footprint_m2"] for r in rows])),
        }
        ratios = [r.get("jerk_vs_naive") for r in rows if r.get("jerk_vs_naive") is not None]
        if ratios:
            summary[mode]["jerk_vs_naive_mean"] = float(np.mean(ratios))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="fresh synthetic seeds to score")
    parser.add_argument("--seed", type=int, action="append", help="a given seed (repeatable)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--source", choices=("pipeline", "truth"), default="pipeline")
    parser.add_argument("--keep", default=None, help="keep the seeds and the stack's data here")
    parser.add_argument("--real", action="store_true", help="also render the real recording")
    parser.add_argument("--out", default=None, help="results file (default bench/results/...)")
    args = parser.parse_args(argv)
    from bench.pipeline import SETTINGS, _synth, evaluate, process_recording, running_stack

    seeds = args.seed or [random.SystemRandom().randrange(1000, 10**6) for _ in range(args.seeds)]
    work = Path(args.keep or tempfile.mkdtemp(prefix="pv-bench-vcam-"))
    work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        if not (work / f"seed-{seed}" / "rig.json").exists():
            _synth(seed, args.seconds, args.size, work / f"seed-{seed}")
    scenes: dict[int, CameraScene] = {}
    truths = {seed: load_truth(work / f"seed-{seed}") for seed in seeds}
    models = {seed: _model(work / f"seed-{seed}" / "rig.json") for seed in seeds}
    if args.source == "truth":
        for seed in seeds:
            scenes[seed] = degraded_scene(truths[seed], models[seed], seed)
    else:
        # The pipeline's exported tracks per seed; kept, so that the paths can be scored
        # again (`--keep`) without processing the seeds again.
        exported = {seed: work / f"tracks-{seed}" for seed in seeds}
        todo = [s for s in seeds if not (exported[s] / "tracks.parquet").exists()]
        if todo or args.real:
            stack_dir = work / "stack"
            # The stack's worker holds the embedded analytics store: results are exported
            # once it has stopped.
            with running_stack(stack_dir, SETTINGS["ours"], work / "stack.log") as stack:
                processed = {}
                for seed in todo:
                    pair = work / f"seed-{seed}"
                    processed[seed] = process_recording(
                        stack, pair, f"vcam {seed}", pair / "rig.json"
                    )
                    print(f"seed {seed} processed", flush=True)
                real = None
                if args.real:
                    from bench.vcam_real import process_real

                    real = process_real(stack)
                env = stack.env
            for seed, done in processed.items():
                evaluate(stack_dir, env, done, work / f"seed-{seed}")
                shutil.copytree(stack_dir / "eval" / done.match_id, exported[seed])
            if real is not None:
                from bench.vcam_real import render_real_modes

                render_real_modes(stack_dir, env, real, Path(__file__).parent / "results" / "vcam")
        for seed in seeds:
            scenes[seed] = pipeline_scene(exported[seed], truths[seed], models[seed])
    figures: dict[str, Any] = {
        "source": args.source,
        "seeds": seeds,
        "seed_seconds": args.seconds,
        "seed_size": args.size,
    }
    for causal in (False, True):
        per_seed = {str(s): score_modes(scenes[s], truths[s], causal) for s in seeds}
        key = "causal" if causal else "offline"
        figures[key] = {"per_seed": _round(per_seed), "summary": _round(summarise(per_seed))}
        print(f"[{key}] {json.dumps(figures[key]['summary'], indent=1)}", flush=True)
    out = Path(args.out) if args.out else None
    if out is None:
        if args.source == "truth":
            print("--source truth is a tuning loop: no results file written")
            return
        write_results("vcam_modes", figures)
    else:
        out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
