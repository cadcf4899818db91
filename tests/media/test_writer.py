"""The H.264 writer: decodable, keyframes where chunks will be cut, deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from polyvision.media.writer import VideoWriter


def _frames(count: int) -> list[np.ndarray]:
    # Smooth content with a moving block: what 4:2:0 H.264 reproduces closely.
    yy, xx = np.mgrid[0:72, 0:128]
    base = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = base.copy()
        frame[20:40, 4 * i % 100 : 4 * i % 100 + 20] = 255
        frames.append(frame)
    return frames


def _write(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    with VideoWriter(path, 128, 72, fps, preset="veryfast", gop=10) as writer:
        for frame in frames:
            writer.write(frame)


def test_round_trip_frame_count_rate_and_content(tmp_path: Path) -> None:
    frames = _frames(23)
    _write(tmp_path / "a.mp4", frames)
    with av.open(str(tmp_path / "a.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 25
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(decoded) == 23
    assert (decoded[0].shape) == (72, 128, 3)
    # Lossy, but close: a few levels of mean absolute error at crf 20.
    assert np.abs(decoded[5].astype(int) - frames[5].astype(int)).mean() < 4


def test_keyframes_on_a_fixed_cadence(tmp_path: Path) -> None:
    _write(tmp_path / "a.mp4", _frames(35))
    with av.open(str(tmp_path / "a.mp4")) as container:
        keyframes = [
            index
            for index, packet in enumerate(container.demux(video=0))
            if packet.size and packet.is_keyframe
        ]
    assert keyframes == [0, 10, 20, 30]


def test_same_frames_give_the_same_file(tmp_path: Path) -> None:
    frames = _frames(12)
    _write(tmp_path / "a.mp4", frames)
    _write(tmp_path / "b.mp4", frames)
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.mp4", "b.mp4")]
    assert digest[0] == digest[1]


def test_wrong_frame_shape_and_odd_size_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even sizes"):
        VideoWriter(tmp_path / "odd.mp4", 127, 72, 25)
    with (
        VideoWriter(tmp_path / "a.mp4", 128, 72, 25) as writer,
        pytest.raises(ValueError, match="expected"),
    ):
        writer.write(np.zeros((72, 64, 3), np.uint8))
