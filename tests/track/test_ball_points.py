"""The ball track as ``ball_points`` rows: types of the migration, round trip through chDB."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from activities.track.ball_points import (
    BALL_POINTS_SCHEMA,
    ball_points_digest,
    ball_points_table,
    ball_track_from_rows,
    read_ball_track,
)
from activities.track.ball_track import BallTrack
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store


@dataclass(frozen=True)
class Scope:
    organization_id: str = "o1"
    match_id: str = "m1"
    revision: int = 1


def _track() -> BallTrack:
    """Frames 10..15: seen rolling, bridged, seen in the air, lost, seen out of play, seen."""
    return BallTrack(
        frame=np.arange(10, 16, dtype=np.int64),
        xy=np.array(
            [[50.0, 30.0], [51.0, 30.5], [52.0, 31.0], [99.0, 99.0], [105.5, 20.0], [60.0, 10.0]]
        ),
        z=np.array([0.11, 0.11, 2.5, 7.0, 0.11, 0.11]),
        visible=np.array([True, True, True, False, True, True]),
        observed=np.array([True, False, True, False, True, True]),
        in_play=np.array([True, True, True, True, False, True]),
        confidence=np.array([0.9, 0.5, 0.8, 0.0, 0.7, 0.6]),
    )


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


def test_table_has_the_migration_types_and_blanks_unseen_frames() -> None:
    table = ball_points_table(_track())
    assert table.schema.equals(BALL_POINTS_SCHEMA)
    rows = table.to_pydict()
    assert rows["frame"] == [10, 11, 12, 13, 14, 15]
    assert rows["visible"] == [1, 1, 1, 0, 1, 1]
    assert rows["observed"] == [1, 0, 1, 0, 1, 1]
    # The lost frame's leftovers (99, 99, 7 m, "in play") are not written as if seen.
    assert np.isnan(rows["pitch_x"][3]) and np.isnan(rows["height_m"][3])
    assert rows["in_play"] == [1, 1, 1, 0, 0, 1]
    assert rows["height_m"][2] == pytest.approx(2.5)


def test_negative_frame_is_refused() -> None:
    track = BallTrack.not_seen(-1, 2)
    with pytest.raises(pa.ArrowInvalid):
        ball_points_table(track)


def test_rows_round_trip_through_the_store(analytics: AnalyticsStore) -> None:
    track = _track()
    scope = Scope()
    # Two chunks, as the track activity writes them.
    for chunk, (start, end) in enumerate([(10, 13), (13, 16)]):
        part = ball_points_table(track.slice_frames(start, end))
        analytics.replace_slice("ball_points", "o1", "m1", 1, chunk, part)

    back = read_ball_track(analytics, scope)

    np.testing.assert_array_equal(back.frame, track.frame)
    np.testing.assert_array_equal(back.visible, track.visible)
    np.testing.assert_array_equal(back.observed, track.observed)
    np.testing.assert_array_equal(back.in_play, [True, True, True, False, False, True])
    np.testing.assert_allclose(back.xy[[0, 1, 2, 4, 5]], track.xy[[0, 1, 2, 4, 5]], atol=1e-5)
    assert np.isnan(back.xy[3]).all() and np.isnan(back.z[3])
    np.testing.assert_array_equal(back.reported, [True, True, True, False, False, True])

    reported = read_ball_track(analytics, scope, reported_only=True)
    # Frames 13 and 14 are not reported: they come back as not-visible rows, not as gaps.
    np.testing.assert_array_equal(reported.frame, np.arange(10, 16))
    np.testing.assert_array_equal(reported.reported, [True, True, True, False, False, True])

    window = read_ball_track(analytics, scope, start_frame=11, end_frame=13)
    np.testing.assert_array_equal(window.frame, [11, 12])
    assert len(read_ball_track(analytics, Scope(organization_id="other"))) == 0


def test_from_rows_sorts_fills_gaps_and_keeps_the_last_duplicate() -> None:
    rows: dict[str, np.ndarray] = {
        "frame": np.array([7, 4, 7], np.uint32),
        "pitch_x": np.array([1.0, 2.0, 3.0], np.float32),
        "pitch_y": np.array([1.0, 2.0, 3.0], np.float32),
        "height_m": np.array([0.1, 0.2, 0.3], np.float32),
        "visible": np.array([1, 1, 1], np.uint8),
        "observed": np.array([1, 0, 1], np.uint8),
        "in_play": np.array([1, 1, 0], np.uint8),
        "confidence": np.array([0.5, 0.6, 0.7], np.float32),
    }
    track = ball_track_from_rows(rows)
    np.testing.assert_array_equal(track.frame, [4, 5, 6, 7])
    np.testing.assert_array_equal(track.visible, [True, False, False, True])
    assert track.xy[3, 0] == pytest.approx(3.0)
    assert not track.in_play[3]
    assert not track.observed[0]
    with pytest.raises(ValueError, match="lack"):
        ball_track_from_rows({"frame": rows["frame"]})


def test_digest_follows_the_rows(analytics: AnalyticsStore) -> None:
    scope = Scope()
    assert ball_points_digest(analytics, scope) == "0:0"
    table = ball_points_table(_track())
    analytics.replace_slice("ball_points", "o1", "m1", 1, 0, table)
    first = ball_points_digest(analytics, scope)
    assert first.startswith("6:")
    moved = _track()
    moved.xy[0, 0] = 49.0
    analytics.replace_slice("ball_points", "o1", "m1", 1, 0, ball_points_table(moved))
    assert ball_points_digest(analytics, scope) != first
    analytics.replace_slice("ball_points", "o1", "m1", 1, 0, table)
    assert ball_points_digest(analytics, scope) == first
