"""The ingest activity: fetch a match's two recordings, probe, validate and cut them into chunks.

The activity is a thin adapter: it downloads and probes the pair (`pair`), calls the pure
functions of `summary` (validation and chunk plan inside), estimates how many frames apart the
recordings are (`sync`), and records its output with the stage skeleton
(`polyvision.stage.StageStep`). It is idempotent: the manifest at
``orgs/{org}/matches/{match}/{revision}/ingest/manifest.json`` records a digest of everything
the output depends on (the objects' sha256, the declared expectations, the chunk length) and the
code version, and a retried or replayed attempt whose digest matches returns the stored output
without downloading the recordings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, TemporalError

from activities.ingest.contracts import IngestInput, IngestOutput
from activities.ingest.pair import both, download_pair, probe_pair
from activities.ingest.probe import InvalidRecordingError
from activities.ingest.summary import (
    ingest_inputs,
    ingest_output,
    keyframes,
    sync_details,
    with_sync,
)
from activities.ingest.sync import SyncCheck, check_sync
from activities.ingest.validate import RecordingMismatchError
from polyvision.artifacts import artifact_key
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.stage import MANIFEST_NAME, StageStep
from polyvision.storage.objects import InvalidObjectKey, ObjectNotFound, ObjectStore, validate_key
from polyvision.temporal import names

INGEST_CODE_VERSION = "ingest-3"
"""Bumped whenever the same inputs would give a different output: a manifest of another version
does not answer, so a new version recomputes.

ingest-2: the manifest has the stage skeleton's layout (`polyvision.stage`).
ingest-3: the output carries the pair's frame offset and synchronisation warning (`sync`)."""

STAGE = "ingest"

log = structlog.get_logger(__name__)

# The SDK throttles heartbeats to its timeout anyway; a short period just keeps the last one fresh
# (the crash-resume test runs with a 5 s heartbeat timeout).
HEARTBEAT_PERIOD_S = 1.0

# ApplicationError types: workflows and operators match on these, never on message text.
ERROR_INVALID_RECORDING = "InvalidRecording"
ERROR_RECORDING_MISMATCH = "RecordingMismatch"
ERROR_RECORDING_NOT_FOUND = "RecordingNotFound"
ERROR_INVALID_RIG = "InvalidRig"
ERROR_INVALID_INPUT = "InvalidInput"


# A POSIX path that is not part of a word, a URL or an object key: `/tmp/x/left.mp4`.
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"]+")
LOCAL_PATH_PLACEHOLDER = "<local file>"


def public_message(message: str) -> str:
    """``message`` without the local paths in it (object keys never start with ``/``)."""
    return _LOCAL_PATH.sub(LOCAL_PATH_PLACEHOLDER, message)


