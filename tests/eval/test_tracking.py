"""Tracking scores on hand-made two-player cases whose values are known exactly.

Truth (helpers.two_players): players 1 (home) and 2 (away), 10 frames each, 20 m apart, so a
track can only ever be within the 1 m gate of one of them.
"""

from __future__ import annotations

import math

import motmetrics as mm
import numpy as np
import pytest

from evaluation import EvalReport, Results, evaluate
from evaluation.tracking import build_sequence, match_pairs, path_length, tracking_scores
from tests.eval.helpers import make_tracks, make_truth, perfect_tracks, two_players


def score(rows, match_threshold_m: float = 1.0) -> EvalReport:
    return evaluate(
        two_players(), Results(tracks=make_tracks(rows)), match_threshold_m=match_threshold_m
    )


def swapped_tracks():
    """Tracks 11/12 follow players 1/2 for frames 0-4, then each other's player for 5-9."""
    rows = []
    for f in range(10):
        y11, y12 = (10.0, 30.0) if f < 5 else (30.0, 10.0)
        rows.append((f, 11, "home", 10.0 + 0.5 * f, y11))
        rows.append((f, 12, "away", 10.0 + 0.5 * f, y12))
    return rows


def missed_and_spurious_tracks():
    """Perfect tracks, except track 12 is lost in frames 8-9 and a track 13 appears far from
    anyone in frame 0."""
    rows = [r for r in perfect_tracks() if not (r[1] == 12 and r[0] >= 8)]
    return [*rows, (0, 13, "home", 80.0, 60.0)]


def test_perfect_tracks_score_one():
    report = score(perfect_tracks())
    t = report.tracking
    assert t is not None
    assert (t.mota, t.idf1) == (1.0, 1.0)
    assert t.hota == pytest.approx(1.0, abs=1e-12)
    assert (t.tp, t.fp, t.fn, t.id_switches) == (20, 0, 0, 0)
    assert report.matched_pairs == 20
    assert report.position_error_m == 0.0
    assert report.team_accuracy == 1.0
    assert report.distance is not None
    assert report.distance.mean_abs_error_m == 0.0
    assert report.distance.mean_rel_error == 0.0


def test_identity_swap_halfway():
    # 20 truth detections (2 players x 10 frames), all matched every frame: TP = 20, FP = FN = 0.
    # MOTA: at frame 5 both players change track, 2 switches: (20 - 0 - 0 - 2) / 20 = 0.9.
    # IDF1: the best one-to-one identity map (1->11, 2->12, or the mirror) agrees in 5 frames per
    #   player, so IDTP = 10, IDFN = 20 - 10 = 10, IDFP = 20 - 10 = 10 and
    #   IDF1 = 2*10 / (2*10 + 10 + 10) = 0.5 (down from 1.0 with perfect tracks).
    # HOTA: distances are 0 so every alpha gives DetA = 1; each (player, track) pair shares
    #   TPA = 5 with 10 + 10 detections, A = 5 / (10 + 10 - 5) = 1/3 for every TP, AssA = 1/3,
    #   HOTA = sqrt(DetA * AssA) = sqrt(1/3).
    t = score(swapped_tracks()).tracking
    assert t is not None
    assert (t.tp, t.fp, t.fn, t.id_switches) == (20, 0, 0, 2)
    assert t.mota == pytest.approx(0.9, abs=1e-12)
    assert (t.idtp, t.idfp, t.idfn) == (10, 10, 10)
    assert t.idf1 == pytest.approx(0.5, abs=1e-12)
    assert t.deta == pytest.approx(1.0, abs=1e-12)
    assert t.assa == pytest.approx(1 / 3, abs=1e-12)
    assert t.hota == pytest.approx(math.sqrt(1 / 3), abs=1e-12)


def test_misses_and_false_positive():
    # TP = 18, FN = 2 (track 12 lost in frames 8-9), FP = 1 (track 13), no switches:
    # MOTA = (18 - 1 - 0) / 20 = 0.85; IDF1 = 2*18 / (2*18 + 1 + 2) = 12/13.
    # HOTA (distances 0, same at every alpha): DetA = 18 / (18 + 2 + 1) = 6/7;
    # AssA = (10 TPs * A(1,11) = 10/(10+10-10) = 1 + 8 TPs * A(2,12) = 8/(10+8-8) = 0.8) / 18
    #      = 16.4 / 18; HOTA = sqrt(6/7 * 16.4/18) = sqrt(16.4 / 21).
    t = score(missed_and_spurious_tracks()).tracking
    assert t is not None
    assert (t.tp, t.fp, t.fn, t.id_switches) == (18, 1, 2, 0)
    assert t.mota == pytest.approx(0.85, abs=1e-12)
    assert t.idf1 == pytest.approx(12 / 13, abs=1e-12)
    assert t.hota == pytest.approx(math.sqrt(16.4 / 21), abs=1e-12)


