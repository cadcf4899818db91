"""Our tracker against supervision's ByteTrack and BoxMOT's OC-SORT: IDF1, MOTA, HOTA and speed.

All of them run in one process on the same detections: one synthetic match (30 s, 1280x720 per
camera, seed 11 by default) stitched and detected once the way the stages do it and cached
(`bench.tracker_data`), or a ``--detections`` Parquet with the analytics ``detections`` columns.
Each tracker turns the panorama detections into track points in pitch metres
(`bench.tracker_adapters`): ours through the track stage's own entry points, twice (as the
stage writes them, after its match-wide finishing pass, and online only, which is what the
peers are); the peers on the person boxes, their boxes' ground points to the pitch with
`panorama_to_pitch` (``--foot-lift``: by default the same point as our stage's, so that the
scores compare the tracking and not the foot point). Every one is scored the same way against
the truth people with `evaluation.tracking` (TrackEval's MOTA, IDF1 and HOTA, matched within
``--match-m`` metres), plus the track identities spent per true person.

Speed is the tracker's alone (detections already in memory; the pitch mapping and, for ours,
the stage's colour sampling and finishing pass included): frames of the match over the best wall
time of ``--rounds`` runs, the trackers alternating round by round so that load from other
processes does not favour one of them.

The ratios are against supervision's ByteTrack (``tracker / peer``; above 1 is better, speed
included); a MOTA ratio to a peer MOTA at or below 0 is left out (``n/a``), the JSON has the
difference as well.

Needs the ``bench`` extra (``make bench`` installs it; BoxMOT itself ``--no-deps``, see the
Makefile); a tracker whose package is missing is reported as such and left out.

Run: ``python -m bench.trackers [--rounds 3] [--truth DIR] [--detections FILE]
[--foot-lift 0.06]``; results in ``bench/results/trackers.json``.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.results_file import write_results
from bench.tracker_adapters import (
    TrackerAdapter,
    TrackPoints,
    boxmot_ocsort_tracks,
    our_tracks,
    supervision_bytetrack_tracks,
)
from bench.tracker_data import BenchInput, chunk_spans, load_input
from evaluation.formats import PERSON_CLASS, Truth, load_truth
from evaluation.tracking import TrackingScores, build_sequence, tracking_scores

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("PV_MODELS_DIR", REPO.parent / "shared" / "data" / "models"))
CACHE_DIR = Path(tempfile.gettempdir()) / "polyvision-bench" / "trackers"
PEER_FOOT_LIFT = 0.06
"""Where the peers' tracks touch the ground, above the box bottom as a share of its height: our
stage's `activities.track.ground.FOOT_LIFT` when this was written, so that all three map a box
to the pitch alike and the scores compare the tracking, not the foot point (the bottom centre,
``--foot-lift 0``, lands 0.4-0.6 m short on these matches, which alone costs the peers about
0.3 of MOTA at 1 m)."""
OURS = "ours"
OURS_ONLINE = "ours, online only"
PEER = "supervision ByteTrack"
OCSORT = "BoxMOT OC-SORT"


@dataclass(frozen=True)
class TrackerResult:
    """One tracker's scores and speed on the match."""

    name: str
    scores: TrackingScores
    track_ids: int
    truth_people: int
    seconds: float
    frames: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def ids_per_person(self) -> float:
        return self.track_ids / self.truth_people


def score(truth: Truth, points: TrackPoints, match_m: float) -> TrackingScores:
    """TrackEval's scores of the track points against the truth people."""
    people = truth.is_person
    sequence = build_sequence(
        truth.frame[people],
        truth.id[people],
        truth.position[people, :2],
        points.frame,
        points.track_id,
        points.xy,
    )
    return tracking_scores(sequence, match_m)


def run_trackers(
    adapters: dict[str, TrackerAdapter],
    bench: BenchInput,
    truth: Truth,
    rounds: int,
    match_m: float,
) -> tuple[list[TrackerResult], dict[str, str]]:
    """Run every tracker ``rounds`` times, alternating, keep the best time; score the first run.

    Returns:
        The results, and the trackers that could not run with the reason (a missing package).
    """
    chunks = chunk_spans(truth.frames, truth.fps)
    frames = sum(c.frames for c in chunks)
    points: dict[str, TrackPoints] = {}
    best: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for round_index in range(rounds):
        for name, adapter in adapters.items():
            if name in skipped:
                continue
            started = time.perf_counter()
            try:
                result = adapter(bench.model, chunks, bench.detections, truth.fps)
            except ImportError as exc:  # the tracker's package is not installed
                skipped[name] = f"{exc} (pip install -e '.[bench]', see the Makefile's bench)"
                continue
            elapsed = time.perf_counter() - started
            best[name] = min(best.get(name, float("inf")), elapsed)
            points.setdefault(name, result)
        times = ", ".join(f"{n} {best[n]:.2f} s" for n in best)
        print(f"round {round_index + 1}/{rounds}: best {times}")
    truth_people = len(np.unique(truth.id[truth.is_person]))
    results = [
        TrackerResult(
            name=name,
            scores=score(truth, points[name], match_m),
            track_ids=len(np.unique(points[name].track_id)),
            truth_people=truth_people,
            seconds=best[name],
            frames=frames,
        )
        for name in adapters
        if name in points
    ]
    return results, skipped


def _ratio(ours: float, peer: float) -> float | None:
    """``ours / peer``; None where the peer's figure is not positive (MOTA can be negative, and
    a ratio to a negative or zero MOTA says nothing: see the difference instead)."""
    return ours / peer if peer > 0 else None


