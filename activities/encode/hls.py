"""Packaging per-chunk H.264 MP4s into HLS VOD renditions without re-encoding.

The vcam stage writes one H.264 MP4 per chunk, each starting on a keyframe. This module
stream-copies them, in order, into CMAF (fragmented MP4) segments with FFmpeg's ``hls``
muxer (through PyAV), so that the packaging stage costs I/O only.

Layout written to ``out_dir``::

    master.m3u8        one variant (BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE, CODECS)
    media.m3u8         VOD media playlist (#EXT-X-PLAYLIST-TYPE:VOD ... #EXT-X-ENDLIST)
    init.mp4           the CMAF initialisation segment (#EXT-X-MAP)
    seg_00000.m4s ...  media segments

Segment boundaries fall on chunk boundaries. FFmpeg's muxer cuts at the first keyframe at or
after ``hls_time`` times the segment number, counted from the start of the whole stream, so
with chunks of unequal length its own rule drifts off the chunk grid. We therefore choose the
cut points ourselves (every chunk start, plus keyframes inside a chunk when
``segment_seconds`` asks for shorter segments), leave the keyframe flag only on the packets
that start a segment, and give the muxer a tiny ``hls_time`` so that it cuts at each of
those and nowhere else. The only side effect is that keyframes inside a segment are not
marked as sync samples in the fragment; players fetch and decode whole segments, so they
lose nothing. After muxing, the written playlist is read back and its ``#EXTINF`` durations
are checked against the planned cuts.

`package_rendition` writes one rendition without the master playlist, optionally cut at
given instants: a ladder (`activities.encode.ladder`) cuts all its renditions at the
keyframes they share (`plan_cuts`), so their segments line up.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.packet import Packet
from av.video.stream import VideoStream

from activities.encode.contracts import MASTER_PLAYLIST, MEDIA_PLAYLIST
from polyvision.media.h264 import avc1_codecs

#: File names inside ``out_dir``; fixed so that a retried activity overwrites its own output.
INIT_SEGMENT = "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"

#: Content type of each file written, by suffix. Set explicitly: Python's mimetypes does not
#: know the HLS and CMAF extensions everywhere.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}

# A muxer cut target far below one frame: the muxer then cuts at every packet flagged as a
# keyframe, and the flags (set by us) alone decide the segment boundaries.
_MUXER_HLS_TIME = "0.001"

_EXTINF = re.compile(r"#EXTINF:([0-9.]+),")


@dataclass(frozen=True)
class HlsResult:
    """What `package_hls` wrote.

    Attributes:
        master_playlist: ``master.m3u8``: the entry point handed to viewers.
        media_playlist: ``media.m3u8``: the single rendition's VOD playlist.
        segments: Media segments in playlist order.
        duration_s: Sum of the segments' ``#EXTINF`` durations in seconds.
        init_segment: The CMAF initialisation segment named by ``#EXT-X-MAP``.
        segment_durations_s: Each segment's ``#EXTINF`` duration, in playlist order.
    """

    master_playlist: Path
    media_playlist: Path
    segments: list[Path]
    duration_s: float
    init_segment: Path | None = None
    segment_durations_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class RenditionResult:
    """What `package_rendition` wrote: one rendition's media playlist, init and segments.

    Attributes:
        media_playlist: Its VOD media playlist.
        init_segment: The CMAF initialisation segment named by ``#EXT-X-MAP``.
        segments: Media segments in playlist order.
        segment_durations_s: Each segment's ``#EXTINF`` duration, in playlist order.
        duration_s: Sum of the durations.
        width: Pixels.
        height: Pixels.
        frame_rate: Frames per second, when the stream states one.
        codecs: RFC 6381 ``CODECS`` value (`avc1_codecs`).
        frames: Frames packaged.
    """

    media_playlist: Path
    init_segment: Path
    segments: list[Path]
    segment_durations_s: tuple[float, ...]
    duration_s: float
    width: int
    height: int
    frame_rate: Fraction | None
    codecs: str
    frames: int


@dataclass(frozen=True)
class ChunkKeyframes:
    """Where a chunk's keyframes are, to plan segment cuts common to several renditions.

    Attributes:
        frames: Frames in the chunk.
        duration: Its duration in seconds.
        keyframes: Each keyframe's time from the chunk's first frame, in seconds, ascending
            (the first is 0).
    """

    frames: int
    duration: Fraction
    keyframes: tuple[Fraction, ...]


@dataclass(frozen=True)
class _StreamInfo:
    """The first chunk's stream parameters, copied out before its container closes."""

    codec: str
    width: int
    height: int
    extradata: bytes
    time_base: Fraction
    frame_rate: Fraction | None

    @classmethod
    def of(cls, stream: VideoStream, path: Path) -> _StreamInfo:
        if stream.time_base is None:
            raise ValueError(f"{path}: video stream without a time base")
        context = stream.codec_context
        return cls(
            codec=context.name,
            width=context.width,
            height=context.height,
            extradata=bytes(context.extradata or b""),
            time_base=Fraction(stream.time_base),
            frame_rate=Fraction(stream.average_rate) if stream.average_rate else None,
        )

    @property
    def frame_ticks(self) -> int:
        """One frame's duration in time base units (1 when the rate is unknown)."""
        if not self.frame_rate:
            return 1
        return max(1, round(1 / (self.frame_rate * self.time_base)))


