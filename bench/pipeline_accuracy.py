"""Accuracy of the tuned every-frame baseline and of our settings on longer synthetic seeds.

`bench.pipeline` scores every setting on short seeds beside its cost on the real recording;
on a 10 s seed one spurious 3 s track moves MOTA by 0.013, so the accuracy deltas it reports
are noisy. This runs only the seeds, longer, through the same stacks (`bench.pipeline`'s
settings), and reports MOTA, IDF1 and the ball's figures per seed and their differences.

Run: ``python -m bench.pipeline_accuracy [--seeds 3] [--seconds 30] [--settings tuned,ours]``;
results in ``bench/results/pipeline_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from bench.pipeline import (
    SETTINGS,
    _synth,
    accuracy_of,
    evaluate,
    process_recording,
    running_stack,
)
from bench.results_file import write_results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="fresh synthetic seeds to score")
    parser.add_argument("--seed", type=int, action="append", help="a given seed (repeatable)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--settings", default="tuned,ours")
    parser.add_argument("--keep", default=None, help="keep the stacks' data here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    seeds = args.seed or [random.SystemRandom().randrange(1000, 10**6) for _ in range(args.seeds)]
    work = Path(args.keep or tempfile.mkdtemp(prefix="pv-bench-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        if not (work / f"seed-{seed}" / "rig.json").exists():
            _synth(seed, args.seconds, args.size, work / f"seed-{seed}")
    scores: dict[str, dict[str, Any]] = {}
    for name in names:
        stack_dir = work / f"stack-{name}"
        with running_stack(stack_dir, SETTINGS[name], work / f"{name}.log") as stack:
            processed = {
                seed: process_recording(
                    stack, work / f"seed-{seed}", f"{name} {seed}", work / f"seed-{seed}/rig.json"
                )
                for seed in seeds
            }
            env = stack.env
        scores[name] = {
            str(seed): accuracy_of(evaluate(stack_dir, env, run, work / f"seed-{seed}"))
            for seed, run in processed.items()
        }
        print(f"[{name}] {json.dumps(scores[name])}", flush=True)
    figures: dict[str, Any] = {
        "seeds": seeds,
        "seed_seconds": args.seconds,
        "seed_size": args.size,
        "settings": scores,
    }
    if {"tuned", "ours"} <= set(scores):
        keys = ("mota", "idf1", "ball_within_2m", "ball_within_1m", "ball_false_report_share")
        deltas: dict[str, dict[str, float | None]] = {}
        for seed in map(str, seeds):
            a, b = scores["ours"][seed], scores["tuned"][seed]
            deltas[seed] = {
                k: None if a[k] is None or b[k] is None else round(a[k] - b[k], 4) for k in keys
            }
        figures["ours_minus_tuned"] = deltas
        means: dict[str, float] = {}
        for k in ("mota", "idf1", "ball_within_2m"):
            values = [v for d in deltas.values() if (v := d[k]) is not None]
            means[k] = round(sum(values) / len(values), 4) if values else float("nan")
        figures["mean_ours_minus_tuned"] = means
    path = write_results("pipeline_accuracy", figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "settings"}, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
