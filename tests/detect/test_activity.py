"""The detect activity: analytics rows, manifest idempotence, resume after a crash."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

import activities.detect.activity as detect_activity
from activities.detect.activity import DetectActivities
from activities.detect.contracts import DetectChunkInput
from activities.detect.detections import Detections
from activities.detect.model_store import resolve_model
from activities.detect.tiling import plan_tiles
from activities.detect.tuning import DetectTuning
from activities.detect.yolox import YoloxDetector
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.objects import ObjectStore, open_object_store
from synth.generate import SynthConfig, generate_match
from tests.fixtures.pipeline import MODELS_DIR, requires_model

pytestmark = requires_model


EVERY_FRAME = DetectTuning(stride=1)

TILES_PER_FRAME = len(plan_tiles(640, 360, upscale=DetectChunkInput.upscale))


class CountingDetector:
    """The real detector, counting frames (tile calls) and able to crash at a given frame."""

    def __init__(self, crash_at_frame: int | None = None) -> None:
        self.inner = YoloxDetector(resolve_model(MODELS_DIR, url=None))
        self.calls = 0
        self.crash_at_frame = crash_at_frame

    @property
    def frames(self) -> float:
        return self.calls / TILES_PER_FRAME

    def detect(
        self, image_bgr: np.ndarray, score_threshold: float = 0.3, nms_iou: float = 0.45
    ) -> Detections:
        if self.crash_at_frame is not None and self.frames >= self.crash_at_frame:
            raise RuntimeError("worker crashed")
        self.calls += 1
        return self.inner.detect(image_bgr, score_threshold=score_threshold, nms_iou=nms_iou)


@pytest.fixture(scope="module")
def chunk_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chunk") / "match"
    generate_match(SynthConfig(seconds=1.2, width=640, height=360, seed=2), out)
    return out / "left.mp4"


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


async def _input(objects: ObjectStore, video: Path) -> DetectChunkInput:
    info = await objects.upload_file("orgs/o1/matches/m1/1/stitch/chunk-00003.mp4", video)
    assert info.sha256 is not None
    return DetectChunkInput(
        organization_id="o1",
        match_id="m1",
        revision=1,
        chunk=3,
        video_key=info.key,
        video_sha256=info.sha256,
        first_frame=300,
    )


def _rows(analytics: AnalyticsStore) -> np.ndarray:
    table = analytics.query_numpy(
        "SELECT frame, class_id, x1, y1, x2, y2 FROM detections "
        "WHERE organization_id = {org:String} AND match_id = {match:String} AND chunk = 3 "
        "ORDER BY frame, x1, y1",
        {"org": "o1", "match": "m1"},
    )
    return np.column_stack([table[c].astype(np.float64) for c in table])


async def test_detects_writes_rows_and_a_manifest_then_answers_from_it(
    objects: ObjectStore, analytics: AnalyticsStore, chunk_video: Path
) -> None:
    detector = CountingDetector()
    acts = DetectActivities(
        objects, analytics, MODELS_DIR, detector_factory=lambda: detector, tuning=EVERY_FRAME
    )
    chunk = await _input(objects, chunk_video)
    output = await ActivityEnvironment().run(acts.detect_chunk, chunk)
    assert output.frames == 30 and detector.frames == 30
    assert output.persons >= 30 * 10  # about 20 players visible per frame in this camera
    rows = _rows(analytics)
    assert len(rows) == output.persons + output.balls
    assert rows[:, 0].min() == 300 and rows[:, 0].max() == 329  # match frame numbers
    assert await objects.exists(output.manifest_key)

    again = await ActivityEnvironment().run(acts.detect_chunk, chunk)
    assert again.from_manifest and detector.frames == 30  # no detection the second time
    assert (again.persons, again.balls) == (output.persons, output.balls)

    # Without the manifest the work is redone, and the slice is replaced, not duplicated.
    await objects.delete(output.manifest_key)
    await ActivityEnvironment().run(acts.detect_chunk, chunk)
    assert len(_rows(analytics)) == len(rows)


@pytest.mark.parametrize("stride", [1, 4])
async def test_a_crashed_attempt_resumes_from_its_last_checkpoint(
    objects: ObjectStore,
    analytics: AnalyticsStore,
    chunk_video: Path,
    monkeypatch: pytest.MonkeyPatch,
    stride: int,
) -> None:
    tuning = DetectTuning(stride=stride)
    monkeypatch.setattr(detect_activity, "CHECKPOINT_FRAMES", 10)
    chunk = await _input(objects, chunk_video)

    # Frames 300..329: every one at stride 1; 300, 304, .., 328 (8) at stride 4.
    crashing = CountingDetector(crash_at_frame=17 if stride == 1 else 4)
    heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    acts = DetectActivities(
        objects, analytics, MODELS_DIR, detector_factory=lambda: crashing, tuning=tuning
    )
    with pytest.raises(RuntimeError, match="worker crashed"):
        await env.run(acts.detect_chunk, chunk)
    assert heartbeats[-1][0]["frames_done"] == 10  # the last checkpoint before frame 17

    resumed = CountingDetector()
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=list(heartbeats[-1]))
    acts = DetectActivities(
        objects, analytics, MODELS_DIR, detector_factory=lambda: resumed, tuning=tuning
    )
    output = await env.run(acts.detect_chunk, chunk)
    # Frames 10..29 only: 20 of them, or 310..329's multiples of 4 (312 .. 328: 5).
    assert resumed.frames == (20 if stride == 1 else 5)
    resumed_rows = _rows(analytics)

    # Identical to an uninterrupted run.
    await objects.delete(output.manifest_key)
    fresh = CountingDetector()
    acts = DetectActivities(
        objects, analytics, MODELS_DIR, detector_factory=lambda: fresh, tuning=tuning
    )
    await ActivityEnvironment().run(acts.detect_chunk, chunk)
    assert fresh.frames == (30 if stride == 1 else 8)
    np.testing.assert_array_equal(_rows(analytics), resumed_rows)


async def test_with_a_stride_people_are_detected_on_every_strideth_match_frame(
    objects: ObjectStore, analytics: AnalyticsStore, chunk_video: Path
) -> None:
    detector = CountingDetector()
    acts = DetectActivities(
        objects, analytics, MODELS_DIR, detector_factory=lambda: detector, tuning=DetectTuning(3)
    )
    output = await ActivityEnvironment().run(acts.detect_chunk, await _input(objects, chunk_video))
    # Match frames 300..329: 300, 303, .., 327 are the multiples of 3 (10 frames).
    assert output.stride == 3 and output.frames == 30 and detector.frames == 10
    frames = np.unique(_rows(analytics)[:, 0].astype(np.int64))
    assert len(frames) and (frames % 3 == 0).all()


async def test_a_missing_model_fails_at_once_with_its_name(
    objects: ObjectStore, analytics: AnalyticsStore, chunk_video: Path, tmp_path: Path
) -> None:
    from temporalio.exceptions import ApplicationError

    acts = DetectActivities(objects, analytics, tmp_path / "no-models")
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(acts.detect_chunk, await _input(objects, chunk_video))
    assert failure.value.non_retryable and failure.value.type == "ModelNotFound"
    assert "yolox_nano.onnx" in str(failure.value) and "PV_MODELS_DIR" in str(failure.value)
