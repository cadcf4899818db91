"""Cutting a match into chunks that the per-chunk stages process independently.

Design: **regular chunks on an exact frame grid, each with a decode start per file.**

Chunk *i* covers frames ``[i*T, (i+1)*T)`` with ``T = round(target_seconds * fps)`` (the last one
holds the remainder). A chunk can start on any frame because it also carries, for each camera,
`decode_from`: the last keyframe at or before its start in that file. A stage seeks there, decodes,
and drops the ``start - decode_from`` frames before the chunk (decode only: no stitching,
detection or encoding on them). Where both files have a keyframe on the boundary — recordings
encoded with the same fixed GOP, like our synthetic ones — ``decode_from == start`` and nothing
is wasted.

Why not cut only where both files have a keyframe: the two cameras' encoders are independent. The
SoccerTrack pair has one keyframe each, at frame 0; edge boxes start their encoders at slightly
different moments, so their GOPs are offset and may never coincide. Keyframe-only cutting then
gives one chunk for the whole match and no parallelism at all. With `decode_from`, the waste is
bounded by one GOP per chunk per camera (on average half a GOP: 5 % of a 10 s chunk with 1 s GOPs),
and chunks stay regular, so chunk *i* always means the same seconds of play in every stage.
The strict keyframe-only behaviour is still available (``keyframe_aligned=True``), and
``snap_seconds`` moves a boundary onto a shared keyframe when one is that close to the grid.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from fractions import Fraction

from activities.ingest.contracts import ChunkPlan


def plan_chunks(
    frame_count: int,
    fps: Fraction | float,
    keyframes_left: Sequence[int],
    keyframes_right: Sequence[int],
    target_seconds: float = 10.0,
    *,
    keyframe_aligned: bool = False,
    snap_seconds: float = 0.0,
) -> list[ChunkPlan]:
    """Cut ``frame_count`` frames into chunks of about ``target_seconds``.

    Every frame belongs to exactly one chunk; no chunk is empty. See the module docstring for why
    boundaries default to an exact grid.

    Args:
        frame_count: Frames in each recording (the pair has the same count).
        fps: Frame rate of both recordings.
        keyframes_left: Keyframe indices of the left file (display order; must include 0).
        keyframes_right: Same for the right file.
        target_seconds: Wanted chunk length.
        keyframe_aligned: Cut only on frames that are keyframes in both files, each boundary the
            shared keyframe nearest to a multiple of the target (within half a target). Chunks
            then decode from their first frame, but are irregular, and a pair that shares no
            keyframe but 0 is one chunk.
        snap_seconds: In grid mode, move a boundary onto a shared keyframe at most this far from
            it (capped below half a target); 0 keeps the exact grid.

    Returns:
        The chunks in order.

    Raises:
        ValueError: a non-positive count, rate or target, or a keyframe list without frame 0.
    """
    if frame_count < 1:
        raise ValueError(f"frame_count must be at least 1, got {frame_count}")
    if fps <= 0 or target_seconds <= 0:
        raise ValueError(f"fps and target_seconds must be positive, got {fps} and {target_seconds}")
    if snap_seconds < 0:
        raise ValueError(f"snap_seconds must not be negative, got {snap_seconds}")
    left = _keyframe_list(keyframes_left, frame_count, "left")
    right = _keyframe_list(keyframes_right, frame_count, "right")
    rate = Fraction(fps)
    target = max(1, round(target_seconds * rate))
    shared = sorted(set(left) & set(right))
    # Below half a target, the window around each grid point overlaps no other one, so
    # boundaries stay strictly increasing and no two grid points claim the same keyframe.
    half = (target - 1) // 2
    tolerance = half if keyframe_aligned else min(half, round(snap_seconds * rate))

    boundaries = [0]
    for grid in range(target, frame_count, target):
        nearest = _nearest(shared, grid, tolerance)
        if nearest is not None and 0 < nearest < frame_count:
            boundaries.append(nearest)
        elif not keyframe_aligned:
            boundaries.append(grid)
    boundaries.append(frame_count)

    return [
        ChunkPlan(
            index=index,
            start_frame=start,
            end_frame=end,
            start_s=float(start / rate),
            end_s=float(end / rate),
            decode_from_left=left[bisect.bisect_right(left, start) - 1],
            decode_from_right=right[bisect.bisect_right(right, start) - 1],
        )
        for index, (start, end) in enumerate(itertools.pairwise(boundaries))
    ]


def _keyframe_list(keyframes: Sequence[int], frame_count: int, side: str) -> list[int]:
    """Sorted, de-duplicated keyframes inside the recording; frame 0 must be one of them."""
    cleaned = sorted({k for k in keyframes if 0 <= k < frame_count})
    if not cleaned or cleaned[0] != 0:
        raise ValueError(f"keyframes of {side} must include frame 0 (decoding starts there)")
    return cleaned


def _nearest(sorted_frames: list[int], target: int, tolerance: int) -> int | None:
    """The frame of `sorted_frames` nearest to `target` within `tolerance` (ties: the earlier)."""
    at = bisect.bisect_left(sorted_frames, target)
    candidates = sorted_frames[max(0, at - 1) : at + 1]
    best = min(candidates, key=lambda frame: (abs(frame - target), frame), default=None)
    if best is None or abs(best - target) > tolerance:
        return None
    return best
