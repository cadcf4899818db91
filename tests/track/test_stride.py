"""Tracking people detected on every ``stride``-th frame: the tracker steps on those, the frames
between are carried."""

from __future__ import annotations

import numpy as np
import pytest

from activities.detect.tuning import DetectTuning
from activities.track.chunk import MatchTracking
from activities.track.linking import TrackRows
from activities.track.pitch_tracker import TrackerSettings
from activities.track.stride import carry_between_detections, tracker_settings


def test_settings_keep_the_time_to_confirm_with_at_least_two_hits() -> None:
    base = TrackerSettings()
    assert tracker_settings(1) == base
    assert tracker_settings(2).confirm_hits == 3
    assert tracker_settings(4).confirm_hits == 2
    assert tracker_settings(10).confirm_hits == 2
    # Everything else is in seconds and metres and stays.
    assert tracker_settings(4).max_lost_s == base.max_lost_s


def test_frames_between_two_detections_are_filled_linearly_and_longer_gaps_are_left() -> None:
    rows = TrackRows.of(
        [0, 4, 8, 16, 0, 4],
        [1, 1, 1, 1, 2, 2],
        [[0.0, 0.0], [4.0, 8.0], [8.0, 8.0], [16.0, 8.0], [50.0, 30.0], [50.0, 34.0]],
    )
    lab = np.arange(18, dtype=np.float64).reshape(6, 3)
    carried, carried_lab = carry_between_detections(rows, lab, 4)
    one = carried.track_id == 1
    # 0..8 filled; 8 -> 16 is two strides: a miss, left to the match-wide linking.
    assert carried.frame[one].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 16]
    np.testing.assert_allclose(carried.xy[one][1], [1.0, 2.0])
    np.testing.assert_allclose(carried.xy[one][6], [6.0, 8.0])
    two = carried.track_id == 2
    assert carried.frame[two].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(carried.xy[two][2], [50.0, 32.0])
    assert not carried.interpolated.any()
    # Sorted by frame, then identity; a carried row has its earlier row's colour.
    assert (np.diff(carried.frame) >= 0).all()
    assert carried_lab is not None
    np.testing.assert_array_equal(carried_lab[one][1], lab[0])
    np.testing.assert_array_equal(carried_lab[two][3], lab[4])


def test_stride_one_changes_nothing() -> None:
    rows = TrackRows.of([0, 2], [1, 1], [[0.0, 0.0], [1.0, 1.0]])
    carried, lab = carry_between_detections(rows, None, 1)
    assert carried is rows and lab is None


def test_a_resumed_tracking_keeps_its_stride_and_settings() -> None:
    tracking = MatchTracking.start(25.0, 4)
    assert tracking.tracker.fps == pytest.approx(6.25)
    assert tracking.tracker.settings.confirm_hits == 2
    back = MatchTracking.from_state(tracking.to_state())
    assert back.stride == 4 and back.tracker.settings == tracking.tracker.settings
    # Saved before the stride existed: every frame.
    state = tracking.to_state()
    del state["stride"]
    assert MatchTracking.from_state(state).stride == 1


def test_the_detect_stage_and_the_tracker_agree_on_the_detected_frames() -> None:
    tuning = DetectTuning(stride=4)
    assert [f for f in range(250, 262) if tuning.detects(f)] == [252, 256, 260]
    with pytest.raises(ValueError, match="stride"):
        DetectTuning(stride=0)
