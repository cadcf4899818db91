"""Stitch one chunk of a match: decode both recordings, stitch each pair, encode the panorama.

The chunk is a half-open range of frame indices ``[start_frame, end_frame)`` of the left
recording; the right one gives the frames showing the same instants, ``right_offset`` further
(ingest's estimate of the pair's frame offset, `activities.ingest.sync`; 0 for a synchronised
pair; `shifted_frames` for the ends; ingest checked both are equally long). Decoding starts at the
keyframe at or before ``start_frame`` and drops the frames before it, so a chunk may start
anywhere, keyframe or not, and always yields exactly the frames asked for. The seam and gains
the frames are stitched with (the plan) are chosen beforehand from a few sampled frames
(`activities.stitch.samples`).

Four threads share the work: one decoder per recording, the caller's thread stitching, and one
feeding the encoder. PyAV's decode and encode calls, ``cv2.remap`` and the native stitcher all
release the GIL, so they overlap on the worker's cores; bounded queues between them cap memory
at a few frames each.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
import numpy.typing as npt

from activities.stitch.stitch_plan import StitchPlan, stitch_frame
from polyvision.media.writer import VideoWriter

UInt8Array = npt.NDArray[np.uint8]
T = TypeVar("T")

# Frames buffered between two threads: enough to absorb jitter, few enough for 4K panoramas.
_QUEUE_FRAMES = 4
# How often a blocked thread wakes to see whether the others have given up, seconds.
_POLL_S = 0.1


class StitchChunkError(RuntimeError):
    """A recording cannot give the chunk's frames (too short, a gap in its timestamps)."""


@dataclass(frozen=True)
class StitchChunkResult:
    """What `stitch_chunk` wrote.

    Attributes:
        frames: Panorama frames written (``end_frame - start_frame``).
        out_path: The panorama chunk (H.264 MP4).
        sha256: Hex digest of the file's bytes.
    """

    frames: int
    out_path: Path
    sha256: str


class _Stopped(Exception):
    """Another thread of the chunk failed; this one stops quietly."""