@dataclass(frozen=True)
class _Chunk:
    """One input chunk's packets, already read, in decode order."""

    packets: list[Packet[VideoStream]]
    start: int  # smallest pts, in the stream time base
    end: int  # largest pts + duration, in the stream time base


def package_hls(
    chunk_paths: list[Path], out_dir: Path, segment_seconds: float | None = None
) -> HlsResult:
    """Remux per-chunk H.264 MP4s into one HLS VOD rendition of CMAF segments.

    No frame is decoded or re-encoded: packets are copied, with their timestamps shifted by
    the running duration of the chunks before them, so time runs on without a gap or a
    discontinuity across chunks.

    Args:
        chunk_paths: The chunks' MP4 files in playback order. Each holds one H.264 video
            stream starting on a keyframe; all share resolution, codec parameters (SPS/PPS)
            and time base, as the vcam stage writes them.
        out_dir: Output directory (created). Files of an earlier run with the same names are
            replaced; stale segments beyond the new count are removed.
        segment_seconds: None: one segment per chunk. Otherwise chunks are split further at
            their keyframes into segments of at least this many seconds (the last segment of
            a chunk may be shorter); a segment never spans two chunks.

    Returns:
        The playlists, segments and total duration.

    Raises:
        ValueError: No chunks, a chunk without video or not starting on a keyframe, chunks
            whose stream parameters differ, or a non-positive ``segment_seconds``.
        RuntimeError: The written playlist does not match the planned segment boundaries.
    """
    result = package_rendition(chunk_paths, out_dir, segment_seconds=segment_seconds)
    sizes = [segment.stat().st_size for segment in result.segments]
    peak, average = bandwidths(sizes, result.segment_durations_s)
    attributes = [
        f"BANDWIDTH={peak}",
        f"AVERAGE-BANDWIDTH={average}",
        f"RESOLUTION={result.width}x{result.height}",
    ]
    if result.frame_rate:
        attributes.append(f"FRAME-RATE={float(result.frame_rate):.3f}")
    attributes.append(f'CODECS="{result.codecs}"')
    (out_dir / MASTER_PLAYLIST).write_text(
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        f"#EXT-X-STREAM-INF:{','.join(attributes)}\n"
        f"{MEDIA_PLAYLIST}\n"
    )
    return HlsResult(
        master_playlist=out_dir / MASTER_PLAYLIST,
        media_playlist=result.media_playlist,
        segments=result.segments,
        duration_s=result.duration_s,
        init_segment=result.init_segment,
        segment_durations_s=result.segment_durations_s,
    )


