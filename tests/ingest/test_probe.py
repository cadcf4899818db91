"""Probing recordings: exact counts and keyframes, and clear refusals of unusable files."""

from __future__ import annotations

import hashlib
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import pytest

from activities.ingest.contracts import ExpectedRecording
from activities.ingest.probe import (
    InvalidRecordingError,
    VideoProbe,
    parse_fps,
    probe_video,
    sha256_file,
)
from activities.ingest.validate import RecordingMismatchError, validate_pair
from tests.ingest.conftest import readme_sha256, remux, shared_data_dir, truncate


def test_synthetic_pair(synth_2s: Path) -> None:
    for side in ("left", "right"):
        probe = probe_video(synth_2s / f"{side}.mp4")
        assert probe.codec == "h264"
        assert (probe.width, probe.height) == (320, 180)
        assert probe.fps == Fraction(25) and probe.fps_rational == "25/1"
        assert parse_fps(probe.fps_rational) == probe.fps
        assert probe.frame_count == 50
        assert probe.duration_s == pytest.approx(2.0)
        # The writer's fixed GOP: a keyframe every 25 frames, in display order.
        assert probe.keyframes == [0, 25]
        assert not probe.has_audio
        assert (probe.pix_fmt, probe.bit_depth) == ("yuv420p", 8)
        assert probe.size_bytes == (synth_2s / f"{side}.mp4").stat().st_size
        assert probe.sha256 is None


def test_keyframes_match_decoded_key_frames(synth_2s: Path) -> None:
    # Independent check of the display-order indices: decode and look at each frame's flag.
    with av.open(str(synth_2s / "left.mp4")) as container:
        decoded = [i for i, f in enumerate(container.decode(video=0)) if f.key_frame]
    assert probe_video(synth_2s / "left.mp4").keyframes == decoded


def test_sha256(synth_2s: Path) -> None:
    path = synth_2s / "left.mp4"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path, chunk=1000) == expected  # several chunks, a partial last one
    assert probe_video(path, with_sha256=True).sha256 == expected


def test_other_containers_are_accepted(synth_2s: Path, tmp_path: Path) -> None:
    # Edge boxes may record MP4 with the index first, fragmented MP4 or Matroska.
    variants = [
        remux(synth_2s / "left.mp4", tmp_path / "fast.mp4", "mp4", {"movflags": "faststart"}),
        remux(
            synth_2s / "left.mp4",
            tmp_path / "frag.mp4",
            "mp4",
            {"movflags": "frag_keyframe+empty_moov"},
        ),
        remux(synth_2s / "left.mp4", tmp_path / "a.mkv", "matroska"),
        # MPEG-TS seeks by byte position: the last-GOP check has to step back to find it.
        remux(synth_2s / "left.mp4", tmp_path / "a.ts", "mpegts"),
    ]
    for path in variants:
        probe = probe_video(path)
        assert (probe.frame_count, probe.keyframes) == (50, [0, 25]), path


@pytest.fixture(scope="module")
def real_pair(soccertrack: Path) -> tuple[VideoProbe, VideoProbe, float]:
    started = time.perf_counter()
    left = probe_video(soccertrack / "left_camera.mp4", with_sha256=True)
    right = probe_video(soccertrack / "right_camera.mp4", with_sha256=True)
    return left, right, time.perf_counter() - started


def test_real_pair(real_pair: tuple[VideoProbe, VideoProbe, float]) -> None:
    left, right, _ = real_pair
    for probe in (left, right):
        assert probe.codec == "hevc"
        assert (probe.width, probe.height) == (3072, 1728)
        assert probe.fps == 25
        assert probe.frame_count == 250
        assert probe.duration_s == pytest.approx(10.0)
        # One keyframe per file: why chunks carry a decode start (see chunks.py).
        assert probe.keyframes == [0]
        assert (probe.pix_fmt, probe.bit_depth) == ("yuv420p", 8)
    assert not left.has_audio
    assert right.has_audio


