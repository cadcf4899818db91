"""ByteTracker behaviour on synthetic scenes: identity stability, the second stage, the lost-track
buffer, resume from a checkpoint, and MOTA/IDF1 on noisy detections (scored by py-motmetrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from activities.detect.detections import Detections
from activities.track.bytetrack import ByteTracker, box_iou, track_sequence
from activities.track.tracks import Tracks
from tests.track.helpers import box, dets, mot_scores, noisy_scene


def ids_of(truth: list[list[float]], tracks: Tracks) -> list[int]:
    """The id of the track on each truth box (IoU >= 0.5), or -1 where none is."""
    if len(tracks) == 0:
        return [-1] * len(truth)
    iou = box_iou(truth, tracks.xyxy)
    best = iou.argmax(axis=1)
    return [int(tracks.track_id[j]) if iou[i, j] >= 0.5 else -1 for i, j in enumerate(best)]


def test_box_iou() -> None:
    iou = box_iou(
        [[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]]
    )
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_perfect_detections_keep_one_id_per_object() -> None:
    starts = [(100, 200), (400, 200), (700, 600), (1000, 300), (1300, 800)]
    vels = [(3, 0), (-2, 1), (0, -3), (2.5, 2.5), (-4, -1)]
    truth = [
        [box(x + vx * f, y + vy * f) for (x, y), (vx, vy) in zip(starts, vels, strict=True)]
        for f in range(120)
    ]
    out = track_sequence(dets(b) for b in truth)
    per_frame = np.array([ids_of(b, tr) for b, tr in zip(truth, out, strict=True)])
    assert (per_frame == np.arange(1, 6)).all()
    assert all(len(tr) == 5 for tr in out)
    # After a few frames the filter has the velocity and sits on the true box.
    np.testing.assert_allclose(out[-1].xyxy, np.array(truth[-1], np.float32), atol=0.5)


@pytest.mark.parametrize("occluded_frames", [0, 6])
def test_crossing_objects_keep_their_ids(occluded_frames: int) -> None:
    # Two people run at each other along nearly the same line and pass through each other at
    # frame 30; optionally the one behind is not detected while they overlap.
    truth = [[box(300 + 5 * f, 400), box(600 - 5 * f, 406)] for f in range(60)]
    hidden = range(30 - occluded_frames // 2, 30 + occluded_frames // 2)
    frames = [dets(b[:1] if f in hidden else b) for f, b in enumerate(truth)]
    out = track_sequence(frames)
    for f, (b, tr) in enumerate(zip(truth, out, strict=True)):
        if f not in hidden:
            assert ids_of(b, tr) == [1, 2], f"frame {f}"
    assert max(int(tr.track_id.max()) for tr in out) == 2


def test_missing_for_ten_frames_is_reassociated() -> None:
    tracker = ByteTracker(frame_rate=25, coast_frames=0)
    truth = [box(200 + 3 * f, 300 + f) for f in range(60)]
    out = [tracker.update(dets([] if 20 <= f < 30 else [b])) for f, b in enumerate(truth)]
    for f, (b, tr) in enumerate(zip(truth, out, strict=True)):
        if 20 <= f < 30:
            assert len(tr) == 0, "a lost track is not reported without coasting"
        else:
            assert ids_of([b], tr) == [1], f"frame {f}"


def test_coasting_reports_predicted_box_with_score_zero() -> None:
    tracker = ByteTracker(frame_rate=25, coast_frames=3)
    truth = [box(200 + 3 * f, 300) for f in range(40)]
    out = [tracker.update(dets([] if 20 <= f < 30 else [b])) for f, b in enumerate(truth)]
    for f in range(20, 23):
        assert out[f].track_id.tolist() == [1] and out[f].score.tolist() == [0.0]
        assert ids_of([truth[f]], out[f]) == [1], "the prediction follows the motion"
    assert all(len(out[f]) == 0 for f in range(23, 30))
    assert out[30].track_id.tolist() == [1] and out[30].score[0] > 0


def test_lost_longer_than_buffer_gets_a_new_id() -> None:
    # 30 frames at 30 fps is 25 frames at 25 fps; after 40 the track is gone.
    tracker = ByteTracker(frame_rate=25, track_buffer=30)
    assert tracker.max_time_lost == 25
    truth = [box(200 + 2 * f, 300) for f in range(80)]
    out = [tracker.update(dets([] if 20 <= f < 60 else [b])) for f, b in enumerate(truth)]
    assert ids_of([truth[19]], out[19]) == [1]
    assert ids_of([truth[70]], out[70]) == [2]


def test_low_score_detections_extend_tracks_but_never_start_them() -> None:
    tracker = ByteTracker(frame_rate=25, coast_frames=0)
    truth = [box(200 + 3 * f, 300) for f in range(40)]
    # Partly occluded from frame 10 to 29: the detector is unsure but still sees the person.
    scores = [0.3 if 10 <= f < 30 else 0.9 for f in range(40)]
    out = [tracker.update(dets([b], [s])) for b, s in zip(truth, scores, strict=True)]
    assert all(tr.track_id.tolist() == [1] for tr in out)
    np.testing.assert_allclose(out[15].score, [0.3])

    only_low = ByteTracker(frame_rate=25)
    assert all(len(only_low.update(dets([b], [0.3]))) == 0 for b in truth)
    assert only_low.to_state()["next_id"] == 1
    # Below low_thresh a detection cannot even extend a track.
    below = ByteTracker(frame_rate=25, coast_frames=0)
    below.update(dets([truth[0]]))
    assert len(below.update(dets([truth[1]], [0.05]))) == 0


def test_one_frame_false_positive_does_not_become_a_track() -> None:
    tracker = ByteTracker(frame_rate=25)
    tracker.update(dets([box(100, 100)]))
    tracker.update(dets([box(100, 100), box(900, 500)]))  # unconfirmed
    assert tracker.update(dets([box(100, 100)])).track_id.tolist() == [1]
    assert tracker.update(dets([box(100, 100), box(900, 500)])).track_id.tolist() == [1]
    assert tracker.update(dets([box(100, 100), box(900, 500)])).track_id.tolist() == [1, 2]


def test_ids_are_never_reused() -> None:
    # One person after another at the same place, each gone for longer than the buffer.
    tracker = ByteTracker(frame_rate=25)
    seen: list[int] = []
    for person in range(5):
        for f in range(10):
            tr = tracker.update(dets([box(500 + f, 500)]))
            seen.extend(tr.track_id.tolist())
        for _ in range(tracker.max_time_lost + 2):
            seen.extend(tracker.update(Detections.empty()).track_id.tolist())
        assert set(seen) == set(range(1, person + 2))
    assert seen == sorted(seen)


def test_only_people_by_default_and_classes_never_mix() -> None:
    ball = box(510, 500, 10, 10)
    frames = [
        Detections.from_arrays([box(500, 500), ball], [0.9, 0.9], [Detections.PERSON, 32])
        for _ in range(5)
    ]
    people = track_sequence(frames)[-1]
    assert people.track_id.tolist() == [1] and people.class_id.tolist() == [Detections.PERSON]
    both = track_sequence(frames, ByteTracker(25, classes=None))[-1]
    assert sorted(both.class_id.tolist()) == [Detections.PERSON, Detections.SPORTS_BALL]


def test_small_boxes_are_tracked_but_not_reported() -> None:
    tracker = ByteTracker(frame_rate=25, min_box_area=50)
    out = [tracker.update(dets([box(100, 100, 5, 5), box(300, 300)])) for _ in range(3)]
    assert out[-1].track_id.tolist() == [2]


def test_state_is_json_and_resume_gives_identical_tracks() -> None:
    scene = noisy_scene(seed=3)
    uninterrupted = track_sequence(scene.detections)
    for cut in (1, 37, 90):
        tracker = ByteTracker(frame_rate=25)
        first = [tracker.update(d) for d in scene.detections[:cut]]
        # As the activity will do: checkpoint into heartbeat details, crash, resume.
        state = json.loads(json.dumps(tracker.to_state()))
        resumed = ByteTracker.from_state(state)
        assert resumed.to_state() == state
        rest = track_sequence(scene.detections[cut:], resumed)
        for a, b in zip(uninterrupted, first + rest, strict=True):
            np.testing.assert_array_equal(a.track_id, b.track_id)
            np.testing.assert_array_equal(a.xyxy, b.xyxy)
            np.testing.assert_array_equal(a.score, b.score)
            np.testing.assert_array_equal(a.class_id, b.class_id)


def test_from_state_rejects_other_versions() -> None:
    state = ByteTracker().to_state()
    state["version"] = 99
    with pytest.raises(ValueError, match="version"):
        ByteTracker.from_state(state)


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ByteTracker(frame_rate=0)
    with pytest.raises(ValueError):
        ByteTracker(low_thresh=0.6, track_thresh=0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_scene_mota_and_idf1(seed: int) -> None:
    scene = noisy_scene(seed=seed)
    scores = mot_scores(scene, track_sequence(scene.detections))
    assert scores["mota"] >= 0.9, scores
    assert scores["idf1"] >= 0.9, scores


def test_noisy_scene_without_coasting_loses_only_the_missed_frames() -> None:
    # The reference output: every missed detection is a false negative (MOTA about
    # 1 - miss rate), but identities hold.
    scene = noisy_scene(seed=0)
    scores = mot_scores(scene, track_sequence(scene.detections, ByteTracker(25, coast_frames=0)))
    assert scores["mota"] >= 0.85, scores
    assert scores["idf1"] >= 0.9, scores
    assert scores["num_switches"] == 0, scores
