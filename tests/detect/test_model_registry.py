"""The model registry on real PostgreSQL and the file object store: add, list, set-default, the
verified cache, the no-model error, and the detect activity running the registered default."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.detect.activity import DetectActivities
from activities.detect.backend import OnnxDetector, check_model_file
from activities.detect.contracts import DetectChunkInput
from activities.detect.detections import Detections
from activities.detect.model_spec import BUNDLED_SPEC, ModelSpecError, parse_class_map
from activities.detect.model_store import ModelNotFoundError
from activities.detect.registry import (
    ModelAlreadyRegisteredError,
    ModelNotRegisteredError,
    NoModelError,
    RegisteredModel,
    default_model,
    fetch_model,
    find_model,
    list_models,
    register_model,
    resolve_stage_model,
    set_default,
)
from activities.detect.tuning import DetectTuning
from polyvision.media.writer import VideoWriter
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.metadata import create_engine, session_maker, upgrade
from polyvision.storage.objects import ObjectStore, open_object_store
from tests.detect.onnx_models import write_constant_model, yolov8_output
from tests.fixtures.pipeline import MODELS_DIR, requires_model

Sessions = async_sessionmaker[AsyncSession]
CLASSES = parse_class_map("person=0,ball=1")


EVERY_FRAME = DetectTuning(stride=1)


@pytest.fixture
async def sessions(postgres_database_url: str) -> AsyncIterator[Sessions]:
    await asyncio.to_thread(upgrade, postgres_database_url)
    engine = create_engine(postgres_database_url)
    try:
        yield session_maker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


def tiny_model(path: Path, person_score: float = 0.9) -> Path:
    """A 64x64 YOLOv8-style model that always sees one person and one ball."""
    raw = yolov8_output(
        boxes=[(32, 16, 16, 8), (20, 20, 8, 8)],
        scores=[[person_score, 0.0], [0.0, 0.8]],
        n_classes=2,
        n_anchors=8,
    )
    return write_constant_model(path, raw, (64, 64))


async def _add(
    sessions: Sessions, objects: ObjectStore, file: Path, version: str, default: bool = False
) -> RegisteredModel:
    return await register_model(
        sessions,
        objects,
        file,
        name="tiny",
        version=version,
        decoder="yolov8",
        input_size=(64, 64),
        class_map=CLASSES,
        make_default=default,
        check=check_model_file,
    )


async def test_add_list_and_set_default(
    sessions: Sessions, objects: ObjectStore, tmp_path: Path
) -> None:
    first = tiny_model(tmp_path / "v1" / "tiny.onnx")
    second = tiny_model(tmp_path / "v2" / "tiny.onnx", person_score=0.7)
    assert await list_models(sessions) == [] and await default_model(sessions) is None

    one = await _add(sessions, objects, first, "1", default=True)
    assert one.object_key == "models/tiny/1/tiny.onnx" and one.is_default
    info = await objects.stat(one.object_key)
    assert info.sha256 == one.spec.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert info.size == one.size_bytes == first.stat().st_size
    assert one.spec.class_map == CLASSES and one.spec.decoder == "yolov8"

    two = await _add(sessions, objects, second, "2")
    assert not two.is_default
    listed = await list_models(sessions)
    assert [m.spec.ref for m in listed] == ["tiny:2", "tiny:1"]  # newest first
    assert [m.is_default for m in listed] == [False, True]

    assert (await set_default(sessions, "tiny", "2")).is_default
    default = await default_model(sessions)
    assert default is not None and default.spec.ref == "tiny:2"
    assert not (await find_model(sessions, "tiny", "1")).is_default  # only one default
    assert (await find_model(sessions, "tiny")).spec.ref == "tiny:2"  # no version: newest

    # Adding with make_default moves the default again.
    third = await _add(sessions, objects, tiny_model(tmp_path / "v3" / "t.onnx", 0.6), "3", True)
    assert third.is_default
    assert [m.spec.ref for m in await list_models(sessions) if m.is_default] == ["tiny:3"]

    with pytest.raises(ModelAlreadyRegisteredError, match="tiny:1 is registered already"):
        await _add(sessions, objects, second, "1")
    assert (await objects.stat(one.object_key)).sha256 == one.spec.sha256  # not overwritten
    with pytest.raises(ModelNotRegisteredError, match=r"no model tiny:9 .*registered: tiny:"):
        await set_default(sessions, "tiny", "9")


async def test_add_refuses_a_file_that_does_not_fit_and_stores_nothing(
    sessions: Sessions, objects: ObjectStore, tmp_path: Path
) -> None:
    file = tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(ModelSpecError, match="its spec says 640x640"):
        await register_model(
            sessions,
            objects,
            file,
            name="tiny",
            version="1",
            decoder="yolov8",
            input_size=(640, 640),
            class_map=CLASSES,
            check=check_model_file,
        )
    with pytest.raises(FileNotFoundError, match="no such model file"):
        await _add(sessions, objects, tmp_path / "absent.onnx", "1")
    assert await list_models(sessions) == []
    assert [info async for info in objects.list_prefix("models/")] == []


async def test_cache_is_verified_on_every_load_and_refetched(
    sessions: Sessions, objects: ObjectStore, tmp_path: Path
) -> None:
    model = await _add(sessions, objects, tiny_model(tmp_path / "tiny.onnx"), "1", True)
    cache = tmp_path / "cache"
    path = await fetch_model(objects, model, cache)
    assert path == cache / "tiny" / "1" / "tiny.onnx"
    good = path.read_bytes()
    assert hashlib.sha256(good).hexdigest() == model.spec.sha256

    path.write_bytes(good[:-10] + b"corrupted!")  # same size, other bytes
    assert await fetch_model(objects, model, cache) == path
    assert path.read_bytes() == good

    path.unlink()
    assert (await fetch_model(objects, model, cache)).read_bytes() == good

    # Corrupt cache and no object to fetch again: a clear error, not a corrupt model.
    path.write_bytes(b"x")
    await objects.delete(model.object_key)
    with pytest.raises(ModelNotFoundError, match=r"tiny:1 is registered but its file .* is not"):
        await fetch_model(objects, model, cache)


async def test_no_model_error_says_what_is_missing_and_how_to_add_one(
    sessions: Sessions, objects: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(NoModelError) as failure:
        await resolve_stage_model(
            sessions=sessions,
            objects=objects,
            cache_dir=tmp_path / "cache",
            models_dir=tmp_path / "no-models",
            download_url=None,
        )
    message = str(failure.value)
    assert "no registered model is the default" in message
    assert "yolox_nano.onnx" in message and "PV_MODELS_DIR" in message
    assert "polyvision models add FILE --name NAME" in message
    with pytest.raises(ModelNotRegisteredError, match="no model nosuch is registered"):
        await resolve_stage_model(
            sessions=sessions,
            objects=objects,
            cache_dir=tmp_path / "cache",
            models_dir=tmp_path / "no-models",
            ref="nosuch",
        )


@requires_model
async def test_resolve_runs_the_default_else_the_bundled_model(
    sessions: Sessions, objects: ObjectStore, tmp_path: Path
) -> None:
    async def resolve(ref: str | None = None) -> tuple[str, bool, Path]:
        model = await resolve_stage_model(
            sessions=sessions,
            objects=objects,
            cache_dir=tmp_path / "cache",
            models_dir=MODELS_DIR,
            ref=ref,
            download_url=None,
        )
        return model.spec.ref, model.registered, model.path

    assert await resolve() == (BUNDLED_SPEC.ref, False, MODELS_DIR / "yolox_nano.onnx")
    await _add(sessions, objects, tiny_model(tmp_path / "tiny.onnx"), "1")
    assert (await resolve())[:2] == (BUNDLED_SPEC.ref, False)  # registered, not the default
    assert (await resolve("tiny"))[:2] == ("tiny:1", True)  # asked for by name
    await set_default(sessions, "tiny", "1")
    ref, registered, path = await resolve()
    assert (ref, registered) == ("tiny:1", True) and path.is_relative_to(tmp_path / "cache")


async def test_a_database_without_the_registry_table_has_no_default(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, url, "0006")
    engine = create_engine(url)
    try:
        assert await default_model(session_maker(engine)) is None
    finally:
        await engine.dispose()


# --- the detect activity -----------------------------------------------------------------------


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


async def _chunk(objects: ObjectStore, tmp_path: Path) -> DetectChunkInput:
    video = tmp_path / "chunk.mp4"
    with VideoWriter(video, 160, 128, 25.0) as writer:
        for i in range(3):
            writer.write(np.full((128, 160, 3), 40 + 10 * i, np.uint8))
    info = await objects.upload_file("orgs/o1/matches/m1/1/stitch/chunk-00000.mp4", video)
    assert info.sha256 is not None
    return DetectChunkInput("o1", "m1", 1, 0, info.key, info.sha256, first_frame=0)


async def test_detect_activity_runs_the_registered_default(
    sessions: Sessions, objects: ObjectStore, analytics: AnalyticsStore, tmp_path: Path
) -> None:
    model_file = tiny_model(tmp_path / "tiny.onnx")
    model = await _add(sessions, objects, model_file, "1", True)
    chunk = await _chunk(objects, tmp_path)
    acts = DetectActivities(
        objects,
        analytics,
        tmp_path / "no-models",
        sessions=sessions,
        cache_dir=tmp_path / "c",
        tuning=EVERY_FRAME,
    )
    output = await ActivityEnvironment().run(acts.detect_chunk, chunk)
    # The constant model sees one person and one ball in every frame (one tile per frame).
    assert (output.frames, output.persons, output.balls) == (3, 3, 3)
    rows = analytics.query_numpy(
        "SELECT class_id, x1, y1, x2, y2 FROM detections WHERE match_id = 'm1' ORDER BY frame, "
        "class_id",
        {},
    )
    assert rows["class_id"].tolist() == [Detections.PERSON, Detections.SPORTS_BALL] * 3
    # Letterbox scale 64 / 160 = 0.4: the person's (32, 16, 16, 8) input box in image pixels.
    np.testing.assert_allclose(
        [rows[c][0] for c in ("x1", "y1", "x2", "y2")], [60, 30, 100, 50], rtol=1e-5
    )
    again = await ActivityEnvironment().run(acts.detect_chunk, chunk)
    assert again.from_manifest
    # The manifest is keyed on the model too: the bundled model never reuses these rows.
    tiny = OnnxDetector(model_file, model.spec, providers=["CPUExecutionProvider"])
    bundled = DetectActivities(
        objects, analytics, tmp_path / "x", detector_factory=lambda: tiny, tuning=EVERY_FRAME
    )
    assert not (await ActivityEnvironment().run(bundled.detect_chunk, chunk)).from_manifest

    # A registered default whose file is gone everywhere fails the match at once.
    await objects.delete(model.object_key)
    fresh = DetectActivities(
        objects, analytics, tmp_path / "no-models", sessions=sessions, cache_dir=tmp_path / "d"
    )
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(fresh.detect_chunk, chunk)
    assert failure.value.non_retryable and failure.value.type == "ModelNotFound"
    assert "tiny:1" in str(failure.value)
