"""Virtual-camera ball-in-view share."""

from __future__ import annotations

import numpy as np

from evaluation import Results, evaluate, points_in_quads
from tests.eval.helpers import make_truth, make_vcam


def test_points_in_quads_either_winding_and_non_convex():
    square = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
    dart = [(0.0, 0.0), (10.0, 5.0), (0.0, 10.0), (4.0, 5.0)]  # non-convex at (4, 5)
    quads = np.array([square, square[::-1], square, dart, dart])
    points = np.array([(5.0, 5.0), (5.0, 5.0), (11.0, 5.0), (6.0, 5.0), (2.0, 5.0)])
    assert points_in_quads(points, quads).tolist() == [True, True, False, True, False]


def ball_truth(in_play=None):
    rows = [(f, 0, "ball", (52.5, 34.0, 0.11), None) for f in range(10)]
    rows += [(f, 1, "home", (10.0, 10.0, 0.0), None) for f in range(10)]
    # in_play is per row: the ball rows, then the player rows, frame by frame.
    return make_truth(rows, frames=10, in_play=None if in_play is None else in_play * 2)


def vcam():
    """Frames 0-6 look at x 40..60 (ball in view), 7-8 at x 70..90, frame 9 has no quad."""
    rows = [(f, 40.0, 20.0, 60.0, 50.0) for f in range(7)]
    return make_vcam(rows + [(f, 70.0, 20.0, 90.0, 50.0) for f in (7, 8)])


def test_ball_in_view_share():
    scores = evaluate(ball_truth(), Results(vcam=vcam())).vcam
    assert scores is not None
    assert (scores.frames, scores.in_view, scores.missing_frames) == (10, 7, 1)
    assert scores.ball_in_view_share == 0.7


def test_ball_out_of_play_frames_are_not_scored():
    # Frames 0-1 out of play: 8 frames scored, 5 of them (2-6) in view -> 0.625.
    in_play = [False, False] + [True] * 8
    scores = evaluate(ball_truth(in_play), Results(vcam=vcam())).vcam
    assert scores is not None
    assert (scores.frames, scores.in_view) == (8, 5)
    assert scores.ball_in_view_share == 0.625


def test_empty_vcam_counts_every_frame_missing():
    empty = make_vcam([])
    scores = evaluate(ball_truth(), Results(vcam=empty)).vcam
    assert scores is not None
    assert (scores.frames, scores.in_view, scores.missing_frames) == (10, 0, 10)
