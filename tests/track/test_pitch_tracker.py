"""PitchTracker on hand-made scenes: identities through crossings, gaps, duplicates, resume."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from activities.track.pitch_tracker import PitchTracker, TrackerSettings

RED = (120.0, 180.0, 160.0)
BLUE = (90.0, 140.0, 90.0)


def _frame(
    tracker: PitchTracker,
    xy: Sequence[tuple[float, float]],
    lab: Sequence[tuple[float, ...]],
    score: float = 0.9,
) -> dict[int, tuple[float, float]]:
    answer = tracker.update(
        np.array(xy, float).reshape(-1, 2),
        np.full(len(xy), score),
        np.array(lab, float).reshape(-1, 3),
    )
    return {
        int(t): (float(x), float(y)) for t, (x, y) in zip(answer.track_id, answer.xy, strict=True)
    }


def test_two_players_of_different_kits_crossing_keep_their_identities() -> None:
    tracker = PitchTracker(25.0)
    first: dict[int, tuple[float, float]] = {}
    for f in range(100):
        t = f / 25.0
        a = (40.0 + 5.0 * t, 30.0)  # red runs right
        b = (60.0 - 5.0 * t, 30.4)  # blue runs left, passing 0.4 m from red at t = 2 s
        seen = _frame(tracker, [a, b], [RED, BLUE])
        if f == 10:
            first = seen
    ids = sorted(first)
    assert len(ids) == 2
    final = _frame(tracker, [(40.0 + 5.0 * 4.0, 30.0), (60.0 - 5.0 * 4.0, 30.4)], [RED, BLUE])
    red = min(ids, key=lambda i: first[i][0])  # red started on the left...
    assert final[red][0] > 55.0  # ...and is on the right after the crossing


def test_a_track_needs_confirmation_and_a_miss_kills_a_tentative_one() -> None:
    tracker = PitchTracker(25.0, TrackerSettings(confirm_hits=3))
    assert _frame(tracker, [(10.0, 10.0)], [RED]) == {}
    assert _frame(tracker, [(10.1, 10.0)], [RED]) == {}
    assert len(_frame(tracker, [(10.2, 10.0)], [RED])) == 1
    lone = PitchTracker(25.0)
    _frame(lone, [(50.0, 50.0)], [RED])
    _frame(lone, [], [])
    assert lone.ids.size == 0


def test_a_short_occlusion_is_bridged_and_a_long_one_closes_the_track() -> None:
    tracker = PitchTracker(25.0, TrackerSettings(max_lost_s=1.0))
    for f in range(10):
        seen = _frame(tracker, [(20.0 + 0.2 * f, 20.0)], [RED])
    (identity,) = seen
    for _ in range(12):  # half a second unseen, still running
        _frame(tracker, [], [])
    back = _frame(tracker, [(20.0 + 0.2 * 22, 20.0)], [RED])
    assert list(back) == [identity]
    for _ in range(30):
        _frame(tracker, [], [])
    assert tracker.ids.size == 0


def test_weak_detections_only_continue_confirmed_tracks() -> None:
    tracker = PitchTracker(25.0)
    assert _frame(tracker, [(30.0, 30.0)], [RED], score=0.3) == {}
    assert tracker.ids.size == 0  # a weak detection starts nothing
    for f in range(5):
        seen = _frame(tracker, [(10.0 + 0.1 * f, 10.0)], [RED])
    weak = _frame(tracker, [(10.5, 10.0)], [RED], score=0.3)
    assert list(weak) == list(seen)


def test_a_same_kit_double_image_is_one_person_but_two_kits_side_by_side_are_two() -> None:
    tracker = PitchTracker(25.0, TrackerSettings(confirm_hits=1))
    assert len(_frame(tracker, [(50.0, 34.0), (50.3, 34.1)], [RED, RED])) == 1
    other = PitchTracker(25.0, TrackerSettings(confirm_hits=1))
    assert len(_frame(other, [(50.0, 34.0), (50.3, 34.1)], [RED, BLUE])) == 2


def test_state_round_trips_through_json_and_continues_identically() -> None:
    rng = np.random.default_rng(3)
    paths = rng.uniform(5, 60, (6, 2))
    tracker = PitchTracker(25.0)
    for f in range(20):
        _frame(tracker, [tuple(p + 0.1 * f) for p in paths], [RED] * 3 + [BLUE] * 3)
    state = json.loads(json.dumps(tracker.to_state()))
    resumed = PitchTracker.from_state(state)
    for f in range(20, 30):
        xy = [tuple(p + 0.1 * f) for p in paths]
        assert _frame(tracker, xy, [RED] * 3 + [BLUE] * 3) == _frame(
            resumed, xy, [RED] * 3 + [BLUE] * 3
        )


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="fps"):
        PitchTracker(0.0)
    with pytest.raises(ValueError, match="version"):
        PitchTracker.from_state({"version": 99})
