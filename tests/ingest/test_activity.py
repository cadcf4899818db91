"""The ingest activity through Temporal's ActivityEnvironment, on a file-backed object store."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ingest import activity as ingest_activity
from activities.ingest import pair as ingest_pair
from activities.ingest.activity import (
    LOCAL_PATH_PLACEHOLDER,
    IngestActivities,
    public_message,
)
from activities.ingest.chunks import plan_chunks
from activities.ingest.contracts import (
    ExpectedRecording,
    IngestInput,
    IngestOutput,
    RecordingSummary,
)
from activities.ingest.probe import VideoProbe, probe_video, sha256_file
from polyvision.stage import output_from_json
from polyvision.storage.objects import (
    DEFAULT_CHUNK_SIZE,
    FileObjectStore,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    open_object_store,
)
from processing.client import failure_text

ORG, MATCH, REVISION = "org-1", "match-7", 1
LEFT_KEY = "orgs/org-1/uploads/u1/left.mp4"
RIGHT_KEY = "orgs/org-1/uploads/u1/right.mp4"
RIG_KEY = "orgs/org-1/uploads/u1/rig.json"
MANIFEST_KEY = "orgs/org-1/matches/match-7/1/ingest/manifest.json"


class UnhashedFileStore(FileObjectStore):
    """A file store that, like S3 after an undeclared multipart upload, knows no sha256."""

    async def stat(self, key: str) -> ObjectInfo:
        return dataclasses.replace(await super().stat(key), sha256=None)

    async def open_read(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ObjectReader:
        reader = await super().open_read(key, chunk_size=chunk_size)
        reader.info = dataclasses.replace(reader.info, sha256=None)
        return reader


@pytest.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"x" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the probes the activity runs (`pair` looks `probe_video` up at call time)."""
    calls: list[Path] = []

    def counting(path: Path, **kwargs: Any) -> VideoProbe:
        calls.append(Path(path))
        return probe_video(path, **kwargs)

    monkeypatch.setattr(ingest_pair, "probe_video", counting)
    return calls


async def _upload(store: ObjectStore, left: Path, right: Path, rig: Path) -> None:
    await store.upload_file(LEFT_KEY, left)
    await store.upload_file(RIGHT_KEY, right)
    await store.upload_file(RIG_KEY, rig)


def _input(**changes: Any) -> IngestInput:
    base = IngestInput(
        organization_id=ORG,
        match_id=MATCH,
        revision=REVISION,
        left_key=LEFT_KEY,
        right_key=RIGHT_KEY,
        rig_key=RIG_KEY,
        chunk_seconds=1.0,
    )
    return dataclasses.replace(base, **changes)


async def _run(
    activities: IngestActivities,
    input: IngestInput,
    on_heartbeat: Callable[..., None] | None = None,
) -> IngestOutput:
    env = ActivityEnvironment()
    if on_heartbeat is not None:
        env.on_heartbeat = on_heartbeat
    result: IngestOutput = await env.run(activities.ingest, input)
    return result


async def _failure(activities: IngestActivities, input: IngestInput) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, input)
    assert caught.value.non_retryable
    return caught.value


