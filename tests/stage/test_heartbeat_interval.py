"""Beats come often enough for the heartbeat timeout the workflow set."""

from __future__ import annotations

from polyvision.heartbeat import HEARTBEAT_INTERVAL_S, beat_interval


def test_a_short_timeout_is_beaten_three_times_per_timeout() -> None:
    assert beat_interval(5.0) == 5.0 / 3.0
    assert beat_interval(1.5) == 0.5


def test_a_long_or_missing_timeout_beats_at_the_usual_pace() -> None:
    assert beat_interval(120.0) == HEARTBEAT_INTERVAL_S
    assert beat_interval(None) == HEARTBEAT_INTERVAL_S
    assert beat_interval(0.0) == HEARTBEAT_INTERVAL_S
    assert beat_interval(60.0, longest_s=2.0) == 2.0
