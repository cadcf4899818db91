"""The track activity on a synthetic match: identities across chunks, pitch metres, resume."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig, pitch_to_panorama
from activities.track.activity import TrackActivities
from activities.track.contracts import TrackChunk, TrackInput
from activities.track.ground import FOOT_LIFT
from evaluation.formats import Truth, load_truth
from evaluation.tracking import build_sequence, tracking_scores
from polyvision.geometry import Rig
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.objects import ObjectStore, open_object_store
from synth.generate import SynthConfig, generate_match

CHUNKS = [TrackChunk(0, 0, 25), TrackChunk(1, 25, 25)]


@pytest.fixture(scope="module")
def match(tmp_path_factory: pytest.TempPathFactory) -> tuple[Truth, PanoramaModel]:
    out = tmp_path_factory.mktemp("track") / "match"
    generate_match(SynthConfig(seconds=2.0, width=640, height=360, seed=11), out)
    # Full scale: the panorama is 1.48x the source width, and far players of a 640-px source
    # must stay above the tracker's minimum box area.
    return load_truth(out), panorama_model_from_rig(Rig.load(out / "rig.json"), scale=1.0)


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


def _write_detections(analytics: AnalyticsStore, truth: Truth, model: PanoramaModel) -> None:
    """Perfect person boxes in panorama pixels: foot point and head projected from the truth."""
    people = truth.team != "ball"
    feet = truth.position[people].astype(np.float64)
    heads = feet + np.array([0.0, 0.0, 1.8])
    foot_px = pitch_to_panorama(model, feet)
    head_px = pitch_to_panorama(model, heads)
    height = foot_px[:, 1] - head_px[:, 1]
    # The box's bottom sits below the ground contact as a detector's does (`ground.FOOT_LIFT`).
    box_height = height / (1.0 - FOOT_LIFT)
    bottom = head_px[:, 1] + box_height
    xyxy = np.column_stack(
        [foot_px[:, 0] - 0.2 * height, head_px[:, 1], foot_px[:, 0] + 0.2 * height, bottom]
    )
    frames = truth.frame[people]
    for chunk in CHUNKS:
        rows = (frames >= chunk.first_frame) & (frames < chunk.first_frame + chunk.frames)
        count = int(rows.sum())
        analytics.replace_slice(
            "detections",
            "o1",
            "m1",
            1,
            chunk.chunk,
            pa.table(
                {
                    "frame": pa.array(frames[rows].astype(np.uint32)),
                    "class_id": pa.array(np.zeros(count, np.uint8)),
                    "score": pa.array(np.full(count, 0.9, np.float32)),
                    "x1": pa.array(xyxy[rows, 0].astype(np.float32)),
                    "y1": pa.array(xyxy[rows, 1].astype(np.float32)),
                    "x2": pa.array(xyxy[rows, 2].astype(np.float32)),
                    "y2": pa.array(xyxy[rows, 3].astype(np.float32)),
                }
            ),
        )


async def _input(objects: ObjectStore, model: PanoramaModel) -> TrackInput:
    await objects.put("orgs/o1/matches/m1/1/stitch/panorama.json", model.to_json().encode())
    return TrackInput("o1", "m1", 1, CHUNKS, "orgs/o1/matches/m1/1/stitch/panorama.json", 25.0)


def _points(analytics: AnalyticsStore) -> dict[str, np.ndarray]:
    return analytics.query_numpy(
        "SELECT frame, track_id, pitch_x, pitch_y FROM track_points "
        "WHERE organization_id = 'o1' AND match_id = 'm1' ORDER BY frame, track_id"
    )


async def test_tracks_every_person_in_pitch_metres_across_chunks(
    objects: ObjectStore, analytics: AnalyticsStore, match: tuple[Truth, PanoramaModel]
) -> None:
    truth, model = match
    _write_detections(analytics, truth, model)
    acts = TrackActivities(objects, analytics)
    output = await ActivityEnvironment().run(acts.track_match, await _input(objects, model))
    people = truth.team != "ball"
    assert output.tracks == len(np.unique(truth.id[people]))  # 22 players and the referee
    points = _points(analytics)
    assert output.points == len(points["frame"]) >= 0.95 * people.sum()
    sequence = build_sequence(
        truth.frame[people],
        truth.id[people],
        truth.position[people, :2],
        points["frame"],
        points["track_id"],
        np.column_stack([points["pitch_x"], points["pitch_y"]]),
    )
    scores = tracking_scores(sequence, match_threshold_m=0.5)
    assert scores.mota > 0.95 and scores.idf1 > 0.95  # identities hold across the chunk cut
    again = await ActivityEnvironment().run(acts.track_match, await _input(objects, model))
    assert again.from_manifest and again.points == output.points


async def test_resumes_after_the_last_finished_chunk_with_the_same_identities(
    objects: ObjectStore, analytics: AnalyticsStore, match: tuple[Truth, PanoramaModel]
) -> None:
    truth, model = match
    _write_detections(analytics, truth, model)
    acts = TrackActivities(objects, analytics)
    heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    track_input = await _input(objects, model)
    output = await env.run(acts.track_match, track_input)
    uninterrupted = _points(analytics)
    after_first = next(h for h in heartbeats if h[0]["chunks_done"] == 1)

    await objects.delete(output.manifest_key)
    analytics.replace_slice(
        "track_points", "o1", "m1", 1, 1, pa.table({"frame": pa.array([], pa.uint32())})
    )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=list(after_first))
    resumed = await env.run(acts.track_match, track_input)
    assert resumed.points_per_chunk == output.points_per_chunk
    for column, values in _points(analytics).items():
        np.testing.assert_array_equal(values, uninterrupted[column])
