"""The ladder encoder: one pass, every rendition, keyframes at the same frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from polyvision.media.encoder import EncodeTarget, LadderEncoder, choose_encoder, nvenc_available

FPS = 25.0


def _frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (72, 128, 3), dtype=np.uint8)
    return [np.roll(base, 3 * i, axis=1) for i in range(count)]


def _keyframes_and_count(path: Path) -> tuple[list[int], int, tuple[int, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        size = (stream.codec_context.width, stream.codec_context.height)
    return [i for i, frame in enumerate(frames) if frame.key_frame], len(frames), size


def test_every_rendition_has_every_frame_and_keyframes_every_gop(tmp_path: Path) -> None:
    targets = [
        EncodeTarget("top", 128, 72, tmp_path / "top.mp4", 800),
        EncodeTarget("mid", 96, 54, tmp_path / "mid.mp4", 400),
        EncodeTarget("low", 64, 36, tmp_path / "low.mp4"),
    ]
    with LadderEncoder(targets, FPS, gop=8) as encoder:
        for frame in _frames(30):
            encoder.write(frame)
        written = encoder.close()
    assert [w.name for w in written] == ["top", "mid", "low"]
    for target, rendition in zip(targets, written, strict=True):
        keyframes, count, size = _keyframes_and_count(rendition.path)
        assert count == rendition.frames == 30
        assert size == (target.width, target.height)
        assert keyframes == [0, 8, 16, 24]
        assert rendition.codecs.startswith("avc1.64")  # High profile
        assert rendition.encoder == "libx264"


def test_the_same_frames_give_the_same_bytes(tmp_path: Path) -> None:
    digests = []
    for run in range(2):
        target = EncodeTarget("top", 128, 72, tmp_path / f"{run}.mp4")
        with LadderEncoder([target], FPS, gop=10) as encoder:
            for frame in _frames(12):
                encoder.write(frame)
            encoder.close()
        digests.append(target.path.read_bytes())
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ([(128, 72), (65, 36)], "even sizes"),
        ([(64, 36), (128, 72)], "larger than the top"),
        ([(128, 72), (128, 72)], "distinct"),
    ],
)
def test_bad_ladders_are_refused(
    tmp_path: Path, sizes: list[tuple[int, int]], message: str
) -> None:
    names = ["a", "b"] if message != "distinct" else ["a", "a"]
    targets = [
        EncodeTarget(name, w, h, tmp_path / f"{i}.mp4")
        for i, (name, (w, h)) in enumerate(zip(names, sizes, strict=True))
    ]
    with pytest.raises(ValueError, match=message):
        LadderEncoder(targets, FPS, gop=10)


def test_a_frame_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    with LadderEncoder([EncodeTarget("a", 128, 72, tmp_path / "a.mp4")], FPS, gop=5) as encoder:
        with pytest.raises(ValueError, match="expected"):
            encoder.write(np.zeros((36, 64, 3), np.uint8))
        encoder.close()


def test_without_a_hardware_encoder_the_software_one_is_chosen() -> None:
    # Whatever the machine: the choice follows whether NVENC really opens, never a GPU's name.
    expected = "h264_nvenc" if nvenc_available() else "libx264"
    assert choose_encoder() == expected
    assert choose_encoder(prefer_hardware=False) == "libx264"


def test_decoded_frames_keep_neither_their_timing_nor_their_picture_types(tmp_path: Path) -> None:
    # A source with keyframes every 4 frames and its own time base, fed frame by frame.
    source = tmp_path / "source.mp4"
    with LadderEncoder([EncodeTarget("s", 128, 72, source)], FPS, gop=4) as encoder:
        for frame in _frames(24):
            encoder.write(frame)
        encoder.close()
    targets = [
        EncodeTarget("top", 128, 72, tmp_path / "top.mp4"),
        EncodeTarget("low", 64, 36, tmp_path / "low.mp4"),
    ]
    with av.open(str(source)) as container, LadderEncoder(targets, FPS, gop=12) as encoder:
        for decoded in container.decode(video=0):
            encoder.write_frame(decoded)
        written = encoder.close()
    with av.open(str(source)) as container:
        originals = [f.to_ndarray(format="bgr24").astype(float) for f in container.decode(video=0)]
    for rendition in written:
        keyframes, count, _ = _keyframes_and_count(rendition.path)
        assert count == 24 and keyframes == [0, 12]
    with av.open(str(written[0].path)) as container:
        copies = [f.to_ndarray(format="bgr24").astype(float) for f in container.decode(video=0)]
    # Every frame is its source frame, in order: noise re-encoded is off by a few levels, a
    # neighbouring frame (shifted noise) by about 60.
    assert all(np.abs(a - b).mean() < 15 for a, b in zip(originals, copies, strict=True))
