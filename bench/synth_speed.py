"""How fast `polyvision synth` films a match: 60 s at 2 x 1920x1080, 25 fps.

Peer: the issue's budget of 3 minutes for that match on this machine; the ratio printed is
budget / measured (above 1 means inside the budget), with the real-time factor beside it.

Run: ``python -m bench.synth_speed [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.results_file import write_results
from synth.generate import SynthConfig, generate_match

BUDGET_S = 180.0
BUDGET_MATCH_S = 60.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=BUDGET_MATCH_S)
    args = parser.parse_args(argv)
    config = SynthConfig(seconds=args.seconds)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        output = generate_match(config, Path(scratch) / "match")
        elapsed = time.perf_counter() - started
        size_mb = sum(f.stat().st_size for f in output.directory.iterdir()) / 1e6
    budget = BUDGET_S * args.seconds / BUDGET_MATCH_S
    print(
        f"synth {args.seconds:.0f} s at 2x{config.width}x{config.height}@{config.fps:g}: "
        f"{elapsed:.1f} s ({args.seconds / elapsed:.2f}x real time); "
        f"budget {budget:.0f} s -> {budget / elapsed:.2f}x inside the budget; {size_mb:.0f} MB"
    )
    path = write_results(
        "synth_speed",
        {
            "match_seconds": args.seconds,
            "size": f"2x{config.width}x{config.height}",
            "fps": config.fps,
            "elapsed_s": round(elapsed, 1),
            "realtime_factor": round(args.seconds / elapsed, 2),
            "budget_s": budget,
            "budget_ratio": round(budget / elapsed, 2),
            "output_mb": round(size_mb, 1),
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
