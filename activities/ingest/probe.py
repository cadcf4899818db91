"""Probing one recording: codec, geometry, exact frame count, keyframes, and truncation checks.

Everything here reads a local file with PyAV (FFmpeg inside) and is pure: no Temporal, no object
store. The probe demuxes every video packet (cheap: no decoding) to count frames exactly and find
the keyframes, then decodes only the last group of pictures to prove the end of the file is whole.

How a truncated recording is recognised (each check catches a case the others miss):

1. The container cannot be opened. An MP4 written the usual way has its index (``moov``) at the
   end, so an MP4 cut anywhere loses it and FFmpeg refuses the file.
2. A packet is flagged corrupt or reaches past the end of the file. An MP4 with its index first
   ("faststart", fragmented) keeps opening; its last sample is cut short.
3. Fewer packets than the container's sample table declares (MP4 ``stsz``).
4. The packets end well before the duration the muxer wrote (the MP4 video track's duration,
   Matroska's segment duration): a Matroska file cut on a block boundary is otherwise
   self-consistent.
5. Decoding the last group of pictures fails or yields fewer frames than it has packets: damage the
   demuxer cannot see (a cut or garbled payload inside a packet).

What no probe can see: a stream format without an index or declared length (MPEG-TS, an unfinished
Matroska file) cut exactly between two frames is a valid, shorter recording. The upload session's
declared frame count (`contracts.ExpectedRecording`) catches that case.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

MiB = 1024 * 1024

# A declared duration may exceed the packets' span by rounding (one frame's worth at most in the
# files we have seen); more than this is missing video.
_DURATION_SLACK_FRAMES = 1.5
# The container-level duration covers every stream (audio may run a little past the video), so
# when only that is known, allow this much more before calling the video truncated.
_CONTAINER_DURATION_SLACK_S = 0.25
# Demuxer names (FFmpeg's) of the containers whose header carries the duration the muxer wrote.
_DECLARES_DURATION = frozenset({"mov", "mp4", "matroska", "webm"})
# Seeking to the last keyframe retries this many times, stepping back 2, 4, 8... seconds, before
# decoding the whole file instead.
_SEEK_BACKOFF_S = 2.0
_SEEK_ATTEMPTS = 5


class InvalidRecordingError(ValueError):
    """A file is not a usable recording: not a video, empty, truncated or corrupt.

    The message names the file and what is wrong with it.
    """


@dataclass(frozen=True)
class VideoProbe:
    """What ingest knows about one recording after probing it.

    Attributes:
        path: The probed file.
        size_bytes: File size.
        codec: FFmpeg codec name of the video stream (``h264``, ``hevc``, ...).
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frame rate as an exact rational (25, 30000/1001, ...).
        frame_count: Exact number of video frames (demuxed packets, not the container's estimate).
        duration_s: Span of the video frames in seconds (first frame's start to last frame's end).
        keyframes: Presentation-order indices of the frames a decoder can start from, ascending;
            always starts with 0.
        has_audio: Whether the file also carries an audio stream.
        pix_fmt: FFmpeg pixel format (``yuv420p``, ``yuv420p10le``, ...).
        bit_depth: Bits per sample of the luma plane (8, 10, ...).
        sha256: Hex sha256 of the file when the probe was asked for it, else ``None``.
    """

    path: Path
    size_bytes: int
    codec: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration_s: float
    keyframes: list[int] = field(repr=False)
    has_audio: bool
    pix_fmt: str
    bit_depth: int
    sha256: str | None = None

    @property
    def fps_rational(self) -> str:
        """The frame rate as ``"num/den"`` (``"25/1"``, ``"30000/1001"``): exact and JSON-safe."""
        return f"{self.fps.numerator}/{self.fps.denominator}"


def sha256_file(path: str | os.PathLike[str], chunk: int = 8 * MiB) -> str:
    """Hex sha256 of a file, read in chunks so a 10 GB recording never sits in memory.

    Args:
        path: The file.
        chunk: Read size in bytes.

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_fps(rational: str) -> Fraction:
    """Parse a frame rate written as ``"num/den"`` (the inverse of `VideoProbe.fps_rational`)."""
    return Fraction(rational)


def probe_video(
    path: str | os.PathLike[str],
    *,
    with_sha256: bool = False,
    verify_decode: bool = True,
    label: str | None = None,
) -> VideoProbe:
    """Probe a recording and refuse it when it is not a whole, decodable video.

    Args:
        path: Local video file (any container FFmpeg reads: MP4, Matroska, MPEG-TS, ...).
        with_sha256: Also hash the file (one more sequential read) and fill `VideoProbe.sha256`.
        verify_decode: Decode the last group of pictures to prove the file's end is intact.
            Costs one GOP of decoding: 2.2-2.5 s on two cores for each 10 s, single-GOP 4K
            HEVC SoccerTrack file (demuxing alone takes 5 ms); a few frames' worth for
            recordings with a keyframe every second.
        label: How error messages name the file (the activity passes the object key, which
            means more to an operator than a scratch path); the path by default.

    Returns:
        The probe.

    Raises:
        InvalidRecordingError: the file is missing, empty, not a video container, has no video
            stream or no frames, does not start on a keyframe, or is truncated or corrupt. The
            message names the file and the problem.
    """
    path = Path(path)
    name = label or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidRecordingError(f"{name}: cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise InvalidRecordingError(f"{name}: the file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, EOFError, OSError) as exc:
        raise InvalidRecordingError(
            f"{name}: not a readable video container ({_ffmpeg_reason(exc)}); "
            "the file is not a video, or it is truncated (an MP4 cut short loses its index, "
            "the moov box, and cannot be opened)"
        ) from exc
    with container:
        if not container.streams.video:
            kinds = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams)
            raise InvalidRecordingError(
                f"{name}: contains no video stream (streams: {kinds or 'none'})"
            )
        stream = container.streams.video[0]
        codec = stream.codec_context
        pix_fmt = codec.pix_fmt
        if not pix_fmt or not codec.width or not codec.height:
            raise InvalidRecordingError(
                f"{name}: the video stream's pixel format or frame size is unknown "
                f"(codec {codec.name}, {codec.width}x{codec.height}, pix_fmt {pix_fmt})"
            )
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps or fps <= 0:
            raise InvalidRecordingError(f"{name}: the video stream has no frame rate")
        fps = Fraction(fps)

        packets = _demux_index(container, stream, name, size)
        if not packets.pts:
            raise InvalidRecordingError(f"{name}: the video stream contains no frames")
        frame_count = len(packets.pts)
        if stream.frames > frame_count:
            # MP4's sample table lists every frame; a shortfall means the data was cut off.
            raise InvalidRecordingError(
                f"{name}: truncated: the container declares {stream.frames} video frames but "
                f"only {frame_count} are present"
            )
        keyframes, duration_s = _keyframes_and_span(packets, stream.time_base, fps)
        if not keyframes or keyframes[0] != 0:
            first = f"frame {keyframes[0]}" if keyframes else "none"
            raise InvalidRecordingError(
                f"{name}: the first frame is not a keyframe (first keyframe: {first}); "
                "the recording cannot be decoded from its start"
            )
        _check_declared_duration(container, stream, name, duration_s, fps)
        if verify_decode:
            _decode_last_gop(container, stream, path, name, packets)

        has_audio = bool(container.streams.audio)
        bit_depth = av.VideoFormat(pix_fmt).components[0].bits

    return VideoProbe(
        path=path,
        size_bytes=size,
        codec=codec.name,
        width=codec.width,
        height=codec.height,
        fps=fps,
        frame_count=frame_count,
        duration_s=duration_s,
        keyframes=keyframes,
        has_audio=has_audio,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth,
        sha256=sha256_file(path) if with_sha256 else None,
    )