def figures_of(result: TrackerResult, peer: TrackerResult | None) -> dict[str, Any]:
    """One tracker's JSON figures, with ratios to the peer when it ran."""
    scores = asdict(result.scores)
    figures: dict[str, Any] = {
        "mota": round(scores["mota"], 4),
        "idf1": round(scores["idf1"], 4),
        "hota": round(scores["hota"], 4),
        "deta": round(scores["deta"], 4),
        "assa": round(scores["assa"], 4),
        "id_switches": scores["id_switches"],
        "tp": scores["tp"],
        "fp": scores["fp"],
        "fn": scores["fn"],
        "track_ids": result.track_ids,
        "truth_people": result.truth_people,
        "ids_per_person": round(result.ids_per_person, 3),
        "seconds": round(result.seconds, 3),
        "fps": round(result.fps, 1),
    }
    if peer is not None and peer is not result:
        for key, mine, theirs in (
            ("idf1", result.scores.idf1, peer.scores.idf1),
            ("mota", result.scores.mota, peer.scores.mota),
            ("fps", result.fps, peer.fps),
        ):
            ratio = _ratio(mine, theirs)
            figures[f"{key}_ratio_vs_peer"] = None if ratio is None else round(ratio, 3)
        figures["mota_minus_peer"] = round(result.scores.mota - peer.scores.mota, 4)
    return figures


def format_table(results: list[TrackerResult], peer: TrackerResult | None) -> str:
    """The side-by-side table, ratios against the peer (``-`` where it did not run)."""
    headers = ["tracker", "MOTA", "IDF1", "HOTA", "IDSW", "ids/person", "fps"]
    headers += ["IDF1 ratio", "MOTA ratio", "fps ratio"]
    rows = []
    for r in results:
        ratios = ["-", "-", "-"]
        if peer is not None:
            pairs = [
                (r.scores.idf1, peer.scores.idf1),
                (r.scores.mota, peer.scores.mota),
                (r.fps, peer.fps),
            ]
            ratios = [
                "n/a" if (x := _ratio(mine, theirs)) is None else f"{x:.2f}"
                for mine, theirs in pairs
            ]
        rows.append(
            [
                r.name,
                f"{r.scores.mota:.3f}",
                f"{r.scores.idf1:.3f}",
                f"{r.scores.hota:.3f}",
                str(r.scores.id_switches),
                f"{r.ids_per_person:.2f}",
                f"{r.fps:.0f}",
                *ratios,
            ]
        )
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        # The name left-aligned, the numbers right-aligned.
        padded = [cells[0].ljust(widths[0])]
        padded += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(padded)

    return "\n".join(line(cells) for cells in [headers, *rows])


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--truth", type=Path, default=None, help="a polyvision synth directory")
    parser.add_argument(
        "--detections",
        type=Path,
        default=None,
        help="Parquet of panorama detections (analytics columns) of --truth's match; "
        "a panorama.json beside it gives the panorama model",
    )
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="where detections are kept")
    parser.add_argument("--seconds", type=float, default=30.0, help="synthetic match length")
    parser.add_argument("--size", type=_size, default=(1280, 720), help="WIDTHxHEIGHT per camera")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each tracker")
    parser.add_argument("--match-m", type=float, default=1.0, help="match distance, metres")
    parser.add_argument(
        "--foot-lift",
        type=float,
        default=PEER_FOOT_LIFT,
        help="the peers' foot point above the box bottom, as a fraction of its height "
        "(default: our stage's; 0: the bottom centre)",
    )
    args = parser.parse_args(argv)

    bench = load_input(
        cache_dir=args.cache,
        models_dir=MODELS_DIR,
        truth_dir=args.truth,
        detections_path=args.detections,
        seconds=args.seconds,
        size=args.size,
        seed=args.seed,
    )
    truth = load_truth(bench.truth_dir)
    adapters: dict[str, TrackerAdapter] = {
        OURS: our_tracks,
        OURS_ONLINE: functools.partial(our_tracks, finish=False),
        PEER: functools.partial(supervision_bytetrack_tracks, foot_lift=args.foot_lift),
        OCSORT: functools.partial(boxmot_ocsort_tracks, foot_lift=args.foot_lift),
    }
    results, skipped = run_trackers(adapters, bench, truth, args.rounds, args.match_m)
    peer = next((r for r in results if r.name == PEER), None)
    people = int((bench.detections.class_id == PERSON_CLASS).sum())
    print(
        f"\n{truth.frames} frames at {truth.fps:g} fps, {people} person detections, "
        f"panorama {bench.model.width}x{bench.model.height}, match within {args.match_m:g} m\n"
    )
    print(format_table(results, peer))
    for name, reason in skipped.items():
        print(f"{name}: not run: {reason}")
    figures = {
        "match": {
            "truth": str(bench.truth_dir),
            "detections": str(args.detections) if args.detections else "synthetic, cached",
            "frames": truth.frames,
            "fps": truth.fps,
            "size": list(truth.size),
            "seed": truth.seed,
            "person_detections": people,
            "panorama": [bench.model.width, bench.model.height],
        },
        "match_threshold_m": args.match_m,
        "peer_foot_lift": args.foot_lift,
        "rounds": args.rounds,
        "peer": PEER,
        "trackers": {r.name: figures_of(r, peer) for r in results},
        "not_run": skipped,
    }
    path = write_results("trackers", figures)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
