"""Tracking scores on hand-made two-player cases whose values are known exactly.

Truth (helpers.two_players): players 1 (home) and 2 (away), 10 frames each, 20 m apart, so a
track can only ever be within the 1 m gate of one of them.
"""

from __future__ import annotations

import math

import motmetrics as mm
import numpy as np
import pytest

from evaluation import EvalReport, Results, Truth, evaluate
from evaluation.tracking import (
    GROUPS,
    UNKNOWN_GROUP,
    build_sequence,
    match_pairs,
    path_length,
    person_groups,
    tracking_scores,
)
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
    # A results file without roles still scores a track whose team says referee as the referee.
    assert report.team_role is not None and report.team_role.accuracy == 1.0
    assert report.identities is not None and report.identities.truth_people == 1
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


# -- position bias ------------------------------------------------------------------------------


def test_constant_offset_is_all_bias():
    # Every track sits (0.375, 0.5) m off its player: the mean and median error vectors are that
    # offset and the bias is its whole length, 0.625 m (exact in float32 and float64).
    rows = [(f, k, team, x + 0.375, y + 0.5) for f, k, team, x, y in perfect_tracks()]
    p = score(rows).position
    assert p is not None
    assert (p.pairs, p.mean_m, p.bias_m) == (20, 0.625, 0.625)
    assert (p.mean_x_m, p.mean_y_m, p.median_x_m, p.median_y_m) == (0.375, 0.5, 0.375, 0.5)


def test_opposite_offsets_cancel_in_the_bias_but_not_in_the_error():
    # Track 11 sits (+0.5, +0.25) m off player 1, track 12 (-0.5, +0.25) m off player 2: each
    # pair is hypot(0.5, 0.25) m off, but x errors cancel, leaving a 0.25 m bias along y. The
    # median of ten +0.5 and ten -0.5 is their midpoint, 0.
    rows = [
        (f, k, t, x + (0.5 if k == 11 else -0.5), y + 0.25) for f, k, t, x, y in perfect_tracks()
    ]
    report = score(rows)
    p = report.position
    assert p is not None
    assert p.mean_m == pytest.approx(math.hypot(0.5, 0.25), abs=1e-12)
    assert report.position_error_m == pytest.approx(p.mean_m, abs=1e-12)
    assert (p.mean_x_m, p.mean_y_m, p.median_x_m, p.median_y_m) == (0.0, 0.25, 0.0, 0.25)
    assert p.bias_m == 0.25


def test_median_error_ignores_one_outlier():
    # One pair of 20 is 0.75 m off in x (still matched): the mean moves by 0.75/20, the median not.
    rows = [
        (f, k, t, x + (0.75 if (f, k) == (9, 11) else 0.0), y) for f, k, t, x, y in perfect_tracks()
    ]
    p = score(rows).position
    assert p is not None
    assert p.mean_x_m == pytest.approx(0.75 / 20, abs=1e-12)
    assert p.bias_m == pytest.approx(0.75 / 20, abs=1e-12)
    assert (p.median_x_m, p.median_y_m, p.mean_y_m) == (0.0, 0.0, 0.0)


def test_no_pairs_no_position_error():
    far = [(f, k, t, x + 5.0, y) for f, k, t, x, y in perfect_tracks()]
    report = score(far)
    assert report.position is None
    assert report.to_dict()["tracking"]["position_bias_m"] is None


# -- identities per person ----------------------------------------------------------------------


def test_ids_per_person():
    # Two truth people (the ball does not count).
    perfect = score(perfect_tracks()).identities
    assert perfect is not None
    assert (perfect.truth_people, perfect.track_ids, perfect.matched_track_ids) == (2, 2, 2)
    assert (perfect.ids_per_person, perfect.matched_ids_per_person) == (1.0, 1.0)
    # Spurious track 13 is on nobody: it counts in ids per person but not in the matched ratio.
    spurious = score(missed_and_spurious_tracks()).identities
    assert spurious is not None
    assert (spurious.ids_per_person, spurious.matched_ids_per_person) == (1.5, 1.0)
    # Player 2's track breaks at frame 5 and goes on as track 22: both ratios count it.
    fragmented = [
        (f, 22 if (k == 12 and f >= 5) else k, t, x, y) for f, k, t, x, y in perfect_tracks()
    ]
    broken = score(fragmented).identities
    assert broken is not None
    assert (broken.ids_per_person, broken.matched_ids_per_person) == (1.5, 1.5)
    # A swap keeps two ids for two people: ids per person does not see it (IDF1 does).
    swapped = score(swapped_tracks()).identities
    assert swapped is not None and swapped.ids_per_person == 1.0