def test_real_pair_checksums_match_the_readme(
    real_pair: tuple[VideoProbe, VideoProbe, float],
) -> None:
    left, right, _ = real_pair
    published = readme_sha256(shared_data_dir())
    assert left.sha256 == published["left_camera.mp4"]
    assert right.sha256 == published["right_camera.mp4"]


# ---- refusals --------------------------------------------------------------------------------


def _refusal(path: Path) -> str:
    with pytest.raises(InvalidRecordingError) as caught:
        probe_video(path)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert str(path) in message, "the message names the file"
    return message


def test_mp4_cut_in_half_is_refused(synth_2s: Path, tmp_path: Path) -> None:
    # The writer puts the index (moov) at the end, so the cut loses it.
    message = _refusal(truncate(synth_2s / "left.mp4", tmp_path / "cut.mp4", 0.5))
    assert "not a readable video container" in message
    assert "truncated" in message


@pytest.mark.parametrize("fraction", [0.5, 0.99])
@pytest.mark.parametrize("movflags", ["faststart", "frag_keyframe+empty_moov"])
def test_indexed_first_mp4_cut_is_refused(
    synth_2s: Path, tmp_path: Path, fraction: float, movflags: str
) -> None:
    # The index survives at the start; the samples it lists run past the end of the file.
    whole = remux(synth_2s / "left.mp4", tmp_path / "fast.mp4", "mp4", {"movflags": movflags})
    message = _refusal(truncate(whole, tmp_path / "cut.mp4", fraction))
    assert "truncated" in message


def test_matroska_cut_is_refused(synth_2s: Path, tmp_path: Path) -> None:
    # Matroska cut on a block boundary is self-consistent; only its declared duration tells.
    whole = remux(synth_2s / "left.mp4", tmp_path / "a.mkv", "matroska")
    message = _refusal(truncate(whole, tmp_path / "cut.mkv", 0.5))
    assert "truncated: the container declares 2.000 s of video but the frames end at" in message


def test_a_cut_between_frames_without_an_index_needs_the_declared_count(
    synth_2s: Path, tmp_path: Path
) -> None:
    # The limit of any probe: MPEG-TS declares no length, so half a file is a valid, shorter
    # recording. The upload session's declared frame count is what refuses it.
    whole = remux(synth_2s / "left.mp4", tmp_path / "a.ts", "mpegts")
    cut = probe_video(truncate(whole, tmp_path / "cut.ts", 0.5))
    assert cut.frame_count < 50
    right = probe_video(synth_2s / "right.mp4")
    with pytest.raises(
        RecordingMismatchError,
        match=r"frame count of left does not match the upload \(expected 50, got \d+\)",
    ):
        validate_pair(cut, right, ExpectedRecording(frame_count=50))


def test_garbled_last_frame_is_refused(synth_2s: Path, tmp_path: Path) -> None:
    # Damage no demuxer sees: only decoding the last GOP finds it.
    source = synth_2s / "left.mp4"
    with av.open(str(source)) as container:
        last = [p for p in container.demux(video=0) if p.size][-1]
        assert last.pos is not None
        position, size = last.pos, last.size
    data = bytearray(source.read_bytes())
    data[position + 4 : position + size] = b"\xff" * (size - 4)  # keep the NAL length prefix
    (tmp_path / "garbled.mp4").write_bytes(bytes(data))
    message = _refusal(tmp_path / "garbled.mp4")
    assert "truncated or corrupt" in message
    assert "last group of pictures" in message


def test_text_file_named_mp4_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("kick-off at 15:00, pitch 3\n" * 50)
    assert "not a readable video container" in _refusal(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    assert "the file is empty (0 bytes)" in _refusal(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert "cannot be read" in _refusal(tmp_path / "nowhere.mp4")


def test_messages_can_name_the_object_instead_of_the_path(tmp_path: Path) -> None:
    path = tmp_path / "left.mp4"
    path.touch()
    with pytest.raises(InvalidRecordingError, match=r"^orgs/o/left\.mp4: the file is empty"):
        probe_video(path, label="orgs/o/left.mp4")


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "commentary.wav"
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 8000)
    assert "contains no video stream (streams: audio pcm_s16le)" in _refusal(path)
