"""The match-wide pass: fragments of one player joined, gaps filled, stubs dropped."""

from __future__ import annotations

import numpy as np

from activities.track.linking import LinkSettings, TrackRows, interpolate_gaps, link_tracks

RED = np.array([120.0, 180.0, 160.0])
BLUE = np.array([90.0, 140.0, 90.0])


def _run(track: int, frames: range, start: tuple[float, float], v: tuple[float, float]):
    f = np.array(frames)
    xy = np.array(start) + np.outer(f - f[0], v)
    return f, np.full(len(f), track), xy


def _rows(*runs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TrackRows:
    return TrackRows.of(
        np.concatenate([r[0] for r in runs]),
        np.concatenate([r[1] for r in runs]),
        np.concatenate([r[2] for r in runs]),
    )


def test_a_player_lost_for_two_seconds_keeps_one_identity_and_the_gap_is_filled() -> None:
    before = _run(1, range(0, 50), (10.0, 10.0), (0.1, 0.0))  # 2.5 m/s
    after = _run(2, range(100, 150), (10.0 + 0.1 * 100, 10.0), (0.1, 0.0))
    linked, identity = link_tracks(
        _rows(before, after), {1: RED, 2: RED}, 25.0, LinkSettings(interpolate_s=2.0)
    )
    assert identity == {1: 1, 2: 1}
    assert np.unique(linked.track_id).tolist() == [1]
    assert linked.frame.tolist() == list(range(150))  # 50 missing frames: within 2 s
    assert linked.interpolated.sum() == 50
    np.testing.assert_allclose(linked.xy[75], [17.5, 10.0])


def test_another_kit_or_an_impossible_run_is_not_joined() -> None:
    before = _run(1, range(0, 50), (10.0, 10.0), (0.0, 0.0))
    near = _run(2, range(60, 110), (10.5, 10.0), (0.0, 0.0))
    _, identity = link_tracks(_rows(before, near), {1: RED, 2: BLUE}, 25.0)
    assert identity[2] == 2  # other kit
    far = _run(2, range(60, 110), (40.0, 10.0), (0.0, 0.0))  # 30 m in 0.4 s
    _, identity = link_tracks(_rows(before, far), {1: RED, 2: RED}, 25.0)
    assert identity[2] == 2


def test_each_end_joins_one_start_the_nearest_wins_and_overlaps_never_join() -> None:
    a = _run(1, range(0, 50), (10.0, 10.0), (0.0, 0.0))
    b = _run(2, range(55, 100), (10.3, 10.0), (0.0, 0.0))
    c = _run(3, range(55, 100), (12.0, 10.0), (0.0, 0.0))
    overlapping = _run(4, range(40, 100), (10.2, 10.0), (0.0, 0.0))
    _, identity = link_tracks(_rows(a, b, c, overlapping), {1: RED, 2: RED, 3: RED, 4: RED}, 25.0)
    assert identity[2] == 1 and identity[3] == 3 and identity[4] == 4


def test_stubs_are_dropped_and_long_gaps_stay_gaps() -> None:
    stub = _run(7, range(0, 10), (50.0, 50.0), (0.0, 0.0))
    keep = _run(8, range(0, 60), (20.0, 20.0), (0.0, 0.0))
    linked, _ = link_tracks(_rows(stub, keep), {}, 25.0, LinkSettings(min_length_s=1.0))
    assert np.unique(linked.track_id).tolist() == [8]
    rows = _rows(
        _run(1, range(0, 10), (0.0, 0.0), (0.0, 0.0)),
        _run(1, range(100, 110), (0.0, 0.0), (0.0, 0.0)),
    )
    assert len(interpolate_gaps(rows, 50).frame) == 20


def test_people_standing_beyond_the_lines_are_dropped_but_a_linesman_stays() -> None:
    from activities.track.linking import drop_bystanders

    substitute = _run(1, range(0, 250), (40.0, 70.0), (0.0, 0.001))  # 2 m beyond, still
    on_the_line = _run(2, range(0, 250), (66.0, 68.1), (0.001, 0.0))  # on the line, still
    linesman = _run(3, range(0, 250), (60.0, -0.4), (0.04, 0.0))  # runs 10 m along it
    player = _run(4, range(0, 250), (30.0, 30.0), (0.05, 0.02))
    kept = drop_bystanders(_rows(substitute, on_the_line, linesman, player), 25.0)
    assert np.unique(kept.track_id).tolist() == [3, 4]