def package_rendition(
    chunk_paths: list[Path],
    out_dir: Path,
    *,
    segment_seconds: float | None = None,
    cut_times: list[list[Fraction]] | None = None,
) -> RenditionResult:
    """Remux per-chunk H.264 MP4s into one rendition: media playlist, init and segments.

    The same remux as `package_hls`, without a master playlist: a ladder writes its own over
    several renditions.

    Args:
        chunk_paths: The chunks' MP4 files in playback order (as for `package_hls`).
        out_dir: Output directory (created); an earlier run's files there are replaced.
        segment_seconds: As for `package_hls`; ignored when ``cut_times`` is given.
        cut_times: Per chunk, the times (seconds from the chunk's first frame) where a
            segment starts besides the chunk's start; each must be a keyframe's, within half
            a frame. Lets several renditions be cut at the same instants (`plan_cuts`).

    Returns:
        The media playlist, init and segments, and the stream's parameters.

    Raises:
        ValueError: As for `package_hls`; also ``cut_times`` of another length than the
            chunks, or naming a time where the chunk has no keyframe.
        RuntimeError: The written playlist does not match the planned segment boundaries.
    """
    if not chunk_paths:
        raise ValueError("no chunks to package")
    if segment_seconds is not None and segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    if cut_times is not None and len(cut_times) != len(chunk_paths):
        raise ValueError(f"{len(cut_times)} cut lists for {len(chunk_paths)} chunks")
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous_output(out_dir)
    # Check every chunk before writing anything: one init segment (SPS/PPS, size, timescale)
    # serves all segments, so the chunks must agree; a change would need a discontinuity
    # and a new #EXT-X-MAP.
    info = _probe(chunk_paths[0])
    for path in chunk_paths[1:]:
        if _probe(path) != info:
            raise ValueError(f"{path}: stream parameters differ from {chunk_paths[0]}'s")

    media_path = out_dir / MEDIA_PLAYLIST
    output = av.open(
        str(media_path),
        mode="w",
        format="hls",
        options={
            "hls_time": _MUXER_HLS_TIME,
            "hls_list_size": "0",
            "hls_playlist_type": "vod",
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": INIT_SEGMENT,
            # The muxer expands %d in the whole path: a literal % in out_dir must be doubled.
            "hls_segment_filename": str(out_dir).replace("%", "%%") + "/" + SEGMENT_PATTERN,
            "hls_flags": "independent_segments",
        },
    )
    planned: list[Fraction] = []  # planned segment durations in seconds
    frames = 0
    try:
        out_stream = None
        offset = 0  # running duration of the chunks written so far, in time_base units
        last_dts: int | None = None
        for index, path in enumerate(chunk_paths):
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                if out_stream is None:
                    out_stream = output.add_stream_from_template(stream)
                chunk = _read_chunk(container, stream, info, path)
            shift = offset - chunk.start
            if cut_times is None:
                cuts = _plan_cuts(chunk, info, segment_seconds)
            else:
                cuts = _cuts_at(chunk, info, cut_times[index], path)
            first_dts = chunk.packets[0].dts
            if last_dts is not None and first_dts is not None and first_dts + shift <= last_dts:
                # Only possible if chunks were encoded with different reordering delays.
                raise ValueError(f"{path}: decode times would overlap the previous chunk's")
            for packet in chunk.packets:
                assert packet.pts is not None and packet.dts is not None  # _read_chunk keeps these
                packet.is_keyframe = packet.pts in cuts
                packet.pts += shift
                packet.dts += shift
                last_dts = packet.dts
                packet.stream = out_stream
                output.mux(packet)
            bounds = [*sorted(cuts), chunk.end]
            planned.extend((b - a) * info.time_base for a, b in itertools.pairwise(bounds))
            offset += chunk.end - chunk.start
            frames += len(chunk.packets)
    finally:
        output.close()

    durations, names = _read_media_playlist(media_path)
    _check_against_plan(durations, planned, info)
    return RenditionResult(
        media_playlist=media_path,
        init_segment=out_dir / INIT_SEGMENT,
        segments=[out_dir / name for name in names],
        segment_durations_s=tuple(durations),
        duration_s=math.fsum(durations),
        width=info.width,
        height=info.height,
        frame_rate=info.frame_rate,
        codecs=avc1_codecs(info.extradata),
        frames=frames,
    )


