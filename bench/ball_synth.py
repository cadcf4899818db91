"""The ball tracker on processed synthetic matches: the track stage's `track_ball`, re-run on the
ball candidates the detect stage stored, scored against the generator's truth.

For each ``--case STACK_DIR:TRUTH_DIR`` (a `polyvision up` data directory that processed the
synthetic match in ``TRUTH_DIR``, stopped so its chDB store can be opened), it reads the match's
ball candidate rows (``detections``, class 32) and its panorama model, runs `track_ball` with
the stage's defaults (or ``--set name=value`` overrides of `BallTrackerSettings`), and scores
the track with `evaluation.ball.score_ball`: the same figures as ``polyvision eval``. It also
scores the candidates alone (the share of ball frames with a candidate within 3 pixels of the
true ball's image), which bounds what any tracker can find.

Why re-run instead of reading ``ball_points``: tuning the tracker must not cost a detection pass
(minutes per match); with the defaults the figures are those of the stage, as the stack's own
``polyvision eval`` shows.

Run: ``python -m bench.ball_synth --case /data/stackA:/data/seed411 --case ...``; writes
``bench/results/ball_synth.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from activities.stitch.panorama import PanoramaModel, pitch_to_panorama
from activities.track.ball_tracker import BallCandidates, BallTrackerSettings, track_ball
from bench.results_file import write_results
from evaluation.ball import BallScores, score_ball
from evaluation.formats import BallResults, load_truth
from polyvision.storage.analytics import open_analytics_store

CANDIDATE_NEAR_PX = 3.0


def _match(analytics: Any, match: str | None) -> tuple[str, str, int]:
    rows = analytics.query_numpy(
        "SELECT organization_id, match_id, max(revision) AS revision FROM detections "
        "GROUP BY organization_id, match_id",
        {},
    )
    found = list(zip(rows["organization_id"], rows["match_id"], rows["revision"], strict=True))
    if match is not None:
        found = [f for f in found if f[1] == match]
    if len(found) != 1:
        raise SystemExit(f"expected one processed match, found {len(found)}: pass --match")
    org, match_id, revision = found[0]
    return str(org), str(match_id), int(revision)


def load_case(stack: Path, match: str | None) -> tuple[BallCandidates, PanoramaModel]:
    """The ball candidates and panorama model of the processed match in a stack directory."""
    with open_analytics_store(f"chdb://{stack / 'analytics'}") as analytics:
        org, match_id, revision = _match(analytics, match)
        rows = analytics.query_numpy(
            "SELECT frame, score, x1, y1, x2, y2 FROM detections "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND class_id = 32",
            {"org": org, "match": match_id, "revision": revision},
        )
    model_path = (
        stack / "objects" / "orgs" / org / "matches" / match_id / str(revision) / "stitch"
    ) / "panorama.json"
    model = PanoramaModel.from_json(model_path.read_text())
    uv = np.column_stack([(rows["x1"] + rows["x2"]) / 2.0, (rows["y1"] + rows["y2"]) / 2.0])
    candidates = BallCandidates(
        rows["frame"].astype(np.int64),
        uv.astype(np.float64).reshape(-1, 2),
        rows["score"].astype(np.float64),
    )
    return candidates, model


def candidate_recall(candidates: BallCandidates, model: PanoramaModel, truth_dir: Path) -> float:
    """Share of ball frames (visible, in play) with a candidate near the true ball's pixel."""
    truth = load_truth(truth_dir)
    ball = truth.is_ball
    frames = truth.frame[ball]
    visible = np.zeros(len(frames), np.bool_)
    for camera in truth.cameras:
        visible |= truth.visible[camera][ball]
    in_play = truth.in_play[ball] if truth.in_play is not None else np.ones(len(frames), np.bool_)
    pixels = pitch_to_panorama(model, truth.position[ball])
    order = np.argsort(candidates.frame, kind="stable")
    cand_frames = candidates.frame[order]
    cand_uv = candidates.uv[order]
    hit = total = 0
    for frame, pixel, seen in zip(frames, pixels, visible & in_play, strict=True):
        if not seen or not np.isfinite(pixel).all():
            continue
        total += 1
        lo, hi = np.searchsorted(cand_frames, [frame, frame + 1])
        if hi > lo and np.hypot(*(cand_uv[lo:hi] - pixel).T).min() <= CANDIDATE_NEAR_PX:
            hit += 1
    return hit / total if total else 0.0


def run_case(
    stack: Path, truth_dir: Path, match: str | None, settings: BallTrackerSettings
) -> dict[str, Any]:
    candidates, model = load_case(stack, match)
    truth = load_truth(truth_dir)
    started = time.perf_counter()
    track = track_ball(candidates, model, 0, truth.frames, truth.fps, settings)
    seconds = time.perf_counter() - started
    results = BallResults(
        frame=track.frame.astype(np.int32),
        position=np.column_stack([track.xy, track.z]).astype(np.float32),
        visible=track.visible,
        in_play=track.in_play,
    )
    scores: BallScores = score_ball(truth, results)
    return {
        # Names only: the stacks and truths live outside the repository, on the measuring machine.
        "stack": stack.name,
        "truth": truth_dir.name,
        "seed": truth.seed,
        "candidates_per_frame": round(len(candidates.frame) / max(truth.frames, 1), 1),
        "candidate_recall_3px": round(candidate_recall(candidates, model, truth_dir), 3),
        "within_2m": _round(scores.found_2m_share),
        "within_1m": _round(scores.found_1m_share),
        "false_reports_no_ball": _round(scores.false_report_share),
        "false_reports_all": _round(scores.false_report_share_all),
        "height_mae_m": _round(scores.height_mae_m),
        "in_play_agreement": _round(scores.in_play_agreement),
        "ball_frames": scores.ball_frames,
        "no_ball_frames": scores.no_ball_frames,
        "tracker_seconds": round(seconds, 1),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _settings(overrides: list[str]) -> BallTrackerSettings:
    defaults = BallTrackerSettings()
    values: dict[str, Any] = {}
    for item in overrides:
        name, _, text = item.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"unknown tracker setting {name!r}")
        values[name] = type(getattr(defaults, name))(text)
    return dataclasses.replace(defaults, **values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", required=True, help="STACK_DIR:TRUTH_DIR")
    parser.add_argument("--match", help="match id, when a stack holds several")
    parser.add_argument("--set", action="append", default=[], help="tracker setting=value")
    args = parser.parse_args(argv)
    settings = _settings(args.set)
    cases = []
    for case in args.case:
        stack, _, truth = case.partition(":")
        cases.append(run_case(Path(stack), Path(truth), args.match, settings))
    header = ("seed", "cand/frame", "cand recall", "within 2 m", "within 1 m", "false (no ball)")
    print(" | ".join(header))
    for c in cases:
        row = (
            c["seed"],
            c["candidates_per_frame"],
            c["candidate_recall_3px"],
            c["within_2m"],
            c["within_1m"],
            c["false_reports_no_ball"],
        )
        print(" | ".join(str(v) for v in row))
    write_results(
        "ball_synth",
        {"settings": dataclasses.asdict(settings), "cases": cases},
    )
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
