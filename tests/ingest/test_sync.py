"""Synchronisation of the two recordings: the offset estimate, what ingest reports, the shift.

The pairs are cut from one short synthetic match (4 s, 640x360) and re-encoded: cutting ``k``
frames from the start of the right recording (and ``k`` from the end of the left one, so both
stay equally long) makes right frame ``i - k`` show the instant of left frame ``i``, an offset
of ``-k``; a negative ``k`` cuts the left recording's start instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from temporalio.testing import ActivityEnvironment

from activities.ingest.activity import IngestActivities
from activities.ingest.chunks import plan_chunks
from activities.ingest.contracts import IngestInput, IngestOutput
from activities.ingest.sync import (
    MIN_CONFIDENCE,
    MIN_CORRELATION,
    SYNC_WARN_FRAMES,
    SyncEstimate,
    check_sync,
    estimate_offset,
    sync_check,
)
from activities.stitch.chunk import StitchChunkError, shifted_frames
from activities.stitch.contracts import StitchPrepareOutput
from polyvision.geometry import Rig
from polyvision.media.writer import VideoWriter
from polyvision.storage.objects import open_object_store
from synth.generate import SynthConfig, generate_match
from workflows.match import Queues, StitchBatchInput, stitch_chunk_input

UInt8Frames = list[np.ndarray]


def _frames(path: Path) -> UInt8Frames:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(container.streams.video[0])]


def _write(path: Path, frames: UInt8Frames) -> None:
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width, height, 25.0, gop=25) as writer:
        for frame in frames:
            writer.write(frame)


@pytest.fixture(scope="module")
def match_4s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s synthetic match (100 frames a camera): left.mp4, right.mp4, rig.json."""
    directory = tmp_path_factory.mktemp("sync-match")
    generate_match(SynthConfig(seconds=4, width=640, height=360, seed=3), directory)
    return directory


@pytest.fixture(scope="module")
def decoded(match_4s: Path) -> dict[str, UInt8Frames]:
    return {side: _frames(match_4s / f"{side}.mp4") for side in ("left", "right")}


def _pair(
    directory: Path, match: Path, left: UInt8Frames, right: UInt8Frames, k: int
) -> tuple[Path, Path]:
    """Re-encode the pair with the right recording ``k`` frames late (see the module)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(left)
    if k >= 0:
        left, right = left[: n - k], right[k:]
    else:
        left, right = left[-k:], right[: n + k]
    _write(directory / "left.mp4", left)
    _write(directory / "right.mp4", right)
    shutil.copy(match / "rig.json", directory / "rig.json")
    return directory / "left.mp4", directory / "right.mp4"


@pytest.fixture(scope="module")
def shifted_5(
    tmp_path_factory: pytest.TempPathFactory, match_4s: Path, decoded: dict[str, UInt8Frames]
) -> tuple[Path, Path]:
    """The right camera 5 frames late: offset -5."""
    return _pair(tmp_path_factory.mktemp("shift-5"), match_4s, decoded["left"], decoded["right"], 5)


def test_a_known_shift_is_recovered_exactly(
    match_4s: Path,
    decoded: dict[str, UInt8Frames],
    shifted_5: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    rig = Rig.load(match_4s / "rig.json")
    late = estimate_offset(*shifted_5, rig)
    assert late.offset_frames == -5 and late.reliable, late
    assert late.frames_used == 95
    early_left, early_right = _pair(tmp_path, match_4s, decoded["left"], decoded["right"], -3)
    early = estimate_offset(early_left, early_right, rig)
    assert early.offset_frames == 3 and early.reliable, early

    check = sync_check(late)
    assert check.frame_offset == -5 and check.correlation == late.correlation
    assert check.warning is not None
    assert check.warning.startswith("left and right are 5 frames apart (the right camera started")
    assert check.warning.endswith("stitching corrects it")


def test_a_synchronised_pair_gives_zero(match_4s: Path) -> None:
    estimate = estimate_offset(
        match_4s / "left.mp4", match_4s / "right.mp4", Rig.load(match_4s / "rig.json")
    )
    assert estimate.offset_frames == 0 and estimate.reliable, estimate
    assert estimate.frames_used == 100
    assert sync_check(estimate).warning is None


def test_a_static_scene_gives_low_confidence_and_offset_0(
    match_4s: Path, decoded: dict[str, UInt8Frames], tmp_path: Path
) -> None:
    """Nothing moves: only the encoder's keyframe pulses, at the same frames in both files."""
    for side in ("left", "right"):
        _write(tmp_path / f"{side}.mp4", [decoded[side][0]] * 100)
    estimate = estimate_offset(
        tmp_path / "left.mp4", tmp_path / "right.mp4", Rig.load(match_4s / "rig.json")
    )
    assert estimate.correlation < MIN_CORRELATION and estimate.confidence < MIN_CONFIDENCE
    assert estimate.offset_frames == 0 and not estimate.reliable
    check = sync_check(estimate)
    assert check.frame_offset == 0
    assert check.warning is not None and check.warning.startswith(
        "could not check that left and right are in sync: no clear common motion"
    )


