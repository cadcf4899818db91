"""The ingest activity: fetch a match's two recordings, probe, validate and cut them into chunks.

The activity is a thin adapter: it downloads, then calls the pure functions of `probe`,
`validate` and `chunks` on a worker thread, and writes a manifest. It is idempotent: the manifest
at ``orgs/{org}/matches/{match}/{revision}/ingest/manifest.json`` records a digest of everything
the output depends on (the objects' sha256, the declared expectations, the chunk length, the code
version), and a retried or replayed attempt whose digest matches returns the stored output without
downloading the recordings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ingest.chunks import ChunkPlan, plan_chunks
from activities.ingest.probe import InvalidRecordingError, VideoProbe, probe_video, sha256_file
from activities.ingest.validate import ExpectedRecording, RecordingMismatchError, validate_pair
from polyvision.storage.objects import (
    ChecksumMismatch,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    validate_key,
)

INGEST_CODE_VERSION = "ingest-1"
"""Bumped whenever the same inputs would give a different output; part of the input digest, so
a new version recomputes instead of returning an old manifest."""

# ApplicationError types: workflows and operators match on these, never on message text.
ERROR_INVALID_RECORDING = "InvalidRecording"
ERROR_RECORDING_MISMATCH = "RecordingMismatch"
ERROR_RECORDING_NOT_FOUND = "RecordingNotFound"
ERROR_INVALID_RIG = "InvalidRig"
ERROR_INVALID_INPUT = "InvalidInput"

# The SDK throttles heartbeats to its timeout anyway; a short period just keeps the last one fresh.
_HEARTBEAT_PERIOD_S = 1.0
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

T = TypeVar("T")


@dataclass
class IngestInput:
    """Input of `IngestActivities.ingest`.

    Attributes:
        organization_id: Owner of the match (first segment of every artifact key).
        match_id: The match.
        revision: Processing revision; a reprocess gets a new one and new artifact keys.
        left_key: Object key of the left camera's recording.
        right_key: Object key of the right camera's recording.
        rig_key: Object key of the rig description (``rig.json``) the stitch stage reads.
        expected_left: What the upload session declared for the left recording, if known.
        expected_right: Same for the right one.
        chunk_seconds: Target chunk length.
    """

    organization_id: str
    match_id: str
    revision: int
    left_key: str
    right_key: str
    rig_key: str
    expected_left: ExpectedRecording | None = None
    expected_right: ExpectedRecording | None = None
    chunk_seconds: float = 10.0


@dataclass
class RecordingSummary:
    """One probed recording, small enough for a workflow payload (keyframes are only counted).

    Attributes:
        key: Object key of the recording.
        codec: FFmpeg codec name (``h264``, ``hevc``).
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps_rational: Exact frame rate, ``"num/den"``.
        frame_count: Exact number of frames.
        duration_s: Span of the frames in seconds.
        keyframe_count: Number of keyframes.
        has_audio: Whether the file has an audio stream.
        pix_fmt: FFmpeg pixel format.
        bit_depth: Bits per luma sample.
        size_bytes: File size.
        sha256: Hex sha256 of the file.
    """

    key: str
    codec: str
    width: int
    height: int
    fps_rational: str
    frame_count: int
    duration_s: float
    keyframe_count: int
    has_audio: bool
    pix_fmt: str
    bit_depth: int
    size_bytes: int
    sha256: str


@dataclass
class IngestOutput:
    """Output of `IngestActivities.ingest`.

    Attributes:
        left: Summary of the left recording.
        right: Summary of the right recording.
        frame_count: Frames per recording (the same on both sides).
        fps: Frame rate as a float, for display and arithmetic.
        fps_rational: Exact frame rate, ``"num/den"``.
        width: Frame width of both recordings.
        height: Frame height of both recordings.
        chunks: The chunks the per-chunk stages fan out over (about 110 KB of payload for a
            120-minute match in 10 s chunks, below Temporal's 256 KB warning).
        manifest_key: Where the manifest of this output is stored.
        left_sha256: Hex sha256 of the left recording.
        right_sha256: Hex sha256 of the right recording.
        rig_sha256: Hex sha256 of the rig file.
    """

    left: RecordingSummary
    right: RecordingSummary
    frame_count: int
    fps: float
    fps_rational: str
    width: int
    height: int
    chunks: list[ChunkPlan] = field(default_factory=list)
    manifest_key: str = ""
    left_sha256: str = ""
    right_sha256: str = ""
    rig_sha256: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestOutput:
        """Rebuild an output from its `dataclasses.asdict` form (as stored in the manifest)."""
        values = dict(data)
        values["left"] = RecordingSummary(**values["left"])
        values["right"] = RecordingSummary(**values["right"])
        values["chunks"] = [ChunkPlan(**chunk) for chunk in values["chunks"]]
        return cls(**values)


def manifest_key(organization_id: str, match_id: str, revision: int) -> str:
    """The deterministic key of a match revision's ingest manifest."""
    return f"orgs/{organization_id}/matches/{match_id}/{revision}/ingest/manifest.json"


def input_digest(input: IngestInput, left_sha256: str, right_sha256: str, rig_sha256: str) -> str:
    """Digest of everything the ingest output depends on.

    The keys are included with the content digests: a later stage reads the recordings by key.
    """
    canonical = {
        "code_version": INGEST_CODE_VERSION,
        "left": {"key": input.left_key, "sha256": left_sha256},
        "right": {"key": input.right_key, "sha256": right_sha256},
        "rig": {"key": input.rig_key, "sha256": rig_sha256},
        "expected_left": _expected_dict(input.expected_left),
        "expected_right": _expected_dict(input.expected_right),
        "chunk_seconds": input.chunk_seconds,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


class IngestActivities:
    """The ingest stage, bound to an object store and a local scratch directory."""

    def __init__(self, objects: ObjectStore, scratch_dir: Path) -> None:
        """Bind the activity to its clients.

        Args:
            objects: Where recordings are read and the manifest is written.
            scratch_dir: Local directory for the downloaded recordings (each attempt uses its own
                subdirectory and removes it when done); needs room for both recordings.
        """
        self._objects = objects
        self._scratch_dir = Path(scratch_dir)

    @activity.defn(name="ingest")
    async def ingest(self, input: IngestInput) -> IngestOutput:
        """Probe and validate a match's recordings and plan its chunks; idempotent.

        Asynchronous because the object store is; the CPU-bound probing runs on worker threads
        while the event loop keeps heartbeating.

        Args:
            input: The match and its recordings' keys.

        Returns:
            The pair's summary and chunk plan (also stored in the manifest).

        Raises:
            ApplicationError: non-retryable, of type ``InvalidRecording`` (not a video, empty,
                truncated, corrupt), ``RecordingMismatch`` (the pair differs, or a recording
                differs from its upload), ``RecordingNotFound``, ``InvalidRig`` or
                ``InvalidInput`` (a key or id unusable in an object key).
        """
        try:
            key = validate_key(manifest_key(input.organization_id, input.match_id, input.revision))
            async with _heartbeating("inputs") as phase:
                return await self._ingest(input, key, phase)
        except InvalidRecordingError as exc:
            raise ApplicationError(
                str(exc), type=ERROR_INVALID_RECORDING, non_retryable=True
            ) from exc
        except RecordingMismatchError as exc:
            raise ApplicationError(
                str(exc), type=ERROR_RECORDING_MISMATCH, non_retryable=True
            ) from exc
        except ObjectNotFound as exc:
            raise ApplicationError(
                f"recording or rig missing: {exc}",
                type=ERROR_RECORDING_NOT_FOUND,
                non_retryable=True,
            ) from exc
        except InvalidObjectKey as exc:
            raise ApplicationError(str(exc), type=ERROR_INVALID_INPUT, non_retryable=True) from exc

    async def _ingest(self, input: IngestInput, key: str, phase: _Phase) -> IngestOutput:
        rig_sha256 = await self._rig_digest(input.rig_key)
        left_info, right_info = await _both(
            self._objects.stat(input.left_key), self._objects.stat(input.right_key)
        )
        if left_info.sha256 and right_info.sha256:
            # The store knows both digests: a retry can return before downloading gigabytes.
            digest = input_digest(input, left_info.sha256, right_info.sha256, rig_sha256)
            if (stored := await self._stored_output(key, digest)) is not None:
                return stored

        workdir = self._scratch_dir / f"ingest-{uuid.uuid4().hex}"
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        try:
            phase.set("download")
            left_path = workdir / f"left{_suffix(input.left_key)}"
            right_path = workdir / f"right{_suffix(input.right_key)}"
            left_read, right_read = await _both(
                self._download("left", input.left_key, left_path),
                self._download("right", input.right_key, right_path),
            )
            # The digests of what was actually read (the object may have been replaced since
            # `stat`): download_file verified them against the store's record where it had one.
            left_sha256 = await _content_sha256(left_read, left_path)
            right_sha256 = await _content_sha256(right_read, right_path)
            digest = input_digest(input, left_sha256, right_sha256, rig_sha256)
            hashed_here = not (left_read.sha256 and right_read.sha256)
            if hashed_here and (stored := await self._stored_output(key, digest)) is not None:
                return stored

            phase.set("probe")
            left, right = await _probe_pair(left_path, right_path, input.left_key, input.right_key)
            left = dataclasses.replace(left, sha256=left_sha256)
            right = dataclasses.replace(right, sha256=right_sha256)
            validate_pair(left, right, input.expected_left, input.expected_right)
            chunks = plan_chunks(
                left.frame_count,
                left.fps,
                left.keyframes,
                right.keyframes,
                target_seconds=input.chunk_seconds,
            )
            output = IngestOutput(
                left=_summary(input.left_key, left, left_sha256),
                right=_summary(input.right_key, right, right_sha256),
                frame_count=left.frame_count,
                fps=float(left.fps),
                fps_rational=left.fps_rational,
                width=left.width,
                height=left.height,
                chunks=chunks,
                manifest_key=key,
                left_sha256=left_sha256,
                right_sha256=right_sha256,
                rig_sha256=rig_sha256,
            )
            phase.set("manifest")
            await self._write_manifest(key, digest, input, output, left, right)
            return output
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)

    async def _rig_digest(self, rig_key: str) -> str:
        """Read the (small) rig file, check it is a JSON object, and return its sha256."""
        data = await self._objects.get(rig_key)
        try:
            rig = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApplicationError(
                f"rig {rig_key!r} is not valid JSON: {exc}",
                type=ERROR_INVALID_RIG,
                non_retryable=True,
            ) from exc
        if not isinstance(rig, dict):
            raise ApplicationError(
                f"rig {rig_key!r} must be a JSON object, not {type(rig).__name__}",
                type=ERROR_INVALID_RIG,
                non_retryable=True,
            )
        return hashlib.sha256(data).hexdigest()

    async def _download(self, side: str, key: str, path: Path) -> ObjectInfo:
        """Stream one recording to `path`; a content/digest disagreement is a bad upload."""
        try:
            return await self._objects.download_file(key, path)
        except ChecksumMismatch as exc:
            raise RecordingMismatchError(
                [f"checksum of {side} does not match the upload ({exc})"]
            ) from exc

    async def _stored_output(self, key: str, digest: str) -> IngestOutput | None:
        """The output stored at `key` if its manifest was made from the same inputs."""
        try:
            manifest = json.loads(await self._objects.get(key))
            if manifest.get("input_digest") != digest:
                return None
            return IngestOutput.from_dict(manifest["output"])
        except ObjectNotFound:
            return None
        except (ValueError, KeyError, TypeError, AttributeError):
            # Unreadable or from an incompatible layout: recompute and overwrite it.
            activity.logger.warning("ignoring unreadable ingest manifest %s", key)
            return None

    async def _write_manifest(
        self,
        key: str,
        digest: str,
        input: IngestInput,
        output: IngestOutput,
        left: VideoProbe,
        right: VideoProbe,
    ) -> None:
        """Write the manifest: last, so its presence means the stage finished."""
        manifest = {
            "stage": "ingest",
            "code_version": INGEST_CODE_VERSION,
            "input_digest": digest,
            "inputs": {
                "left": {"key": input.left_key, "sha256": output.left_sha256},
                "right": {"key": input.right_key, "sha256": output.right_sha256},
                "rig": {"key": input.rig_key, "sha256": output.rig_sha256},
                "expected_left": _expected_dict(input.expected_left),
                "expected_right": _expected_dict(input.expected_right),
                "chunk_seconds": input.chunk_seconds,
            },
            "output": dataclasses.asdict(output),
            # Kept here rather than in the payload: operators debugging a chunk plan want them,
            # workflows do not.
            "keyframes": {"left": left.keyframes, "right": right.keyframes},
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        await self._objects.put(key, body, content_type="application/json")


class _Phase:
    """The current phase, reported in heartbeat details."""

    def __init__(self, name: str) -> None:
        self.name = name

    def set(self, name: str) -> None:
        self.name = name
        _heartbeat(name)


def _heartbeat(detail: str) -> None:
    # Outside an activity (pure tests, scripts) there is no one to heartbeat to.
    if activity.in_activity():
        activity.heartbeat(detail)


@asynccontextmanager
async def _heartbeating(first: str) -> AsyncIterator[_Phase]:
    """Heartbeat the current phase periodically while the body runs (downloads, probe threads)."""
    phase = _Phase(first)
    _heartbeat(first)

    async def beat() -> None:
        while True:
            await asyncio.sleep(_HEARTBEAT_PERIOD_S)
            _heartbeat(phase.name)

    task = asyncio.create_task(beat())
    try:
        yield phase
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _both(left: Awaitable[T], right: Awaitable[T]) -> tuple[T, T]:
    """Run the left and right halves of a step together; raise the left one's error first.

    Unlike a plain `asyncio.gather`, both halves have finished when an error is raised, so the
    scratch directory is never removed under a download that is still writing.
    """
    results = await asyncio.gather(left, right, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(T, results[0]), cast(T, results[1])


async def _probe_pair(
    left: Path, right: Path, left_key: str, right_key: str
) -> tuple[VideoProbe, VideoProbe]:
    """Probe both files on worker threads (FFmpeg releases the GIL while it decodes).

    Errors name the object keys, not the scratch files.
    """
    return await _both(
        asyncio.to_thread(probe_video, left, label=left_key),
        asyncio.to_thread(probe_video, right, label=right_key),
    )


async def _content_sha256(info: ObjectInfo, path: Path) -> str:
    """The recording's sha256: the store's, which `download_file` verified, else hashed here."""
    if info.sha256 is not None:
        return info.sha256
    return await asyncio.to_thread(sha256_file, path)


def _summary(key: str, probe: VideoProbe, sha256: str) -> RecordingSummary:
    return RecordingSummary(
        key=key,
        codec=probe.codec,
        width=probe.width,
        height=probe.height,
        fps_rational=probe.fps_rational,
        frame_count=probe.frame_count,
        duration_s=probe.duration_s,
        keyframe_count=len(probe.keyframes),
        has_audio=probe.has_audio,
        pix_fmt=probe.pix_fmt,
        bit_depth=probe.bit_depth,
        size_bytes=probe.size_bytes,
        sha256=sha256,
    )


def _expected_dict(expected: ExpectedRecording | None) -> dict[str, Any] | None:
    return None if expected is None else dataclasses.asdict(expected)


def _suffix(key: str) -> str:
    """The key's extension when it looks like one (a hint to FFmpeg's probing), else none."""
    suffix = PurePosixPath(key).suffix
    return suffix if _SUFFIX.fullmatch(suffix) else ""
