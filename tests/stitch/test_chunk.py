"""Stitching chunks of the synthetic recordings: exact frame ranges, decodable output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from activities.stitch.chunk import StitchChunkError, decode_frames, stitch_chunk
from activities.stitch.stitch_plan import StitchPlan, stitch_frame
from tests.stitch.helpers import decode_all

FRAMES = 50  # 2 s at 25 fps, a keyframe every 25 frames


@pytest.mark.parametrize(
    ("start", "end", "decode_from"),
    [(0, 3, None), (13, 17, None), (25, 27, None), (37, 50, None), (37, 40, 25), (30, 32, 0)],
)
def test_decode_gives_exactly_the_requested_frames(
    synth_match: Path,
    left_frames: list[np.ndarray],
    start: int,
    end: int,
    decode_from: int | None,
) -> None:
    frames = list(decode_frames(synth_match / "left.mp4", start, end, decode_from))
    assert len(frames) == end - start
    for got, expected in zip(frames, left_frames[start:end], strict=True):
        np.testing.assert_array_equal(got, expected)


def test_chunk_is_a_decodable_h264_of_every_frame(
    synth_match: Path, plan: StitchPlan, tmp_path: Path
) -> None:
    progress: list[int] = []
    out = tmp_path / "chunk.mp4"
    result = stitch_chunk(
        synth_match / "left.mp4",
        synth_match / "right.mp4",
        0,
        FRAMES,
        plan,
        out,
        25.0,
        on_progress=progress.append,
    )
    assert result.frames == FRAMES and result.out_path == out
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert progress == list(range(1, FRAMES + 1))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (plan.width, plan.height)
        assert stream.average_rate == 25
        keyframes = [f.key_frame for f in container.decode(stream)]
    assert len(keyframes) == FRAMES
    assert [i for i, key in enumerate(keyframes) if key] == [0, 25]


def test_chunk_starting_mid_gop_holds_exactly_the_requested_frames(
    synth_match: Path,
    plan: StitchPlan,
    left_frames: list[np.ndarray],
    right_frames: list[np.ndarray],
    tmp_path: Path,
) -> None:
    start, end = 13, 30  # frame 13 is no keyframe; the chunk crosses the keyframe at 25
    out = tmp_path / "mid.mp4"
    # Lossless x264 so the comparison sees the stitch, not the encoder.
    result = stitch_chunk(
        synth_match / "left.mp4",
        synth_match / "right.mp4",
        start,
        end,
        plan,
        out,
        25.0,
        crf=0,
    )
    assert result.frames == end - start
    written = decode_all(out)
    assert len(written) == end - start

    def stitched(index: int) -> np.ndarray:
        panorama = stitch_frame(left_frames[index], right_frames[index], plan)
        # The same trip through yuv420p as the encoder's input, so only the stitch is compared.
        frame = av.VideoFrame.from_ndarray(panorama, format="bgr24").reformat(format="yuv420p")
        return np.asarray(frame.to_ndarray(format="bgr24"))

    # Lossless: the first frame is frame 13 stitched directly, bit for bit, and the last is 29.
    np.testing.assert_array_equal(written[0], stitched(start))
    np.testing.assert_array_equal(written[-1], stitched(end - 1))
    # ...and not a neighbour: the players moved between frames 12 and 13.
    assert (np.abs(written[0].astype(np.int16) - stitched(start - 1)).max(axis=2) > 40).sum() > 20


def test_chunk_is_deterministic(synth_match: Path, plan: StitchPlan, tmp_path: Path) -> None:
    digests = {
        stitch_chunk(
            synth_match / "left.mp4",
            synth_match / "right.mp4",
            20,
            30,
            plan,
            tmp_path / f"run{i}.mp4",
            25.0,
            encoder_threads=1,
        ).sha256
        for i in range(2)
    }
    assert len(digests) == 1


def test_chunk_past_the_end_fails_and_leaves_no_file(
    synth_match: Path, plan: StitchPlan, tmp_path: Path
) -> None:
    out = tmp_path / "late.mp4"
    with pytest.raises(StitchChunkError, match="ends at frame 50"):
        stitch_chunk(synth_match / "left.mp4", synth_match / "right.mp4", 45, 60, plan, out, 25.0)
    assert not out.exists()


@pytest.mark.parametrize(("start", "end", "decode_from"), [(5, 5, None), (-1, 3, None), (5, 9, 6)])
def test_bad_ranges_are_refused(
    synth_match: Path,
    plan: StitchPlan,
    tmp_path: Path,
    start: int,
    end: int,
    decode_from: int | None,
) -> None:
    with pytest.raises(ValueError):
        stitch_chunk(
            synth_match / "left.mp4",
            synth_match / "right.mp4",
            start,
            end,
            plan,
            tmp_path / "x.mp4",
            25.0,
            decode_from_left=decode_from,
        )