def _failure_of(exc: Exception) -> tuple[str, bool, str]:
    """The failure type, whether it is final, and the message for an error of the stage."""
    if isinstance(exc, InvalidRecordingError):
        return ERROR_INVALID_RECORDING, True, str(exc)
    if isinstance(exc, RecordingMismatchError):
        return ERROR_RECORDING_MISMATCH, True, str(exc)
    if isinstance(exc, ObjectNotFound):
        return ERROR_RECORDING_NOT_FOUND, True, f"recording or rig missing: {exc}"
    if isinstance(exc, InvalidObjectKey):
        return ERROR_INVALID_INPUT, True, str(exc)
    # Anything else (a store or disk hiccup) is retried, as Temporal would have by itself.
    return type(exc).__name__, False, str(exc)


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

    @activity.defn(name=names.INGEST)
    async def ingest(self, input: IngestInput) -> IngestOutput:
        """Probe and validate a match's recordings and plan its chunks; idempotent.

        The CPU-bound probing and synchronisation estimate (`sync`: the first 20 s of both
        recordings decoded small; its warning is also logged) run on worker threads while the
        event loop keeps heartbeating the current phase (``{"phase": ...}``). Failures are
        non-retryable ApplicationErrors of type ``InvalidRecording`` (not a video, empty,
        truncated, corrupt), ``RecordingMismatch`` (the pair differs, or a recording differs
        from its upload), ``RecordingNotFound``, ``InvalidRig`` or ``InvalidInput`` (a key or id
        unusable in an object key). A pair out of sync is no failure: the output says so.
        """
        progress: dict[str, Any] = {}
        self._phase(progress, "inputs")
        async with self._application_errors(), heartbeating(progress, HEARTBEAT_PERIOD_S):
            validate_key(self._manifest_key(input))
            rig_json, rig_sha256 = await self._rig(input.rig_key)
            if (done := await self._recorded_before_download(input, rig_sha256)) is not None:
                return done
            async with self._workdir() as workdir:
                self._phase(progress, "download")
                left, right = await download_pair(
                    self._objects, input.left_key, input.right_key, workdir
                )
                step = self._step(input, left.sha256, right.sha256, rig_sha256)
                # A digest the store did not know is checked against the manifest only now.
                hashed_here = left.hashed_here or right.hashed_here
                if hashed_here and (done := await step.recorded()) is not None:
                    return done
                self._phase(progress, "probe")
                left_probe, right_probe = await probe_pair(left, right)
                output = ingest_output(
                    input,
                    left_probe,
                    right_probe,
                    rig_sha256=rig_sha256,
                    manifest_key=step.manifest_key,
                )
                self._phase(progress, "sync")
                sync = await asyncio.to_thread(check_sync, left.path, right.path, rig_json)
                output = with_sync(output, sync)
                self._log_sync(input, sync)
                self._phase(progress, "manifest")
                kept = {
                    "inputs": step.inputs,
                    "keyframes": keyframes(left_probe, right_probe),
                    "sync": sync_details(sync),
                }
                return await step.record(output, kept)

    async def _recorded_before_download(
        self, input: IngestInput, rig_sha256: str
    ) -> IngestOutput | None:
        """The recorded output, when the store knows both recordings' digests and it matches.

        A retry then returns before downloading gigabytes.
        """
        left_info, right_info = await both(
            self._objects.stat(input.left_key), self._objects.stat(input.right_key)
        )
        if not (left_info.sha256 and right_info.sha256):
            return None
        return await self._step(input, left_info.sha256, right_info.sha256, rig_sha256).recorded()

    def _step(
        self, input: IngestInput, left_sha256: str, right_sha256: str, rig_sha256: str
    ) -> StageStep[IngestOutput]:
        """The stage step of a match revision, for the given content digests."""
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=ingest_inputs(input, left_sha256, right_sha256, rig_sha256),
            code_version=INGEST_CODE_VERSION,
            output_type=IngestOutput,
        )

    @staticmethod
    def _manifest_key(input: IngestInput) -> str:
        """Where `_step` keeps the manifest of the match revision (checked first: an id unusable
        in an object key is bad input, whatever else is wrong)."""
        return artifact_key(
            input.organization_id, input.match_id, input.revision, STAGE, MANIFEST_NAME
        )

    @staticmethod
    def _log_sync(input: IngestInput, sync: SyncCheck) -> None:
        """A warning in the worker's log when the pair is out of sync or could not be checked."""
        if sync.warning is None:
            return
        estimate = sync.estimate
        log.warning(
            "recordings out of sync" if sync.frame_offset else "recordings' sync not checked",
            match_id=input.match_id,
            revision=input.revision,
            frame_offset=sync.frame_offset,
            estimated_offset=None if estimate is None else estimate.offset_frames,
            correlation=sync.correlation,
            confidence=None if estimate is None else estimate.confidence,
            detail=sync.warning,
        )

    @staticmethod
    def _phase(progress: dict[str, Any], name: str) -> None:
        """Enter a phase: heartbeat it now; `heartbeating` repeats it while the phase runs."""
        progress["phase"] = name
        heartbeat(dict(progress))

    @contextlib.asynccontextmanager
    async def _workdir(self) -> AsyncIterator[Path]:
        """A fresh scratch subdirectory for one attempt, removed when it is done."""
        workdir = self._scratch_dir / f"ingest-{uuid.uuid4().hex}"
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        try:
            yield workdir
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)

    @staticmethod
    @contextlib.asynccontextmanager
    async def _application_errors() -> AsyncIterator[None]:
        """Turn the stage's bad-input errors into non-retryable, typed ApplicationErrors, and
        any other error into a retryable one of its class's name; none carries a local path.

        The failure a run records is what its API status shows (`failure`, with every cause's
        message), and the causes of these errors name the worker's files (PyAV's errors end
        with the scratch copy's path, the file store's with the object's). So the failure
        keeps only our own message, cleaned of paths, and no cause; the worker's log keeps
        the whole error.
        """
        try:
            yield
        except TemporalError:
            raise  # already a failure of ours (or Temporal's own cancellation)
        except Exception as exc:
            error_type, non_retryable, message = _failure_of(exc)
            if non_retryable:  # bad input: the cause (FFmpeg's words, say) is enough
                cause = None if exc.__cause__ is None else str(exc.__cause__)
                log.warning("ingest refused its input", error_type=error_type, cause=cause)
            else:
                log.warning("ingest failed", error_type=error_type, exc_info=exc)
            raise ApplicationError(
                public_message(message), type=error_type, non_retryable=non_retryable
            ) from None

    async def _rig(self, rig_key: str) -> tuple[bytes, str]:
        """Read the (small) rig file, check it is a JSON object; its bytes and their sha256."""
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
        return data, hashlib.sha256(data).hexdigest()
