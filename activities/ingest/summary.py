"""What ingest answers for a probed pair, and what that answer depends on.

Pure: no Temporal, no object store, no FFmpeg (the probes are made elsewhere). `ingest_inputs`
is everything the output depends on (its digest decides whether a recorded manifest answers a
retry); `ingest_output` validates the pair, cuts it into chunks and summarises it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from activities.ingest.chunks import plan_chunks
from activities.ingest.contracts import (
    ExpectedRecording,
    IngestInput,
    IngestOutput,
    RecordingSummary,
)
from activities.ingest.validate import validate_pair

if TYPE_CHECKING:
    # Only for annotations: this module stays free of PyAV.
    from activities.ingest.probe import VideoProbe
    from activities.ingest.sync import SyncCheck


def ingest_inputs(
    input: IngestInput, left_sha256: str, right_sha256: str, rig_sha256: str
) -> dict[str, Any]:
    """Everything the ingest output depends on, as JSON-able values.

    The keys are included with the content digests: a later stage reads the recordings by key.
    """
    return {
        "left": {"key": input.left_key, "sha256": left_sha256},
        "right": {"key": input.right_key, "sha256": right_sha256},
        "rig": {"key": input.rig_key, "sha256": rig_sha256},
        "expected_left": _expected_dict(input.expected_left),
        "expected_right": _expected_dict(input.expected_right),
        "chunk_seconds": input.chunk_seconds,
    }


def ingest_output(
    input: IngestInput,
    left: VideoProbe,
    right: VideoProbe,
    *,
    rig_sha256: str,
    manifest_key: str,
) -> IngestOutput:
    """Validate a probed pair, cut it into chunks and summarise it.

    Args:
        input: The activity's input (keys, declared expectations, chunk length).
        left: Probe of the left recording, carrying its sha256.
        right: Same for the right one.
        rig_sha256: Hex sha256 of the rig file.
        manifest_key: Where the output's manifest is stored.

    Raises:
        RecordingMismatchError: the pair differs, or a recording differs from its upload.
        ValueError: a probe without its sha256.
    """
    left_sha256, right_sha256 = _sha256(left, "left"), _sha256(right, "right")
    validate_pair(left, right, input.expected_left, input.expected_right)
    chunks = plan_chunks(
        left.frame_count,
        left.fps,
        left.keyframes,
        right.keyframes,
        target_seconds=input.chunk_seconds,
    )
    return IngestOutput(
        left=recording_summary(input.left_key, left, left_sha256),
        right=recording_summary(input.right_key, right, right_sha256),
        frame_count=left.frame_count,
        fps=float(left.fps),
        fps_rational=left.fps_rational,
        width=left.width,
        height=left.height,
        chunks=chunks,
        manifest_key=manifest_key,
        left_sha256=left_sha256,
        right_sha256=right_sha256,
        rig_sha256=rig_sha256,
    )


def with_sync(output: IngestOutput, sync: SyncCheck) -> IngestOutput:
    """The output with the pair's synchronisation check (`activities.ingest.sync.check_sync`):
    the frame offset stitching applies, the correlation and the warning."""
    return dataclasses.replace(
        output,
        frame_offset=sync.frame_offset,
        sync_correlation=sync.correlation,
        sync_warning=sync.warning,
    )


def sync_details(sync: SyncCheck) -> dict[str, Any]:
    """The synchronisation check as the manifest keeps it, for operators: the estimate's figures
    (None when none could be made), the offset applied and the warning."""
    estimate = sync.estimate
    return {
        "estimate": None if estimate is None else dataclasses.asdict(estimate),
        "frame_offset": sync.frame_offset,
        "warning": sync.warning,
    }


def recording_summary(key: str, probe: VideoProbe, sha256: str) -> RecordingSummary:
    """The payload-sized summary of one probed recording (keyframes only counted)."""
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


def keyframes(left: VideoProbe, right: VideoProbe) -> dict[str, list[int]]:
    """Both files' keyframes: kept in the manifest for operators debugging a chunk plan (the
    workflow payload only counts them)."""
    return {"left": list(left.keyframes), "right": list(right.keyframes)}


def _sha256(probe: VideoProbe, side: str) -> str:
    if probe.sha256 is None:
        raise ValueError(f"the probe of {side} carries no sha256")
    return probe.sha256


def _expected_dict(expected: ExpectedRecording | None) -> dict[str, Any] | None:
    return None if expected is None else dataclasses.asdict(expected)