async def test_ingest_probes_plans_and_writes_the_manifest(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path, probe_calls: list[Path]
) -> None:
    await _upload(objects, synth_2s / "left.mp4", synth_2s / "right.mp4", synth_2s / "rig.json")
    scratch = tmp_path / "scratch"
    activities = IngestActivities(objects, scratch)
    heartbeats: list[Any] = []
    expected = ExpectedRecording(sha256=sha256_file(synth_2s / "left.mp4"), frame_count=50)

    output = await _run(
        activities, _input(expected_left=expected), lambda *details: heartbeats.append(details)
    )

    assert (output.frame_count, output.fps, output.fps_rational) == (50, 25.0, "25/1")
    assert (output.width, output.height) == (320, 180)
    assert output.left_sha256 == sha256_file(synth_2s / "left.mp4")
    assert output.right_sha256 == sha256_file(synth_2s / "right.mp4")
    assert output.rig_sha256 == sha256_file(synth_2s / "rig.json")
    assert output.left.key == LEFT_KEY and output.right.key == RIGHT_KEY
    assert (output.left.codec, output.left.keyframe_count, output.left.has_audio) == (
        "h264",
        2,
        False,
    )
    assert [(c.start_frame, c.end_frame) for c in output.chunks] == [(0, 25), (25, 50)]
    assert [(c.decode_from_left, c.decode_from_right) for c in output.chunks] == [(0, 0), (25, 25)]
    assert output.manifest_key == MANIFEST_KEY
    assert len(probe_calls) == 2
    assert ({"phase": "probe"},) in heartbeats and ({"phase": "manifest"},) in heartbeats
    assert list(scratch.iterdir()) == []  # downloads cleaned up

    manifest = json.loads(await objects.get(output.manifest_key))
    assert manifest["stage"] == "ingest"
    assert manifest["code_version"] == ingest_activity.INGEST_CODE_VERSION
    details = manifest["outputs"]["details"]
    assert details["inputs"]["left"] == {"key": LEFT_KEY, "sha256": output.left_sha256}
    assert details["inputs"]["expected_left"]["frame_count"] == 50
    assert details["keyframes"] == {"left": [0, 25], "right": [0, 25]}
    assert output_from_json(IngestOutput, manifest["outputs"]["output"]) == output


async def test_a_retry_returns_the_stored_output_without_probing(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path, probe_calls: list[Path]
) -> None:
    await _upload(objects, synth_2s / "left.mp4", synth_2s / "right.mp4", synth_2s / "rig.json")
    activities = IngestActivities(objects, tmp_path / "scratch")
    first = await _run(activities, _input())
    assert len(probe_calls) == 2
    manifest_before = await objects.stat(first.manifest_key)

    second = await _run(activities, _input())
    assert second == first
    assert len(probe_calls) == 2, "answered from the manifest"
    assert (await objects.stat(first.manifest_key)).sha256 == manifest_before.sha256

    # Different inputs (here the chunk length) do not match the manifest: recomputed.
    third = await _run(activities, _input(chunk_seconds=10.0))
    assert len(probe_calls) == 4
    assert [(c.start_frame, c.end_frame) for c in third.chunks] == [(0, 50)]


async def test_a_retry_is_idempotent_when_the_store_knows_no_digest(
    synth_2s: Path, tmp_path: Path, probe_calls: list[Path]
) -> None:
    async with UnhashedFileStore(
        tmp_path / "objects", secret=b"x" * 32, public_base_url="http://t"
    ) as store:
        await _upload(store, synth_2s / "left.mp4", synth_2s / "right.mp4", synth_2s / "rig.json")
        activities = IngestActivities(store, tmp_path / "scratch")
        first = await _run(activities, _input())
        # The activity hashed the downloads itself.
        assert first.left_sha256 == sha256_file(synth_2s / "left.mp4")
        second = await _run(activities, _input())
        assert second == first
        assert len(probe_calls) == 2


async def test_pair_of_different_lengths_is_a_non_retryable_mismatch(
    objects: ObjectStore, synth_2s: Path, synth_1s: Path, tmp_path: Path
) -> None:
    await _upload(objects, synth_2s / "left.mp4", synth_1s / "right.mp4", synth_2s / "rig.json")
    scratch = tmp_path / "scratch"
    error = await _failure(IngestActivities(objects, scratch), _input())
    assert error.type == "RecordingMismatch"
    assert error.message == "frame counts differ: left 50, right 25"
    assert list(scratch.iterdir()) == []
    assert not await objects.exists(MANIFEST_KEY)


async def test_checksum_mismatch_with_the_upload(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path
) -> None:
    await _upload(objects, synth_2s / "left.mp4", synth_2s / "right.mp4", synth_2s / "rig.json")
    error = await _failure(
        IngestActivities(objects, tmp_path / "scratch"),
        _input(expected_left=ExpectedRecording(sha256="ab" * 32)),
    )
    assert error.type == "RecordingMismatch"
    assert error.message.startswith(
        f"checksum of left does not match the upload (expected sha256 {'ab' * 32}, got "
    )