def test_what_ingest_makes_of_an_estimate() -> None:
    small = sync_check(SyncEstimate(SYNC_WARN_FRAMES, 0.6, 0.9, 500))
    assert (small.frame_offset, small.warning) == (SYNC_WARN_FRAMES, None)
    early = sync_check(SyncEstimate(4, 0.91, 0.9, 500))
    assert early.frame_offset == 4
    assert early.warning == (
        "left and right are 4 frames apart (the right camera started 4 frames earlier; "
        "correlation 0.91); stitching corrects it"
    )
    doubtful = sync_check(SyncEstimate(7, 0.5, MIN_CONFIDENCE - 0.01, 500))
    assert doubtful.frame_offset == 0 and doubtful.correlation == 0.5
    assert doubtful.warning is not None and "stitched as recorded" in doubtful.warning


def test_an_unusable_rig_leaves_the_pair_unchecked(match_4s: Path) -> None:
    check = check_sync(match_4s / "left.mp4", match_4s / "right.mp4", b'{"version": 1}')
    assert (check.frame_offset, check.correlation, check.estimate) == (0, None, None)
    assert check.warning is not None and "the rig is unusable" in check.warning


async def test_ingest_reports_the_offset(shifted_5: tuple[Path, Path], tmp_path: Path) -> None:
    left, right = shifted_5
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"x" * 32, public_base_url="http://t"
    )
    async with store:
        for key, path in (("u/left.mp4", left), ("u/right.mp4", right)):
            await store.upload_file(key, path)
        await store.upload_file("u/rig.json", left.parent / "rig.json")
        input = IngestInput("org-1", "match-1", 1, "u/left.mp4", "u/right.mp4", "u/rig.json")
        output: IngestOutput = await ActivityEnvironment().run(
            IngestActivities(store, tmp_path / "scratch").ingest, input
        )
        manifest = json.loads(await store.get(output.manifest_key))
    assert output.frame_offset == -5
    assert output.sync_correlation is not None and output.sync_correlation >= MIN_CORRELATION
    assert output.sync_warning is not None and "5 frames apart" in output.sync_warning
    sync = manifest["outputs"]["details"]["sync"]
    assert sync["frame_offset"] == -5 and sync["estimate"]["offset_frames"] == -5


def test_the_stitch_children_ask_for_the_offset() -> None:
    [chunk] = plan_chunks(250, 25, [0], [0], 10.0)
    batch = StitchBatchInput(
        parent_workflow_id="match-1",
        organization_id="org-1",
        match_id="match-1",
        revision=1,
        queues=Queues.with_suffix(""),
        chunks=[chunk],
        left_key="l.mp4",
        right_key="r.mp4",
        left_sha256="a" * 64,
        right_sha256="b" * 64,
        rig_key="rig.json",
        prepare=StitchPrepareOutput("panorama.json", 100, 50, []),
        fps=25.0,
    )
    assert stitch_chunk_input(batch, chunk).right_frame_offset == 0
    batch.right_frame_offset = -5
    asked = stitch_chunk_input(batch, chunk)
    assert asked.right_frame_offset == -5
    assert (asked.start_frame, asked.end_frame) == (0, 250)


@pytest.mark.parametrize(
    ("start", "end", "offset"),
    [(10, 20, 0), (10, 20, 5), (30, 40, -4), (0, 6, -3), (0, 2, -5), (95, 100, 3), (98, 100, 5)],
)
def test_the_right_recording_is_decoded_shifted_and_clamped(
    match_4s: Path, decoded: dict[str, UInt8Frames], start: int, end: int, offset: int
) -> None:
    """Frames before the recording's first repeat it, frames past its last repeat that."""
    right = decoded["right"]
    got = list(shifted_frames(match_4s / "right.mp4", start, end, offset, decode_from=0))
    expected = [right[min(max(i + offset, 0), len(right) - 1)] for i in range(start, end)]
    assert len(got) == end - start
    for frame, want in zip(got, expected, strict=True):
        np.testing.assert_array_equal(frame, want)


def test_a_recording_shorter_than_the_chunk_still_fails(match_4s: Path) -> None:
    with pytest.raises(StitchChunkError):
        list(shifted_frames(match_4s / "right.mp4", 90, 110, 2))
