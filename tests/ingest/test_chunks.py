"""Chunk plans: regular grid, decode starts, keyframe-aligned alternative."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest

from activities.ingest.chunks import plan_chunks
from activities.ingest.contracts import ChunkPlan


def _spans(chunks: list[ChunkPlan]) -> list[tuple[int, int]]:
    return [(c.start_frame, c.end_frame) for c in chunks]


def _check_invariants(
    chunks: list[ChunkPlan], frame_count: int, left: list[int], right: list[int]
) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_frame == 0 and chunks[-1].end_frame == frame_count
    for before, after in itertools.pairwise(chunks):
        assert before.end_frame == after.start_frame  # every frame exactly once
    for chunk in chunks:
        assert chunk.frame_count > 0
        assert chunk.decode_from_left in left and chunk.decode_from_left <= chunk.start_frame
        assert chunk.decode_from_right in right and chunk.decode_from_right <= chunk.start_frame
        # The decode start is the latest possible: no keyframe between it and the chunk start.
        assert not [k for k in left if chunk.decode_from_left < k <= chunk.start_frame]
        assert not [k for k in right if chunk.decode_from_right < k <= chunk.start_frame]


def test_regular_gops_cut_on_keyframes_without_waste() -> None:
    keyframes = list(range(0, 1000, 25))
    chunks = plan_chunks(1000, 25, keyframes, keyframes, target_seconds=10)
    assert _spans(chunks) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert all(c.decode_from_left == c.decode_from_right == c.start_frame for c in chunks)
    assert [(c.start_s, c.end_s) for c in chunks] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    _check_invariants(chunks, 1000, keyframes, keyframes)


def test_misaligned_gops_stay_on_the_grid_with_decode_starts() -> None:
    # Two encoders started 7 frames apart, 1 s GOPs: they never share a keyframe but frame 0.
    left = list(range(0, 1000, 25))
    right = [0, *range(7, 1000, 25)]
    chunks = plan_chunks(1000, 25, left, right, target_seconds=10)
    assert _spans(chunks) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert [c.decode_from_left for c in chunks] == [0, 250, 500, 750]
    assert [c.decode_from_right for c in chunks] == [0, 232, 482, 732]
    _check_invariants(chunks, 1000, left, right)


def test_misaligned_gops_keyframe_aligned_is_one_chunk() -> None:
    left = list(range(0, 1000, 25))
    right = [0, *range(7, 1000, 25)]
    chunks = plan_chunks(1000, 25, left, right, target_seconds=10, keyframe_aligned=True)
    assert _spans(chunks) == [(0, 1000)]
    assert (chunks[0].decode_from_left, chunks[0].decode_from_right) == (0, 0)


def test_single_keyframe_recordings_like_soccertrack() -> None:
    chunks = plan_chunks(250, 25, [0], [0], target_seconds=2)
    assert _spans(chunks) == [(0, 50), (50, 100), (100, 150), (150, 200), (200, 250)]
    assert all(c.decode_from_left == c.decode_from_right == 0 for c in chunks)


def test_keyframe_aligned_picks_the_shared_keyframe_nearest_the_grid() -> None:
    # GOPs of 25 and 30 frames share a keyframe every 150 frames (6 s).
    left = list(range(0, 1500, 25))
    right = list(range(0, 1500, 30))
    chunks = plan_chunks(1500, 25, left, right, target_seconds=10, keyframe_aligned=True)
    # Grid 250 -> 300, 500 -> 450, 750 -> 750, 1000 -> 1050, 1250 -> 1200.
    assert _spans(chunks) == [
        (0, 300),
        (300, 450),
        (450, 750),
        (750, 1050),
        (1050, 1200),
        (1200, 1500),
    ]
    assert all(c.decode_from_left == c.decode_from_right == c.start_frame for c in chunks)
    _check_invariants(chunks, 1500, left, right)


def test_snap_moves_boundaries_onto_nearby_shared_keyframes() -> None:
    left = list(range(0, 1000, 30))
    right = list(range(0, 1000, 30))
    exact = plan_chunks(1000, 25, left, right, target_seconds=10)
    assert _spans(exact)[:2] == [(0, 250), (250, 500)]
    assert exact[1].decode_from_left == 240
    snapped = plan_chunks(1000, 25, left, right, target_seconds=10, snap_seconds=0.5)
    # 250 -> 240 (10 frames away), 500 -> 510, 750 -> 750.
    assert _spans(snapped) == [(0, 240), (240, 510), (510, 750), (750, 1000)]
    assert all(c.decode_from_left == c.start_frame for c in snapped)


def test_short_match_is_one_chunk() -> None:
    chunks = plan_chunks(50, 25, [0, 25], [0, 25], target_seconds=10)
    assert chunks == [ChunkPlan(0, 0, 50, 0.0, 2.0, 0, 0)]


def test_frame_count_not_a_multiple_leaves_a_shorter_last_chunk() -> None:
    keyframes = list(range(0, 260, 25))
    chunks = plan_chunks(263, 25, keyframes, keyframes, target_seconds=2)
    assert _spans(chunks) == [(0, 50), (50, 100), (100, 150), (150, 200), (200, 250), (250, 263)]
    assert chunks[-1].end_s == pytest.approx(10.52)
    _check_invariants(chunks, 263, keyframes, keyframes)


def test_ntsc_rate_times_are_exact() -> None:
    rate = Fraction(30000, 1001)
    chunks = plan_chunks(1000, rate, [0], [0], target_seconds=10)
    assert chunks[0].end_frame == 300  # round(10 * 29.97)
    assert chunks[1].start_s == pytest.approx(300 * 1001 / 30000)


@pytest.mark.parametrize("seed", range(20))
def test_invariants_hold_for_random_recordings(seed: int) -> None:
    rng = random.Random(seed)
    frame_count = rng.randint(1, 3000)
    left = sorted({0, *rng.sample(range(frame_count), min(frame_count, rng.randint(0, 60)))})
    right = sorted({0, *rng.sample(range(frame_count), min(frame_count, rng.randint(0, 60)))})
    for options in ({}, {"keyframe_aligned": True}, {"snap_seconds": 2.0}):
        chunks = plan_chunks(frame_count, 25, left, right, rng.uniform(0.5, 20), **options)
        _check_invariants(chunks, frame_count, left, right)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="frame_count"):
        plan_chunks(0, 25, [0], [0])
    with pytest.raises(ValueError, match="positive"):
        plan_chunks(10, 0, [0], [0])
    with pytest.raises(ValueError, match="keyframes of right must include frame 0"):
        plan_chunks(10, 25, [0], [3])