def chunk_keyframes(path: Path) -> ChunkKeyframes:
    """Where a chunk's keyframes are (packets only: nothing is decoded).

    Raises:
        ValueError: The chunk is not one `package_rendition` accepts (no H.264 video, or not
            starting on a keyframe).
    """
    info = _probe(path)
    with av.open(str(path)) as container:
        chunk = _read_chunk(container, container.streams.video[0], info, path)
    keyframes = sorted(
        (p.pts - chunk.start) * info.time_base
        for p in chunk.packets
        if p.is_keyframe and p.pts is not None
    )
    return ChunkKeyframes(
        frames=len(chunk.packets),
        duration=(chunk.end - chunk.start) * info.time_base,
        keyframes=tuple(keyframes),
    )


def plan_cuts(
    renditions: list[list[ChunkKeyframes]], segment_seconds: float, frame_rate: Fraction
) -> list[list[Fraction]]:
    """Segment starts inside each chunk that every rendition can cut at.

    A cut needs a keyframe in every rendition at the same instant (within half a frame), so
    the renditions' segments stay aligned and a player can switch between them at any
    segment. Among those common keyframes, the segments are at least ``segment_seconds`` long,
    as `package_hls` cuts one rendition.

    Args:
        renditions: Per rendition, per chunk, its keyframes (`chunk_keyframes`).
        segment_seconds: The shortest segment wanted (the last of a chunk may be shorter).
        frame_rate: Frames per second (for the half-frame tolerance).

    Returns:
        Per chunk, the cut times after its start (seconds from its first frame), ascending.

    Raises:
        ValueError: A non-positive ``segment_seconds``, or renditions with different numbers
            of chunks.
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    if len({len(chunks) for chunks in renditions}) != 1:
        raise ValueError("the renditions have different numbers of chunks")
    half_frame = 1 / (2 * frame_rate)
    target = Fraction(segment_seconds) - half_frame
    plans: list[list[Fraction]] = []
    for chunk in zip(*renditions, strict=True):
        top, others = chunk[0], chunk[1:]
        common = [
            time
            for time in top.keyframes
            if time > 0
            and all(any(abs(time - other) < half_frame for other in o.keyframes) for o in others)
        ]
        cuts: list[Fraction] = []
        last = Fraction(0)
        for time in common:
            if time - last >= target:
                cuts.append(time)
                last = time
        plans.append(cuts)
    return plans


def bandwidths(sizes: list[int], durations: tuple[float, ...] | list[float]) -> tuple[int, int]:
    """``(peak, average)`` bit rates in bit/s of segments of ``sizes`` bytes lasting
    ``durations`` seconds: HLS's ``BANDWIDTH`` (the peak segment bit rate) and
    ``AVERAGE-BANDWIDTH``, measured from what was written rather than guessed."""
    peak = max(8 * size / duration for size, duration in zip(sizes, durations, strict=True))
    average = 8 * sum(sizes) / math.fsum(durations)
    return math.ceil(peak), math.ceil(average)


def _remove_previous_output(out_dir: Path) -> None:
    # A retried activity may write fewer segments than an earlier attempt: leftovers would
    # otherwise sit next to the new playlist and be uploaded with it.
    for name in (MASTER_PLAYLIST, MEDIA_PLAYLIST, INIT_SEGMENT):
        (out_dir / name).unlink(missing_ok=True)
    for stale in out_dir.glob("seg_*.m4s"):
        stale.unlink()


def _probe(path: Path) -> _StreamInfo:
    """A chunk's video stream parameters; it must hold H.264 video."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        info = _StreamInfo.of(container.streams.video[0], path)
    if info.codec != "h264":
        raise ValueError(f"{path}: only H.264 is packaged here, not {info.codec}")
    return info


