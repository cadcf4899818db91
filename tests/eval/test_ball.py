"""The ball's scores against a hand-made truth: found within 2 m / 1 m, false reports, height,
in/out of play; and the ``ball`` section of ``run_eval``'s report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation import BallResults, Results, run_eval, score_ball, write_results, write_truth
from evaluation.formats import Truth
from tests.eval.helpers import Box, make_truth

SEEN: Box = (100.0, 100.0, 104.0, 104.0)
NAN = math.nan

# (frame, truth (x, y, z), seen in a camera, in play, ours (x, y, z) or None, our in_play)
CASES: list[tuple[int, tuple[float, float, float], bool, bool, tuple[float, ...] | None, bool]] = [
    (0, (50.0, 30.0, 0.11), True, True, (50.5, 30.0, 0.11), True),  # within 1 m
    (1, (50.0, 30.0, 0.11), True, True, (51.5, 30.0, 0.11), True),  # within 2 m only
    (2, (50.0, 30.0, 0.11), True, True, (53.0, 30.0, 0.11), True),  # 3 m: a miss
    (3, (50.0, 30.0, 0.11), True, True, None, False),  # not reported: a miss
    (4, (40.0, 20.0, 2.0), True, True, (40.0, 20.5, 1.5), True),  # in the air, 0.5 m low
    (5, (40.0, 20.0, 3.0), True, True, (41.5, 20.0, 3.25), True),  # in the air, 0.25 m high
    (6, (60.0, 30.0, 0.11), False, True, (60.0, 30.0, 0.11), True),  # hidden: false report
    (7, (106.0, 30.0, 0.11), True, False, (106.0, 30.0, 0.11), True),  # out: false report
    (8, (106.0, 30.0, 0.11), True, False, (106.0, 30.0, 0.11), False),  # out, said out
]


def _truth() -> Truth:
    """Frames 0..9; frame 9 has no ball row at all; a home player stands by in frame 0."""
    rows: list[tuple[int, int, str, tuple[float, float, float], Box | None]] = []
    in_play: list[bool] = []
    for frame, position, seen, play, _, _ in CASES:
        rows.append((frame, 0, "ball", position, SEEN if seen else None))
        in_play.append(play)
    rows.append((0, 1, "home", (50.0, 30.0, 0.0), SEEN))
    in_play.append(True)
    return make_truth(rows, frames=10, in_play=in_play)


def _ours() -> BallResults:
    """Frames 0..8 as `CASES` says (no row for frame 9), plus a reported ball after the clip."""
    frame, position, visible, in_play = [], [], [], []
    for f, _, _, _, ours, play in CASES:
        frame.append(f)
        position.append(ours if ours is not None else (NAN, NAN, NAN))
        visible.append(ours is not None)
        in_play.append(play)
    frame.append(12)
    position.append((1.0, 1.0, 0.11))
    visible.append(True)
    in_play.append(True)
    return BallResults(
        frame=np.array(frame, np.int32),
        position=np.array(position, np.float32),
        visible=np.array(visible, np.bool_),
        in_play=np.array(in_play, np.bool_),
    )


def test_scores_count_each_kind_of_frame() -> None:
    scores = score_ball(_truth(), _ours())

    assert scores.frames == 10
    assert (scores.ball_frames, scores.within_2m, scores.within_1m) == (6, 4, 2)
    assert scores.found_2m_share == pytest.approx(4 / 6)
    assert scores.found_1m_share == pytest.approx(2 / 6)
    # Frames 6 (hidden), 7 and 8 (out of play) and 9 (no ball row) have no ball; we report
    # one in 6 and 7. The reported ball after the clip (frame 12) is not scored.
    assert (scores.no_ball_frames, scores.false_reports) == (4, 2)
    assert scores.false_report_share == pytest.approx(0.5)
    assert scores.false_report_share_all == pytest.approx(0.2)
    # Frames 4 and 5: |1.5 - 2.0| and |3.25 - 3.0|.
    assert scores.high_frames == 2
    assert scores.height_mae_m == pytest.approx(0.375)
    # Seen by a camera and by us: 0, 1, 2, 4, 5, 7, 8; frame 7 says "in play" wrongly.
    assert (scores.in_play_frames, scores.in_play_agree) == (7, 6)
    assert scores.in_play_agreement == pytest.approx(6 / 7)


def test_perfect_ball_and_empty_results() -> None:
    truth = _truth()
    ball = truth.is_ball
    assert truth.in_play is not None
    perfect = BallResults(
        frame=truth.frame[ball],
        position=truth.position[ball],
        visible=np.ones(int(ball.sum()), np.bool_),
        in_play=truth.in_play[ball],
    )
    scores = score_ball(truth, perfect)
    assert (scores.found_2m_share, scores.found_1m_share) == (1.0, 1.0)
    # Frame 6: the truth ball is hidden from both cameras but we "see" it in play.
    assert scores.false_reports == 1
    assert scores.height_mae_m == 0.0
    assert scores.in_play_agreement == 1.0

    empty = BallResults(
        frame=np.zeros(0, np.int32),
        position=np.zeros((0, 3), np.float32),
        visible=np.zeros(0, np.bool_),
        in_play=np.zeros(0, np.bool_),
    )
    scores = score_ball(truth, empty)
    assert (scores.within_2m, scores.false_reports, scores.in_play_frames) == (0, 0, 0)
    assert scores.found_2m_share == 0.0
    assert scores.height_mae_m is None and scores.in_play_agreement is None


def test_report_has_the_ball_section(tmp_path: Path) -> None:
    write_truth(_truth(), tmp_path / "truth")
    write_results(Results(ball=_ours()), tmp_path / "results")
    out = tmp_path / "eval.json"

    report = run_eval(tmp_path / "truth", tmp_path / "results", out)

    data = json.loads(out.read_text())["ball"]
    assert data["ball_frames"] == 6
    assert data["found_2m_share"] == pytest.approx(4 / 6)
    assert data["found_1m_share"] == pytest.approx(2 / 6)
    assert data["false_report_share"] == 0.5
    assert data["false_report_share_all"] == 0.2
    assert data["height_mae_m"] == pytest.approx(0.375)
    assert data["in_play_agreement"] == pytest.approx(6 / 7)
    assert not any("ball.parquet" in note for note in report.notes)
    table = report.format_table()
    assert "ball found within 2 m (share)" in table and "0.6667" in table
    assert "ball false reports (share, all)" in table and "0.2000" in table