class _Pipe:
    """A bounded queue whose ends give up when the chunk is stopped (an error elsewhere)."""

    _END = object()

    def __init__(self, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_FRAMES)
        self._stop = stop

    def put(self, item: object) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(self._END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is self._END:
                return
            yield item


@dataclass(frozen=True)
class FrameClock:
    """Frame index <-> presentation time of a video stream (index counted from its start)."""

    rate: Fraction
    time_base: Fraction
    origin: int

    @classmethod
    def of(cls, path: Path, stream: Any) -> FrameClock:
        """The clock of ``path``'s video ``stream``.

        Raises:
            StitchChunkError: The stream has no frame rate or time base.
        """
        rate = stream.average_rate or stream.guessed_rate
        if not rate or stream.time_base is None:
            raise StitchChunkError(f"{path.name}: the video stream has no frame rate")
        return cls(Fraction(rate), Fraction(stream.time_base), stream.start_time or 0)

    def index(self, pts: int) -> int:
        """The frame index shown at ``pts``."""
        return round((pts - self.origin) * self.time_base * self.rate)

    def pts(self, index: int) -> int:
        """The presentation time of frame ``index``."""
        return self.origin + round(Fraction(index) / self.rate / self.time_base)


def decode_frames(
    path: Path,
    start_frame: int,
    end_frame: int,
    decode_from: int | None = None,
    *,
    allow_short: bool = False,
) -> Iterator[UInt8Array]:
    """Yield the BGR frames ``[start_frame, end_frame)`` of a recording.

    The frame index of a decoded frame is its presentation time times the stream's frame rate,
    counted from the stream's start, so B-frame reordering and seeking cannot shift the count.

    Args:
        path: The recording.
        start_frame: First frame to yield.
        end_frame: One past the last frame to yield.
        decode_from: Index of a keyframe at or before ``start_frame`` to start decoding from
            (ingest's probe knows them); ``None``: the demuxer's keyframe at or before
            ``start_frame``.
        allow_short: A recording ending before ``end_frame`` just ends the frames (instead of
            raising).

    Raises:
        StitchChunkError: The recording ends early (unless ``allow_short``) or skips or repeats
            a frame.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        clock = FrameClock.of(path, stream)
        index_of = clock.index

        def frames_from(target: int) -> Iterator[av.VideoFrame]:
            # backward=True: the keyframe at or before the target time.
            container.seek(clock.pts(target), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise StitchChunkError(f"{path.name}: a frame has no timestamp")
                yield frame

        target = start_frame if decode_from is None else decode_from
        frames = frames_from(target)
        first = next(frames, None)
        if first is not None and index_of(first.pts or 0) > start_frame:
            # The demuxer landed after the start (an index without that keyframe): decode from
            # the beginning instead, slower but exact.
            frames = frames_from(0)
            first = next(frames, None)
        expected = start_frame
        pending = [] if first is None else [first]
        for frame in _chain(pending, frames):
            index = index_of(frame.pts or 0)
            if index < expected:
                continue
            if index != expected:
                raise StitchChunkError(
                    f"{path.name}: expected frame {expected}, the next decoded is {index}"
                )
            yield np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
            expected += 1
            if expected == end_frame:
                return
        if allow_short:
            return
        raise StitchChunkError(
            f"{path.name}: ends at frame {expected}, the chunk needs frames up to {end_frame - 1}"
        )


def shifted_frames(
    path: Path,
    start_frame: int,
    end_frame: int,
    offset: int,
    decode_from: int | None = None,
) -> Iterator[UInt8Array]:
    """Yield frames ``[start_frame + offset, end_frame + offset)`` of a recording, clamped.

    Where the shifted range runs off the recording, its first (or last) frame stands in: the
    panorama's right half holds still for those frames rather than going black. Exactly
    ``end_frame - start_frame`` frames come out. The recording must hold the unshifted range
    ``[start_frame, end_frame)`` (ingest checked both recordings are equally long), so at most
    ``|offset|`` frames are repeated, at the start of the match (offset < 0) or at its end
    (offset > 0).

    Args:
        path: The recording (the right one; ``offset`` is the pair's frame offset).
        start_frame: First frame of the chunk, in the left recording's numbering.
        end_frame: One past its last frame.
        offset: Added to each frame index.
        decode_from: A keyframe at or before ``start_frame`` (ingest's chunk plan); used when
            it is also at or before the first frame decoded, else the demuxer seeks.

    Raises:
        StitchChunkError: The recording does not hold the unshifted range or skips a frame.
    """
    if offset == 0:
        yield from decode_frames(path, start_frame, end_frame, decode_from)
        return
    first, last = start_frame + offset, end_frame + offset
    # Decode from the first wanted frame that exists: frame 0 for a range starting before the
    # recording, at the latest the chunk's own last frame (which the recording holds).
    low = min(max(first, 0), end_frame - 1)
    if decode_from is not None and decode_from > low:
        decode_from = None
    frames = decode_frames(path, low, max(last, low + 1), decode_from, allow_short=True)
    current: UInt8Array | None = None
    index = low - 1
    for target in range(first, last):
        while index < max(target, low):
            following = next(frames, None)
            if following is None:
                break  # past the recording's end: its last frame stands
            current, index = following, index + 1
        if current is None or index < min(target, end_frame - 1):
            raise StitchChunkError(
                f"{path.name}: ends at frame {index + 1}, the chunk needs frames up to "
                f"{end_frame - 1}"
            )
        yield current


def _chain(head: list[T], tail: Iterator[T]) -> Iterator[T]:
    yield from head
    yield from tail


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stitch_chunk(
    left_path: Path,
    right_path: Path,
    start_frame: int,
    end_frame: int,
    plan: StitchPlan,
    out_path: Path,
    fps: float,
    decode_from_left: int | None = None,
    decode_from_right: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    encoder_threads: int = 0,
    right_offset: int = 0,
) -> StitchChunkResult:
    """Stitch frames ``[start_frame, end_frame)`` of both recordings into one panorama chunk.

    Args:
        left_path: The left camera's recording.
        right_path: The right camera's recording (its frame ``i + right_offset`` with left ``i``).
        start_frame: First frame of the chunk (need not be a keyframe).
        end_frame: One past the last frame of the chunk.
        plan: The chunk's stitch plan: the rig's maps with the chunk's seam and gains
            (`activities.stitch.stitch_plan`).
        out_path: Where to write the H.264 MP4 panorama (replaced if present).
        fps: Frame rate of the recordings and of the panorama.
        decode_from_left: A keyframe index at or before ``start_frame`` in the left recording;
            ``None``: found by seeking.
        decode_from_right: The same for the right recording.
        on_progress: Called with the number of frames done after each frame is handed to the
            encoder, from the calling thread (so an activity can heartbeat).
        crf: x264 quality of the panorama.
        preset: x264 preset.
        encoder_threads: x264 threads (0: FFmpeg decides from the cores).
        right_offset: The pair's frame offset (ingest's ``frame_offset``): left frame ``i`` is
            stitched with right frame ``i + right_offset`` (`shifted_frames` for the ends).

    Returns:
        The frame count, path and digest of the written chunk.

    Raises:
        ValueError: The frame range is empty or ``decode_from_*`` is after ``start_frame``.
        StitchChunkError: A recording cannot give the chunk's frames.
    """
    if not 0 <= start_frame < end_frame:
        raise ValueError(f"empty or negative frame range [{start_frame}, {end_frame})")
    for name, decode_from in (("left", decode_from_left), ("right", decode_from_right)):
        if decode_from is not None and not 0 <= decode_from <= start_frame:
            raise ValueError(f"decode_from_{name}={decode_from} is not in [0, {start_frame}]")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    errors: list[BaseException] = []
    left_pipe, right_pipe, encode_pipe = _Pipe(stop), _Pipe(stop), _Pipe(stop)
    # Keyframe every second: the chunk is one file, and a second is what the player and the
    # detector's seeks inside it need.
    writer = VideoWriter(
        out_path,
        plan.width,
        plan.height,
        fps,
        crf=crf,
        preset=preset,
        gop=max(1, round(fps)),
        threads=encoder_threads,
    )

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except _Stopped:
                pass
            except BaseException as error:  # handed to the calling thread, which re-raises
                errors.append(error)
                stop.set()

        return run

    def decode(
        path: Path, pipe: _Pipe, decode_from: int | None, offset: int = 0
    ) -> Callable[[], None]:
        def body() -> None:
            for frame in shifted_frames(path, start_frame, end_frame, offset, decode_from):
                pipe.put(frame)
            pipe.close()

        return body

    def encode() -> None:
        with writer:
            for panorama in encode_pipe:
                writer.write(panorama)

    threads = [
        threading.Thread(target=guarded(body), name=f"stitch-{name}", daemon=True)
        for name, body in (
            ("decode-left", decode(left_path, left_pipe, decode_from_left)),
            ("decode-right", decode(right_path, right_pipe, decode_from_right, right_offset)),
            ("encode", encode),
        )
    ]
    for thread in threads:
        thread.start()
    done = 0
    try:
        try:
            for left, right in zip(left_pipe, right_pipe, strict=True):
                encode_pipe.put(stitch_frame(left, right, plan))
                done += 1
                if on_progress is not None:
                    on_progress(done)
            encode_pipe.close()
        except _Stopped:
            pass
        except BaseException:
            stop.set()
            raise
        finally:
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        if done != end_frame - start_frame or writer.frames_written != done:
            raise StitchChunkError(f"stitched {done} frames, expected {end_frame - start_frame}")
    except BaseException:
        # A partial chunk must not look like a finished one to a later attempt.
        out_path.unlink(missing_ok=True)
        raise
    return StitchChunkResult(frames=done, out_path=out_path, sha256=_sha256(out_path))