def _read_chunk(
    container: av.container.InputContainer, stream: VideoStream, info: _StreamInfo, path: Path
) -> _Chunk:
    """Read a chunk's packets and check that it starts on a keyframe."""
    packets = [
        packet
        for packet in container.demux(stream)
        # The demuxer ends with an empty flush packet (no timestamps): nothing to copy.
        if packet.size and packet.pts is not None and packet.dts is not None
    ]
    if not packets:
        raise ValueError(f"{path}: no video packets")
    if not packets[0].is_keyframe:
        raise ValueError(f"{path}: does not start on a keyframe")
    start = min(p.pts for p in packets if p.pts is not None)
    if packets[0].pts != start:
        raise ValueError(f"{path}: the first keyframe is not the first frame shown")
    end = max(p.pts + (p.duration or info.frame_ticks) for p in packets if p.pts is not None)
    return _Chunk(packets=packets, start=start, end=end)


def _plan_cuts(chunk: _Chunk, info: _StreamInfo, segment_seconds: float | None) -> set[int]:
    """The pts (chunk time) of the keyframes that start a segment: always the chunk start."""
    cuts = {chunk.start}
    if segment_seconds is None:
        return cuts
    # Half a frame of slack: a keyframe every 25 frames at 25 fps must cut at exactly 1 s.
    target = Fraction(segment_seconds) / info.time_base - Fraction(info.frame_ticks, 2)
    last = chunk.start
    for packet in sorted(chunk.packets, key=lambda p: p.pts or 0):
        pts = packet.pts
        if pts is not None and packet.is_keyframe and pts - last >= target:
            cuts.add(pts)
            last = pts
    return cuts


def _cuts_at(chunk: _Chunk, info: _StreamInfo, times: list[Fraction], path: Path) -> set[int]:
    """The pts of the keyframes at ``times`` (seconds from the chunk start), and the start."""
    keyframes = sorted(p.pts for p in chunk.packets if p.is_keyframe and p.pts is not None)
    # Half a frame, in time base units.
    half_frame = Fraction(info.frame_ticks, 2)
    if info.frame_rate:
        half_frame = 1 / (2 * info.frame_rate * info.time_base)
    cuts = {chunk.start}
    for time in times:
        want = chunk.start + time / info.time_base
        pts = min(keyframes, key=lambda k: abs(k - want))
        if abs(pts - want) >= half_frame:
            raise ValueError(f"{path}: no keyframe at {float(time):.3f} s to cut at")
        cuts.add(pts)
    return cuts


def _read_media_playlist(path: Path) -> tuple[list[float], list[str]]:
    """The ``#EXTINF`` durations and segment URIs of a media playlist, in order."""
    durations: list[float] = []
    names: list[str] = []
    pending: float | None = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if match := _EXTINF.match(line):
            pending = float(match.group(1))
        elif line and not line.startswith("#") and pending is not None:
            durations.append(pending)
            names.append(line)
            pending = None
    return durations, names


def _check_against_plan(durations: list[float], planned: list[Fraction], info: _StreamInfo) -> None:
    # The muxer's cutting rule is an FFmpeg internal; if a future FFmpeg changed it, fail
    # here rather than publish segments that straddle chunk boundaries. Half a frame of
    # tolerance: #EXTINF is printed with six decimals.
    rate = info.frame_rate
    tolerance = 0.5 / float(rate) if rate else float(info.time_base)
    if len(durations) != len(planned) or any(
        abs(got - float(want)) > tolerance for got, want in zip(durations, planned, strict=True)
    ):
        raise RuntimeError(
            f"HLS muxer wrote segments {durations}, planned {[float(d) for d in planned]}"
        )
