"""The frames a chunk's seam and gains are chosen from: a few per camera, in and around the chunk.

The window reaches ``context_s`` beyond each end of the chunk, so neighbouring chunks share some
samples: their seams and gains are chosen from overlapping evidence and move little from one
chunk to the next, while each chunk still depends on nothing but the recordings (chunks are
stitched in parallel, in any order, and give the same result every time).

Keyframes are nearly free to decode (no reference frames needed), so the samples are the
keyframes inside the window when there are at least ``min_samples`` of them (every second for
recordings with a one-second GOP), at most ``max_samples`` spread evenly. Recordings with long
GOPs (a single keyframe, as SoccerTrack's) are decoded once, sequentially, over the chunk, keeping
evenly spaced frames.

The two cameras are sampled independently: nothing that uses the samples needs the same instant
in both (each camera's background and motion come from its own samples).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from activities.stitch.chunk import FrameClock, StitchChunkError, decode_frames

UInt8Array = npt.NDArray[np.uint8]

CONTEXT_S = 2.0
"""Seconds sampled beyond each end of the chunk."""
MAX_SAMPLES = 8
"""Most frames sampled per camera."""
MIN_SAMPLES = 3
"""Fewest keyframes in the window worth using; fewer: decode the chunk and take evenly spaced
frames instead."""


def _spread(items: list[int], count: int) -> list[int]:
    """At most ``count`` of ``items`` (sorted), evenly spread, first and last included."""
    if len(items) <= count:
        return items
    picks = np.round(np.linspace(0, len(items) - 1, count)).astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def keyframes_in(path: Path, first: int, stop: int) -> list[tuple[int, UInt8Array]]:
    """The keyframes with index in ``[first, stop)``, decoded (and nothing else decoded)."""
    found: list[tuple[int, UInt8Array]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        clock = FrameClock.of(path, stream)
        stream.codec_context.skip_frame = "NONKEY"
        if first > 0:
            container.seek(clock.pts(first), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            index = clock.index(frame.pts)
            if index >= stop:
                break
            if index >= first:
                found.append((index, np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)))
    return found


def sample_camera(
    path: Path,
    start_frame: int,
    end_frame: int,
    fps: float,
    *,
    offset: int = 0,
    context_s: float = CONTEXT_S,
    max_samples: int = MAX_SAMPLES,
    min_samples: int = MIN_SAMPLES,
) -> list[UInt8Array]:
    """Frames of one recording to choose the chunk ``[start_frame, end_frame)``'s seam from.

    Args:
        path: The recording.
        start_frame: First frame of the chunk (in the left recording's numbering).
        end_frame: One past its last frame.
        fps: Frame rate.
        offset: This recording's frame index minus the left one's for the same instant.
        context_s: Seconds sampled beyond each end of the chunk.
        max_samples: Most frames returned.
        min_samples: Fewest keyframes worth using instead of decoding the chunk.

    Returns:
        The sampled BGR frames, in time order (at least one).

    Raises:
        StitchChunkError: The recording cannot give the chunk's frames.
    """
    context = round(context_s * fps)
    first = max(0, start_frame + offset - context)
    stop = end_frame + offset + context
    keyframes = keyframes_in(path, first, stop)
    if len(keyframes) >= min_samples:
        chosen = set(_spread([index for index, _ in keyframes], max_samples))
        return [frame for index, frame in keyframes if index in chosen]
    # Long GOPs: one sequential pass over the chunk itself (frames beyond it would cost a
    # decode of everything in between, and may not exist). Shifted by the pair's offset, the
    # range may run off either end of this recording: what it holds is enough.
    first, stop = max(0, start_frame + offset), max(1, end_frame + offset)
    targets = set(_spread(list(range(first, stop)), max_samples))
    frames: list[UInt8Array] = []
    decoded = decode_frames(path, first, stop, allow_short=True)
    for index, frame in enumerate(decoded, start=first):
        if index in targets:
            frames.append(frame)
    if not frames:
        raise StitchChunkError(f"{path.name}: no frame to sample in [{first}, {stop})")
    return frames
