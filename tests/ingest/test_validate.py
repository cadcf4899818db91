"""Pair validation: every mismatch named precisely."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from activities.ingest.contracts import ExpectedRecording
from activities.ingest.probe import VideoProbe, probe_video
from activities.ingest.validate import RecordingMismatchError, validate_pair


@pytest.fixture(scope="module")
def pair(synth_2s: Path) -> tuple[VideoProbe, VideoProbe]:
    return (
        probe_video(synth_2s / "left.mp4", with_sha256=True),
        probe_video(synth_2s / "right.mp4", with_sha256=True),
    )


def _problems(*args: object) -> list[str]:
    with pytest.raises(RecordingMismatchError) as caught:
        validate_pair(*args)  # type: ignore[arg-type]
    assert str(caught.value) == "; ".join(caught.value.problems)
    return caught.value.problems


def test_a_good_pair_with_matching_uploads_passes(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    validate_pair(
        left,
        right,
        ExpectedRecording(size_bytes=left.size_bytes, sha256=left.sha256, frame_count=50),
        ExpectedRecording(sha256=(right.sha256 or "").upper()),  # hex case does not matter
    )


def test_pair_of_different_lengths(synth_2s: Path, synth_1s: Path) -> None:
    left = probe_video(synth_2s / "left.mp4")
    right = probe_video(synth_1s / "right.mp4")
    assert _problems(left, right) == ["frame counts differ: left 50, right 25"]


def test_frame_rates_differ(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    right = dataclasses.replace(right, fps=Fraction(30000, 1001))
    assert _problems(left, right) == [
        "frame rates differ: left 25/1 (25.000 fps), right 30000/1001 (29.970 fps)"
    ]


def test_frame_sizes_differ(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    right = dataclasses.replace(right, width=1920, height=1080)
    assert _problems(left, right) == ["frame sizes differ: left 320x180, right 1920x1080"]


def test_unsupported_codec(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    left = dataclasses.replace(left, codec="mpeg4")
    assert _problems(left, right) == [
        "codec of left is not supported: mpeg4 (supported: h264, hevc)"
    ]


def test_checksum_does_not_match_the_upload(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    assert _problems(left, right, ExpectedRecording(sha256="0" * 64)) == [
        f"checksum of left does not match the upload (expected sha256 {'0' * 64}, "
        f"got {left.sha256})"
    ]


def test_size_and_frame_count_do_not_match_the_upload(
    pair: tuple[VideoProbe, VideoProbe],
) -> None:
    left, right = pair
    problems = _problems(left, right, None, ExpectedRecording(size_bytes=123, frame_count=49))
    assert problems == [
        f"size of right does not match the upload (expected 123 bytes, got {right.size_bytes})",
        "frame count of right does not match the upload (expected 49, got 50)",
    ]


def test_every_problem_is_listed(pair: tuple[VideoProbe, VideoProbe]) -> None:
    left, right = pair
    right = dataclasses.replace(right, frame_count=49, codec="vp9")
    problems = _problems(left, right, ExpectedRecording(frame_count=51))
    assert problems == [
        "frame count of left does not match the upload (expected 51, got 50)",
        "codec of right is not supported: vp9 (supported: h264, hevc)",
        "frame counts differ: left 50, right 49",
    ]


def test_a_declared_checksum_needs_a_hashed_probe(synth_2s: Path) -> None:
    left = probe_video(synth_2s / "left.mp4")
    with pytest.raises(ValueError, match="with_sha256=True"):
        validate_pair(left, left, ExpectedRecording(sha256="0" * 64))


def test_workflow_facing_modules_do_not_load_ffmpeg() -> None:
    # Workflow inputs carry ExpectedRecording and the chunk plan (in the light contracts);
    # workflow code must not import heavy libraries, so these modules stay free of them.
    code = (
        "import sys, activities.ingest.contracts, activities.ingest.validate, "
        "activities.ingest.chunks, activities.ingest.summary; "
        "heavy = ('av', 'cv2', 'onnxruntime', 'native'); "
        "sys.exit(' '.join(m for m in heavy if m in sys.modules) or None)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