@dataclass
class _PacketIndex:
    """Per video packet, in demux (decode) order: pts, keyframe flag, duration."""

    pts: list[int | None] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)
    duration: list[int] = field(default_factory=list)


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(exc, EOFError):
        return "unexpected end of file"
    return str(exc)


def _demux_index(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    name: str,
    size: int,
) -> _PacketIndex:
    """Demux every video packet (no decoding) and refuse cut or corrupt packets."""
    index = _PacketIndex()
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream flush packet, not a frame
            number = len(index.pts)
            if packet.is_corrupt or (packet.pos is not None and packet.pos + packet.size > size):
                raise InvalidRecordingError(
                    f"{name}: truncated or corrupt: video packet {number} is incomplete "
                    f"(the file ends at byte {size})"
                )
            index.pts.append(packet.pts)
            index.keyframe.append(bool(packet.is_keyframe))
            index.duration.append(int(packet.duration or 0))
    except av.FFmpegError as exc:
        raise InvalidRecordingError(
            f"{name}: truncated or corrupt: reading video packet {len(index.pts)} failed "
            f"({_ffmpeg_reason(exc)})"
        ) from exc
    return index


def _keyframes_and_span(
    packets: _PacketIndex, time_base: Fraction | None, fps: Fraction
) -> tuple[list[int], float]:
    """Keyframe indices in presentation order, and the frames' span in seconds.

    Packets arrive in decode order; with B-frames (both SoccerTrack files) or open GOPs that is
    not display order, so a keyframe's frame index is the rank of its pts among all pts.
    """
    count = len(packets.pts)
    if time_base is None or any(pts is None for pts in packets.pts):
        # No usable timestamps (raw elementary streams): decode order is the best we have.
        return [i for i, key in enumerate(packets.keyframe) if key], float(count / fps)
    pts = [int(p) for p in packets.pts if p is not None]
    order = sorted(range(count), key=lambda i: (pts[i], i))
    rank = {packet: frame for frame, packet in enumerate(order)}
    keyframes = sorted(rank[i] for i in range(count) if packets.keyframe[i])
    last = order[-1]
    frame_ticks = packets.duration[last] or round(1 / (fps * time_base))
    span = float((pts[last] + frame_ticks - pts[order[0]]) * time_base)
    return keyframes, span