# -- team and role ------------------------------------------------------------------------------


def test_person_groups():
    pairs = [
        ("home", "outfield"),
        ("home", "goalkeeper"),
        ("away", "outfield"),
        ("away", "goalkeeper"),
        ("referee", "referee"),
        ("home", "referee"),
        ("unknown", "goalkeeper"),
        ("away", "unknown"),
        ("home", "ball"),
    ]
    team, role = (np.array(column) for column in zip(*pairs, strict=True))
    assert person_groups(team, role).tolist() == [
        *GROUPS,
        "referee",  # a referee role wins over the team, which is ignored
        UNKNOWN_GROUP,  # a goalkeeper of no side
        UNKNOWN_GROUP,  # a side without a role
        UNKNOWN_GROUP,
    ]


def keeper_player_referee() -> tuple[Truth, list[tuple[int, int, str, float, float]], list[str]]:
    """Home goalkeeper 1, away player 2 and the referee 3, 4 frames, and tracks 11, 12, 13 on
    them: 11 always home goalkeeper (right); 12 away with role goalkeeper, unknown, outfield,
    outfield (2 of 4 right); 13 role referee with team home, home, unknown, unknown (4 of 4
    right: a referee's team is ignored)."""
    truth_rows: list[tuple[int, int, str, tuple[float, float, float], None]] = []
    rows, roles = [], []
    for f in range(4):
        truth_rows += [
            (f, 1, "home", (5.0, 34.0, 0.0), None),
            (f, 2, "away", (50.0, 20.0, 0.0), None),
            (f, 3, "referee", (50.0, 50.0, 0.0), None),
        ]
        rows += [
            (f, 11, "home", 5.0, 34.0),
            (f, 12, "away", 50.0, 20.0),
            (f, 13, "home" if f < 2 else "unknown", 50.0, 50.0),
        ]
        roles += ["goalkeeper", ("goalkeeper", "unknown", "outfield", "outfield")[f], "referee"]
    return make_truth(truth_rows, frames=4, goalkeepers={1}), rows, roles


def test_team_and_role_accuracy():
    truth, rows, roles = keeper_player_referee()
    report = evaluate(truth, Results(tracks=make_tracks(rows, roles)))
    # Team only: 11 and 12 always right, 13 never says referee: 8 / 12.
    assert report.team_accuracy == pytest.approx(8 / 12, abs=1e-12)
    scores = report.team_role
    assert scores is not None
    assert scores.pairs == 12
    assert scores.accuracy == pytest.approx(10 / 12, abs=1e-12)
    accuracy = {group: scores.group_accuracy(group) for group in GROUPS}
    assert accuracy == {
        "home-player": None,
        "home-goalkeeper": 1.0,
        "away-player": 0.5,
        "away-goalkeeper": None,
        "referee": 1.0,
    }
    assert scores.confusion["away-player"] == {
        "home-player": 0,
        "home-goalkeeper": 0,
        "away-player": 2,
        "away-goalkeeper": 1,
        "referee": 0,
        "unknown": 1,
    }
    assert scores.confusion["referee"]["referee"] == 4
    assert set(scores.confusion) == set(GROUPS)


def test_tracks_without_roles_score_players_wrong():
    # Older results have no role: every player track is unknown, so team-and-role accuracy is 0
    # while team accuracy stays 1.
    report = score(perfect_tracks())
    assert report.team_accuracy == 1.0
    assert report.team_role is not None
    assert report.team_role.accuracy == 0.0
    assert report.team_role.confusion["home-player"]["unknown"] == 10
