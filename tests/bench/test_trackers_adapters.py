"""The tracker bench's adapters on a hand-made scene: every tracker keeps two walking people apart,
in pitch metres, and the bench's detection file reads back what the detect stage writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activities.detect.detections import Detections
from activities.detect.rows import detections_table
from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig, pitch_to_panorama
from bench.tracker_adapters import (
    TrackerAdapter,
    TrackPoints,
    boxmot_ocsort_tracks,
    our_tracks,
    supervision_bytetrack_tracks,
)
from bench.tracker_data import MatchDetections, chunk_spans, read_detections
from synth.rig import default_rig

FPS = 25.0
FRAMES = 60
RED = (50.0, 170.0, 160.0)
BLUE = (40.0, 140.0, 90.0)


@pytest.fixture(scope="module")
def model() -> PanoramaModel:
    return panorama_model_from_rig(default_rig(640, 360))


def _walkers(model: PanoramaModel) -> tuple[MatchDetections, np.ndarray]:
    """Two people 10 m apart walking across the pitch at 2 m/s, a ball, and their truth."""
    t = np.arange(FRAMES) / FPS
    paths = [np.column_stack([30 + 2 * t, np.full(FRAMES, 20.0)])]
    paths.append(np.column_stack([60 - 2 * t, np.full(FRAMES, 30.0)]))
    frames, classes, scores, boxes, labs = [], [], [], [], []
    for path, lab in zip(paths, (RED, BLUE), strict=True):
        feet = pitch_to_panorama(model, path)
        heads = pitch_to_panorama(model, np.column_stack([path, np.full(FRAMES, 1.8)]))
        half = 0.2 * (feet[:, 1] - heads[:, 1])
        left, right = feet[:, 0] - half, feet[:, 0] + half
        boxes.append(np.column_stack([left, heads[:, 1], right, feet[:, 1]]))
        frames.append(np.arange(FRAMES))
        classes.append(np.full(FRAMES, Detections.PERSON))
        scores.append(np.full(FRAMES, 0.9))
        labs.append(np.tile(lab, (FRAMES, 1)))
    ball = pitch_to_panorama(model, np.column_stack([45 + t, np.full(FRAMES, 25.0)]))
    boxes.append(np.column_stack([ball - 2, ball + 2]))
    frames.append(np.arange(FRAMES))
    classes.append(np.full(FRAMES, Detections.SPORTS_BALL))
    scores.append(np.full(FRAMES, 0.6))
    labs.append(np.full((FRAMES, 3), np.nan))
    detections = MatchDetections(
        np.concatenate(frames).astype(np.int64),
        np.concatenate(classes).astype(np.int16),
        np.concatenate(scores).astype(np.float32),
        np.concatenate(boxes).astype(np.float32),
        np.concatenate(labs).astype(np.float32),
    )
    return detections, np.stack(paths)


def _adapters() -> list[tuple[str, TrackerAdapter]]:
    adapters: list[tuple[str, TrackerAdapter]] = [("ours", our_tracks)]
    if importlib.util.find_spec("supervision") is not None:
        adapters.append(("supervision", supervision_bytetrack_tracks))
    if importlib.util.find_spec("boxmot") is not None:
        adapters.append(("boxmot", boxmot_ocsort_tracks))
    return adapters


@pytest.mark.parametrize(("name", "adapter"), _adapters(), ids=[n for n, _ in _adapters()])
def test_each_tracker_keeps_two_walkers_apart_on_the_pitch(
    model: PanoramaModel, name: str, adapter: TrackerAdapter
) -> None:
    detections, paths = _walkers(model)
    points = adapter(model, chunk_spans(FRAMES, FPS, seconds=1.0), detections, FPS)
    assert isinstance(points, TrackPoints)
    late = points.frame >= FRAMES // 2  # every tracker has confirmed both by then
    ids = np.unique(points.track_id[late])
    assert len(ids) == 2, name
    for track in ids:
        mine = late & (points.track_id == track)
        # Each identity stays on one walker: its distance to the nearer path, frame by frame.
        errors = np.min(
            np.linalg.norm(paths[:, points.frame[mine]] - points.xy[mine][None], axis=2), axis=0
        )
        assert errors.max() < 0.6, name
        nearest = np.argmin(
            np.linalg.norm(paths[:, points.frame[mine]] - points.xy[mine][None], axis=2), axis=0
        )
        assert len(np.unique(nearest)) == 1, name


def test_ours_online_only_gives_points_too(model: PanoramaModel) -> None:
    detections, _ = _walkers(model)
    points = our_tracks(model, chunk_spans(FRAMES, FPS, seconds=1.0), detections, FPS, finish=False)
    assert len(np.unique(points.track_id[points.frame >= FRAMES // 2])) == 2


@pytest.mark.skipif(importlib.util.find_spec("boxmot") is None, reason="boxmot not installed")
def test_ocsort_leaves_no_stand_in_torch_behind(model: PanoramaModel) -> None:
    had_torch = "torch" in sys.modules or importlib.util.find_spec("torch") is not None
    detections, _ = _walkers(model)
    boxmot_ocsort_tracks(model, chunk_spans(FRAMES, FPS), detections, FPS)
    if not had_torch:
        assert "torch" not in sys.modules


def test_chunk_spans_cover_every_frame_once() -> None:
    spans = chunk_spans(751, 25.0)
    assert [(c.first_frame, c.frames) for c in spans] == [
        (0, 250),
        (250, 250),
        (500, 250),
        (750, 1),
    ]


def test_detections_read_back_from_the_detect_stage_rows(tmp_path: Path) -> None:
    boxes = np.array([[10, 20, 30, 80], [100, 20, 120, 90]], np.float32)
    found = Detections(boxes, np.array([0.9, 0.4], np.float32), np.array([0, 32], np.int16))
    torso = np.array([[50, 170, 160], [np.nan] * 3], np.float32)
    later = detections_table(7, found, torso)
    earlier = detections_table(3, found.filter(np.array([True, False])), torso[:1])
    path = tmp_path / "detections.parquet"
    pq.write_table(pa.concat_tables([later, earlier]), path)
    rows = read_detections(path)
    assert rows.frame.tolist() == [3, 7, 7]  # in frame order
    assert rows.class_id.tolist() == [0, 0, 32]
    np.testing.assert_array_equal(rows.xyxy[1:], boxes)
    assert np.isnan(rows.torso_lab[2]).all()
    assert len(rows.in_chunk(chunk_spans(8, 25.0, seconds=0.2)[1])) == 2  # frames 5..7
