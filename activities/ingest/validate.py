"""Checking that two probed recordings form a usable pair and match what was uploaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from activities.ingest.contracts import ExpectedRecording

if TYPE_CHECKING:
    # Only for annotations: keeps this module free of PyAV (like the contracts it checks
    # against), so light code can import it without loading FFmpeg.
    from activities.ingest.probe import VideoProbe

# What the pipeline's decoders (PyAV/FFmpeg on CPU, NVDEC on GPU workers) and the edge boxes'
# encoders (Jetson: H.264 and H.265) have in common.
SUPPORTED_CODECS = frozenset({"h264", "hevc"})


class RecordingMismatchError(ValueError):
    """The two recordings do not form a usable pair, or differ from what the upload declared.

    Attributes:
        problems: Every problem found, one sentence each; the message joins them.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate_pair(
    left: VideoProbe,
    right: VideoProbe,
    expected_left: ExpectedRecording | None = None,
    expected_right: ExpectedRecording | None = None,
) -> None:
    """Refuse a pair the pipeline cannot process frame by frame together.

    The two cameras are stitched frame i with frame i, so both must have the same frame count,
    frame rate and frame size, in a codec the decoders support. Each side must also match what
    its upload session declared (size, checksum, frame count): that is how a corrupted or
    incomplete upload is told apart from a short recording.

    Args:
        left: Probe of the left camera's recording.
        right: Probe of the right camera's recording.
        expected_left: What the upload declared for the left recording, if anything.
        expected_right: Same for the right one.

    Raises:
        RecordingMismatchError: listing every problem found, e.g.
            ``frame counts differ: left 250, right 249``.
        ValueError: a checksum was declared but the probe was made without `with_sha256`.
    """
    problems: list[str] = []
    for side, probe, expected in (("left", left, expected_left), ("right", right, expected_right)):
        if expected is not None:
            problems.extend(_upload_problems(side, probe, expected))
    for side, probe in (("left", left), ("right", right)):
        if probe.codec not in SUPPORTED_CODECS:
            problems.append(
                f"codec of {side} is not supported: {probe.codec} "
                f"(supported: {', '.join(sorted(SUPPORTED_CODECS))})"
            )
    if left.frame_count != right.frame_count:
        problems.append(f"frame counts differ: left {left.frame_count}, right {right.frame_count}")
    if left.fps != right.fps:
        problems.append(
            f"frame rates differ: left {left.fps_rational} ({float(left.fps):.3f} fps), "
            f"right {right.fps_rational} ({float(right.fps):.3f} fps)"
        )
    if (left.width, left.height) != (right.width, right.height):
        problems.append(
            f"frame sizes differ: left {left.width}x{left.height}, "
            f"right {right.width}x{right.height}"
        )
    if problems:
        raise RecordingMismatchError(problems)


def _upload_problems(side: str, probe: VideoProbe, expected: ExpectedRecording) -> list[str]:
    """How one recording differs from its upload session's declaration."""
    problems: list[str] = []
    if expected.size_bytes is not None and probe.size_bytes != expected.size_bytes:
        problems.append(
            f"size of {side} does not match the upload "
            f"(expected {expected.size_bytes} bytes, got {probe.size_bytes})"
        )
    if expected.sha256 is not None:
        if probe.sha256 is None:
            raise ValueError(
                f"{side} was probed without its sha256; call probe_video(..., with_sha256=True)"
            )
        if probe.sha256.lower() != expected.sha256.lower():
            problems.append(
                f"checksum of {side} does not match the upload "
                f"(expected sha256 {expected.sha256.lower()}, got {probe.sha256})"
            )
    if expected.frame_count is not None and probe.frame_count != expected.frame_count:
        problems.append(
            f"frame count of {side} does not match the upload "
            f"(expected {expected.frame_count}, got {probe.frame_count})"
        )
    return problems