async def test_non_video_is_a_non_retryable_invalid_recording(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    await _upload(objects, synth_2s / "left.mp4", text, synth_2s / "rig.json")
    error = await _failure(IngestActivities(objects, tmp_path / "scratch"), _input())
    assert error.type == "InvalidRecording"
    assert error.message.startswith(f"{RIGHT_KEY}: not a readable video container")


async def test_missing_recording_and_bad_rig(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path
) -> None:
    activities = IngestActivities(objects, tmp_path / "scratch")
    await objects.put(RIG_KEY, b"{}")
    error = await _failure(activities, _input())
    assert error.type == "RecordingNotFound"
    assert LEFT_KEY in error.message

    await objects.put(RIG_KEY, b"[1, 2]")
    error = await _failure(activities, _input())
    assert error.type == "InvalidRig"

    error = await _failure(activities, _input(match_id="../escape"))
    assert error.type == "InvalidInput"


def _failure_text(error: ApplicationError) -> str:
    """The failure as the API's processing status shows it (every cause's message)."""
    failure = Failure()
    converter = DataConverter.default
    converter.failure_converter.to_failure(error, converter.payload_converter, failure)
    return failure_text(failure)


async def test_failures_carry_no_local_path(
    objects: ObjectStore, synth_2s: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe found the worker's scratch path in a failed run's reason: PyAV's error, the
    # cause of ours, ends with the file it opened.
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    await _upload(objects, synth_2s / "left.mp4", text, synth_2s / "rig.json")
    activities = IngestActivities(objects, tmp_path / "scratch")
    invalid = await _failure(activities, _input())
    assert invalid.type == "InvalidRecording" and invalid.__cause__ is None
    # A missing object: the file store's error names the object's file.
    missing = await _failure(activities, _input(left_key="orgs/org-1/uploads/u1/gone.mp4"))
    assert missing.type == "RecordingNotFound"

    # Anything unexpected stays retryable, under its class's name, without its path either.
    async def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device", str(tmp_path / "scratch" / "left.mp4"))

    monkeypatch.setattr(ingest_activity, "download_pair", full_disk)
    with pytest.raises(ApplicationError) as caught:
        await _run(activities, _input())
    unexpected = caught.value
    assert unexpected.type == "OSError" and not unexpected.non_retryable
    assert "No space left on device" in unexpected.message

    for error in (invalid, missing, unexpected):
        reason = _failure_text(error)
        assert str(tmp_path) not in reason and "/tmp" not in reason, reason
    assert _failure_text(invalid).startswith(f"{RIGHT_KEY}: not a readable video container")
    assert "orgs/org-1/uploads/u1/gone.mp4" in _failure_text(missing)


def test_public_message_drops_local_paths_and_keeps_keys() -> None:
    assert public_message("open '/var/lib/pv/ingest-1/left.mp4' failed") == (
        f"open '{LOCAL_PATH_PLACEHOLDER}' failed"
    )
    kept = "orgs/o/uploads/u/left.mp4: 25/1 fps, see https://docs.example/x"
    assert public_message(kept) == kept


def test_input_and_output_survive_temporal_payload_conversion_within_limits() -> None:
    converter = DataConverter.default.payload_converter
    input = _input(expected_left=ExpectedRecording(size_bytes=1, sha256="0" * 64, frame_count=2))
    [payload] = converter.to_payloads([input])
    assert converter.from_payloads([payload], [IngestInput]) == [input]

    # A 120-minute match at 25 fps in 10 s chunks: the biggest output the workflow will carry.
    frames = 120 * 60 * 25
    summary = RecordingSummary(
        LEFT_KEY, "hevc", 3840, 2160, "25/1", frames, 7200.0, 7200, True, "yuv420p", 8, 1, "0" * 64
    )
    output = IngestOutput(
        left=summary,
        right=dataclasses.replace(summary, key=RIGHT_KEY),
        frame_count=frames,
        fps=25.0,
        fps_rational="25/1",
        width=3840,
        height=2160,
        chunks=plan_chunks(frames, 25, [0], [0], 10.0),
        manifest_key=MANIFEST_KEY,
        left_sha256="0" * 64,
        right_sha256="0" * 64,
        rig_sha256="0" * 64,
    )
    [payload] = converter.to_payloads([output])
    assert converter.from_payloads([payload], [IngestOutput]) == [output]
    assert len(output.chunks) == 720
    assert payload.ByteSize() < 256 * 1024, "below Temporal's payload warning"