def test_constant_offset_position_error_and_threshold():
    # Every track sits (0.375, 0.5) m off its player: 0.625 m, exact in float32 and float64.
    rows = [(f, k, team, x + 0.375, y + 0.5) for f, k, team, x, y in perfect_tracks()]
    report = score(rows)
    t = report.tracking
    assert t is not None
    assert (t.mota, t.idf1) == (1.0, 1.0)
    assert report.position_error_m == 0.625
    # Similarity 1 - 0.625/2 = 0.6875 passes TrackEval's alphas 0.05..0.65 (13 of 19) only.
    assert t.hota == pytest.approx(13 / 19, abs=1e-12)
    # With a 0.5 m gate nothing matches: MOTA = (0 - 20 - 0) / 20 = -1.
    strict = score(rows, match_threshold_m=0.5)
    assert strict.tracking is not None
    assert strict.tracking.mota == -1.0
    assert strict.tracking.idf1 == 0.0
    assert strict.position_error_m is None
    assert strict.team_accuracy is None
    assert strict.distance is not None
    assert strict.distance.unmatched_players == 2
    assert strict.distance.mean_abs_error_m is None


def test_distance_covered_error():
    # Player 2 covers 9 steps x 0.5 m = 4.5 m; track 12 stops at frame 8 (x = 14.0, 0.5 m short
    # of the truth at frame 9, still matched): 4.0 m. Errors: player 1 0 / 0, player 2 0.5 m and
    # 0.5 / 4.5 = 1/9; means 0.25 m and 1/18.
    rows = [(f, k, t, 14.0 if (k == 12 and f == 9) else x, y) for f, k, t, x, y in perfect_tracks()]
    distance = score(rows).distance
    assert distance is not None
    by_id = {p.truth_id: p for p in distance.players}
    assert (by_id[2].truth_m, by_id[2].track_id, by_id[2].track_m) == (4.5, 12, 4.0)
    assert by_id[2].abs_error_m == 0.5
    assert by_id[2].rel_error == pytest.approx(1 / 9, abs=1e-15)
    assert distance.mean_abs_error_m == 0.25
    assert distance.mean_rel_error == pytest.approx(1 / 18, abs=1e-15)
    assert distance.unmatched_players == 0


def test_distance_covered_follows_majority_track_through_a_swap():
    # After the swap each player is matched 5 times to each track; the tie goes to the lower id,
    # so player 1 gets track 11, whose path is 4 steps of 0.5 m, the jump (12, 10) -> (12.5, 30),
    # and 4 more steps: 4.0 + hypot(0.5, 20) against the truth's 4.5 m.
    distance = score(swapped_tracks()).distance
    assert distance is not None
    player1 = next(p for p in distance.players if p.truth_id == 1)
    assert player1.track_id == 11
    assert player1.track_m == pytest.approx(4.0 + math.hypot(0.5, 20.0), abs=1e-12)
    assert player1.abs_error_m == pytest.approx(math.hypot(0.5, 20.0) - 0.5, abs=1e-12)


def test_team_accuracy_counts_unknown_as_wrong():
    # Track 12 (on the away player) says away in frames 0-5, unknown in 6-7 and home in 8-9;
    # track 11 is always right: (10 + 6) / 20 = 0.8.
    def team(f: int, k: int, t: str) -> str:
        if k != 12 or f < 6:
            return t
        return "unknown" if f < 8 else "home"

    rows = [(f, k, team(f, k, t), x, y) for f, k, t, x, y in perfect_tracks()]
    assert score(rows).team_accuracy == 0.8


def test_referee_counts_as_a_person_but_not_as_a_player():
    truth_rows = [(f, 5, "referee", (50.0, 50.0, 0.0), None) for f in range(4)]
    truth = make_truth(truth_rows, frames=4)
    tracks = make_tracks([(f, 1, "referee", 50.0, 50.0) for f in range(4)])
    report = evaluate(truth, Results(tracks=tracks))
    assert report.tracking is not None
    assert report.tracking.tp == 4
    assert report.team_accuracy == 1.0
    assert report.distance is not None
    assert report.distance.players == []


@pytest.mark.parametrize("rows", [perfect_tracks(), swapped_tracks(), missed_and_spurious_tracks()])
def test_motmetrics_matching_agrees_with_trackeval(rows):
    # The pairs behind position/distance/team scores come from motmetrics; they must be the
    # matching TrackEval's CLEAR counted, so both libraries give the same MOTA and IDF1.
    truth, tracks = two_players(), make_tracks(rows)
    people = truth.is_person
    seq = build_sequence(
        truth.frame[people],
        truth.id[people],
        truth.position[people, :2],
        tracks.frame,
        tracks.track_id,
        tracks.position,
    )
    ours = tracking_scores(seq)
    acc = mm.MOTAccumulator(auto_id=False)
    for t, frame in enumerate(seq.frames):
        d = np.where(seq.distances[t] <= 1.0, seq.distances[t], np.nan)
        acc.update(seq.truth_ids[t], seq.track_ids[t], d, frameid=int(frame))
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_matches"])
    assert float(summary["mota"].iloc[0]) == pytest.approx(ours.mota, abs=1e-12)
    assert float(summary["idf1"].iloc[0]) == pytest.approx(ours.idf1, abs=1e-12)
    assert len(match_pairs(seq).frame) == ours.tp


def test_duplicate_identity_in_a_frame_is_refused():
    rows = [*perfect_tracks(), (3, 11, "home", 40.0, 40.0)]
    with pytest.raises(ValueError, match="frame 3"):
        score(rows)


def test_path_length_orders_by_frame():
    frame = np.array([2, 0, 1])
    xy = np.array([[3.0, 4.0], [0.0, 0.0], [3.0, 0.0]])
    assert path_length(frame, xy) == 7.0
