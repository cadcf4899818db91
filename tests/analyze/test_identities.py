"""Identities: fragments of one player joined, other teams and impossible joins kept apart,
and the analyst's merges and roster followed."""

from __future__ import annotations

import numpy as np
import pytest

from activities.analyze.identities import Identities, IdentityOverrides, link_identities

FPS = 25.0


def _run(
    track: int, team: int, frames: range, x0: float, y0: float, vx: float = 2.0
) -> list[tuple[int, int, int, float, float]]:
    return [(f, track, team, x0 + vx * (f - frames.start) / FPS, y0) for f in frames]


def _columns(rows: list[tuple[int, int, int, float, float]]) -> dict[str, np.ndarray]:
    frame, track, team, x, y = (np.asarray(c) for c in zip(*rows, strict=True))
    return {"frame": frame, "track_id": track, "team": team, "x": x, "y": y}


def _link(
    rows: list[tuple[int, int, int, float, float]], overrides: IdentityOverrides | None = None
) -> Identities:
    c = _columns(rows)
    return link_identities(
        c["frame"], c["track_id"], c["team"], None, c["x"], c["y"], FPS, overrides
    )


def test_a_player_back_after_a_gap_is_joined_and_named_after_the_first_track() -> None:
    # Track 7 runs at 2 m/s until frame 49, is lost for 2 s, and comes back as track 3 where
    # it would be; track 9 (the other team) appears on the same spot and is left alone.
    rows = _run(7, 0, range(0, 50), 10.0, 10.0)
    rows += _run(3, 0, range(100, 150), 10.0 + 2.0 * 4.0, 10.0)
    rows += _run(9, 1, range(100, 150), 10.0 + 2.0 * 4.0, 10.0)
    identities = _link(rows)
    assert identities.of_track == {7: 3, 3: 3, 9: 9}
    assert identities.team == {3: 0, 9: 1}


def test_a_fragment_too_far_for_the_gap_is_another_player() -> None:
    rows = _run(1, 0, range(0, 50), 10.0, 10.0)
    rows += _run(2, 0, range(75, 125), 60.0, 40.0)  # 50 m away one second later
    identities = _link(rows)
    assert identities.of_track == {1: 1, 2: 2}


def test_each_end_joins_one_start_the_nearest() -> None:
    rows = _run(1, 0, range(0, 50), 10.0, 10.0, vx=0.0)
    rows += _run(2, 0, range(60, 100), 11.0, 10.0, vx=0.0)
    rows += _run(3, 0, range(60, 100), 14.0, 10.0, vx=0.0)
    identities = _link(rows)
    assert identities.of_track == {1: 1, 2: 1, 3: 3}


def test_overrides_merge_and_roster_players_join_identities() -> None:
    rows = _run(1, 0, range(0, 50), 10.0, 10.0)
    rows += _run(2, 0, range(0, 50), 60.0, 30.0)
    rows += _run(4, 0, range(0, 50), 80.0, 50.0)
    rows += _run(5, 1, range(0, 50), 20.0, 50.0)
    overrides = IdentityOverrides(merges=[(2, 4)], roster={1: "alice", 5: "bob", 2: "bob"})
    identities = _link(rows, overrides=overrides)
    # 2 and 4 merged; 2 and 5 are both "bob" (the analyst's word beats the team mismatch).
    assert identities.of_track == {1: 1, 2: 2, 4: 2, 5: 2}
    assert identities.player == {1: "alice", 2: "bob"}


def test_overrides_read_from_json() -> None:
    overrides = IdentityOverrides.from_json({"merges": [[1, 2]], "roster": {"3": "carol"}})
    assert overrides.merges == [(1, 2)] and overrides.roster == {3: "carol"}
    with pytest.raises(ValueError, match="merges"):
        IdentityOverrides.from_json({"merges": {"1": 2}})