def _check_declared_duration(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    name: str,
    duration_s: float,
    fps: Fraction,
) -> None:
    """Refuse a file whose frames end well before the duration its header declares.

    Only containers whose muxer writes the duration (MP4/MOV, Matroska/WebM) are checked: for the
    others FFmpeg estimates one (from the last timestamps, or from the bitrate for raw streams),
    which proves nothing and, from the bitrate, can be far off.
    """
    if not _DECLARES_DURATION & set(container.format.name.split(",")):
        return  # MPEG-TS, raw streams: see the module docstring
    slack = _DURATION_SLACK_FRAMES / float(fps)
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:
        declared = container.duration / av.time_base
        if len(container.streams) > 1:
            slack += _CONTAINER_DURATION_SLACK_S
    else:
        return  # an unfinished Matroska file has no duration: see the module docstring
    if duration_s + slack < declared:
        raise InvalidRecordingError(
            f"{name}: truncated: the container declares {declared:.3f} s of video but the "
            f"frames end at {duration_s:.3f} s"
        )


def _decode_last_gop(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    path: Path,
    name: str,
    packets: _PacketIndex,
) -> None:
    """Decode from the last keyframe to the end; refuse decode errors or frames that go missing.

    Decoding is the only check that looks inside the packets. Only the last GOP is decoded: a
    truncation always damages the end, and one GOP bounds the cost. Frames are counted from the
    keyframe's timestamp on, in display order, because the pictures that follow an open-GOP
    keyframe in decode order but display before it (HEVC RASL) need the previous GOP and are
    dropped after a seek; they belong to the previous GOP, which the count leaves out too.
    """
    key = max(i for i, is_key in enumerate(packets.keyframe) if is_key)
    key_pts, time_base = packets.pts[key], stream.time_base
    if key_pts is None or time_base is None:
        key, key_pts = 0, None  # no timestamps to seek by: decode everything
    expected = sum(
        1 for pts in packets.pts if key_pts is None or (pts is not None and pts >= key_pts)
    )
    stream.thread_type = "AUTO"  # frame threads: the check is pure CPU, use every core
    decoded: int | None = None
    try:
        if key > 0 and key_pts is not None and time_base is not None:
            # Seeks by timestamp are exact in indexed containers (MP4, Matroska) but MPEG-TS
            # seeks by byte position and may land past the keyframe: then step further back.
            step = max(1, round(_SEEK_BACKOFF_S / time_base))
            for attempt in range(_SEEK_ATTEMPTS):
                back = 0 if attempt == 0 else step * 2 ** (attempt - 1)
                decoded = _decode_tail(container, stream, key_pts - back, key_pts)
                if decoded is not None:
                    break
        if decoded is None:
            with av.open(str(path), mode="r") as fresh:
                video = fresh.streams.video[0]
                video.thread_type = "AUTO"
                decoded = _decode_tail(fresh, video, None, key_pts)
    except av.FFmpegError as exc:
        raise InvalidRecordingError(
            f"{name}: truncated or corrupt: decoding the last group of pictures (from packet "
            f"{key} in decode order) failed ({_ffmpeg_reason(exc)})"
        ) from exc
    if decoded is None or decoded < expected:
        raise InvalidRecordingError(
            f"{name}: truncated or corrupt: the last group of pictures has {expected} frames "
            f"but only {decoded or 0} decode"
        )


def _decode_tail(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    seek_pts: int | None,
    key_pts: int | None,
) -> int | None:
    """Count the frames shown at or after `key_pts`, decoding from the keyframe shown there.

    Seeks to `seek_pts` first (None: decode from where the container is, its start, and count
    every frame when `key_pts` is None too). Packets before the keyframe are skipped. Returns None
    when the keyframe never came: the seek landed past it.
    """
    if seek_pts is not None:
        # backward: the keyframe at or before the timestamp (demuxing the index left the file at
        # its end, so a seek is needed in any case).
        container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
    decoded = 0
    started = key_pts is None
    for packet in container.demux(stream):
        if not started:
            # Matched by pts: after a seek, Matroska leaves the first packets' dts unset.
            if not (packet.size and packet.is_keyframe and packet.pts == key_pts):
                continue  # an earlier GOP (the seek landed before the keyframe)
            started = True
        for frame in stream.decode(packet):
            decoded += key_pts is None or frame.pts is None or frame.pts >= key_pts
    return decoded if started else None
