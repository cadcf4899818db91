"""One set of CMAF segments per rendition, described for HLS and for DASH.

`package_ladder` remuxes each rendition's chunk MP4s (`activities.encode.hls.package_rendition`:
no re-encoding) into its own folder of CMAF segments, cut at the same instants in every
rendition, then writes, over those very files:

- per rendition, the HLS media playlist (version 7, ``EXT-X-MAP``, ``EXT-X-INDEPENDENT-SEGMENTS``;
  written by the muxer) and an I-frame playlist (``EXT-X-I-FRAMES-ONLY``: each segment's first
  fragment header and keyframe, as an ``EXT-X-BYTERANGE`` of the segment);
- the HLS master playlist: an ``EXT-X-STREAM-INF`` per rendition with BANDWIDTH (the peak
  segment bit rate), AVERAGE-BANDWIDTH, CODECS, RESOLUTION and FRAME-RATE, and an
  ``EXT-X-I-FRAME-STREAM-INF`` per rendition;
- a static DASH MPD: one video AdaptationSet, a Representation per rendition (codecs,
  bandwidth, width, height, frameRate) whose SegmentTemplate (``$Number$`` with a
  SegmentTimeline) names the same ``init.mp4`` and ``seg_NNNNN.m4s`` files.

The MPD's timing is read back from the segments (`activities.encode.cmaf`): the timeline's
times are each segment's earliest presentation time in the track's timescale, and the
``presentationTimeOffset`` maps the first one to the period's start, so a DASH player and an
HLS player put every frame at the same instant.
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from activities.encode.cmaf import init_timescale, read_segment
from activities.encode.contracts import (
    DASH_MANIFEST,
    IFRAME_PLAYLIST,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    RESERVED_NAMES,
)
from activities.encode.hls import (
    SEGMENT_PATTERN,
    RenditionResult,
    bandwidths,
    chunk_keyframes,
    package_rendition,
    plan_cuts,
)

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
DASH_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# The DASH template of the muxer's segment names (seg_%05d.m4s).
_MEDIA_TEMPLATE = "seg_$Number%05d$.m4s"


@dataclass(frozen=True)
class LadderRendition:
    """One rendition to package: its name (its folder) and its chunks in playback order."""

    name: str
    chunk_paths: list[Path]


@dataclass(frozen=True)
class PackagedStream:
    """One packaged rendition and what the manifests say about it.

    Attributes:
        name: The rendition's name.
        folder: Its folder relative to the package (``""`` for a flat, one-rendition package).
        result: What the remux wrote.
        timescale: The track's media timescale (ticks per second).
        timeline: Per segment, ``(earliest presentation time, duration)`` in the timescale.
        iframe_ranges: Per segment, ``(offset, length)`` of its first fragment header and
            keyframe.
        bandwidth: Peak segment bit rate, bit/s.
        average_bandwidth: Mean bit rate, bit/s.
        iframe_bandwidth: Peak bit rate of the I-frame playlist, bit/s.
        iframe_average_bandwidth: Its mean bit rate, bit/s.
    """

    name: str
    folder: str
    result: RenditionResult
    timescale: int
    timeline: list[tuple[int, int]]
    iframe_ranges: list[tuple[int, int]]
    bandwidth: int
    average_bandwidth: int
    iframe_bandwidth: int
    iframe_average_bandwidth: int

    def relative(self, name: str) -> str:
        """A file of this rendition, relative to the package."""
        return f"{self.folder}/{name}" if self.folder else name


@dataclass(frozen=True)
class LadderResult:
    """What `package_ladder` wrote.

    Attributes:
        master_playlist: The HLS master playlist.
        dash_manifest: The DASH MPD.
        streams: The renditions, in the order given (top first).
        duration_s: The duration in seconds (the top rendition's).
        segments: Segments per rendition.
        files: Every file written, relative to the package folder.
    """

    master_playlist: Path
    dash_manifest: Path
    streams: list[PackagedStream]
    duration_s: float
    segments: int
    files: list[str]


def package_ladder(
    renditions: list[LadderRendition],
    out_dir: Path,
    *,
    segment_seconds: float | None = None,
    flat: bool = False,
) -> LadderResult:
    """Package renditions of the same chunks into CMAF segments with HLS and DASH manifests.

    Args:
        renditions: Top first; each with the same number of chunks, the chunks of one index
            holding the same frames (the vcam stage renders every rendition from one frame).
        out_dir: The package folder (created): ``master.m3u8``, ``manifest.mpd`` and one
            folder per rendition (named as it is).
        segment_seconds: None: one segment per chunk. Otherwise chunks are also cut at
            keyframes every rendition has, into segments of at least this length.
        flat: One rendition whose files go straight into ``out_dir`` (no folder of its own).

    Returns:
        The manifests, the per-rendition figures and the files written.

    Raises:
        ValueError: No renditions, bad or repeated names, ``flat`` with several renditions,
            renditions with different numbers of chunks or frames, or segments that do not
            line up across renditions; anything `package_rendition` refuses.
        RuntimeError: The muxer wrote segments other than planned.
    """
    _check_names(renditions, flat)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (MASTER_PLAYLIST, DASH_MANIFEST):
        (out_dir / name).unlink(missing_ok=True)
    cut_times = None
    if segment_seconds is not None:
        keyframes = [[chunk_keyframes(p) for p in r.chunk_paths] for r in renditions]
        for chunks in zip(*keyframes, strict=True):
            if len({chunk.frames for chunk in chunks}) != 1:
                raise ValueError("a chunk has different frame counts in different renditions")
        frame_rate = Fraction(keyframes[0][0].frames) / keyframes[0][0].duration
        cut_times = plan_cuts(keyframes, segment_seconds, frame_rate)

    streams = []
    for rendition in renditions:
        folder = "" if flat else rendition.name
        directory = out_dir / folder if folder else out_dir
        (directory / IFRAME_PLAYLIST).unlink(missing_ok=True)
        result = package_rendition(
            rendition.chunk_paths,
            directory,
            segment_seconds=segment_seconds if cut_times is None else None,
            cut_times=cut_times,
        )
        streams.append(_describe(rendition.name, folder, result))
    _check_aligned(streams)

    for stream in streams:
        _write_iframe_playlist(out_dir / stream.relative(IFRAME_PLAYLIST), stream)
    master = out_dir / MASTER_PLAYLIST
    master.write_text(master_playlist(streams))
    mpd = out_dir / DASH_MANIFEST
    mpd.write_text(dash_manifest(streams))

    files = [
        *(
            stream.relative(path.name)
            for stream in streams
            for path in [stream.result.init_segment, *stream.result.segments]
        ),
        *(stream.relative(MEDIA_PLAYLIST) for stream in streams),
        *(stream.relative(IFRAME_PLAYLIST) for stream in streams),
        DASH_MANIFEST,
        MASTER_PLAYLIST,
    ]
    top = streams[0].result
    return LadderResult(master, mpd, streams, top.duration_s, len(top.segments), files)


def master_playlist(streams: list[PackagedStream]) -> str:
    """The HLS master playlist text: a variant and an I-frame stream per rendition."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for stream in streams:
        result = stream.result
        attributes = [
            f"BANDWIDTH={stream.bandwidth}",
            f"AVERAGE-BANDWIDTH={stream.average_bandwidth}",
            f'CODECS="{result.codecs}"',
            f"RESOLUTION={result.width}x{result.height}",
        ]
        if result.frame_rate:
            attributes.append(f"FRAME-RATE={float(result.frame_rate):.3f}")
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", stream.relative(MEDIA_PLAYLIST)]
    for stream in streams:
        result = stream.result
        attributes = [
            f"BANDWIDTH={stream.iframe_bandwidth}",
            f"AVERAGE-BANDWIDTH={stream.iframe_average_bandwidth}",
            f'CODECS="{result.codecs}"',
            f"RESOLUTION={result.width}x{result.height}",
            f'URI="{stream.relative(IFRAME_PLAYLIST)}"',
        ]
        lines.append(f"#EXT-X-I-FRAME-STREAM-INF:{','.join(attributes)}")
    return "\n".join(lines) + "\n"


def dash_manifest(streams: list[PackagedStream]) -> str:
    """The static DASH MPD text over the renditions' segments."""
    top = streams[0]
    duration = Fraction(sum(d for _, d in top.timeline), top.timescale)
    longest = max(Fraction(d, s.timescale) for s in streams for _, d in s.timeline)
    mpd = ET.Element(
        "MPD",
        {
            "xmlns": MPD_NAMESPACE,
            "profiles": DASH_PROFILE,
            "type": "static",
            "mediaPresentationDuration": _iso_duration(duration),
            "minBufferTime": _iso_duration(longest),
        },
    )
    period = ET.SubElement(mpd, "Period", {"id": "0", "start": "PT0S"})
    adaptation: dict[str, str] = {
        "id": "0",
        "contentType": "video",
        "mimeType": "video/mp4",
        "segmentAlignment": "true",
        "startWithSAP": "1",
        "maxWidth": str(max(s.result.width for s in streams)),
        "maxHeight": str(max(s.result.height for s in streams)),
    }
    rates = [s.result.frame_rate for s in streams if s.result.frame_rate]
    if rates:
        adaptation["maxFrameRate"] = _rate(max(rates))
    adaptation_set = ET.SubElement(period, "AdaptationSet", adaptation)
    for stream in streams:
        result = stream.result
        attributes = {
            "id": stream.name,
            "codecs": result.codecs,
            "bandwidth": str(stream.bandwidth),
            "width": str(result.width),
            "height": str(result.height),
            "sar": "1:1",
        }
        if result.frame_rate:
            attributes["frameRate"] = _rate(result.frame_rate)
        representation = ET.SubElement(adaptation_set, "Representation", attributes)
        template = ET.SubElement(
            representation,
            "SegmentTemplate",
            {
                "timescale": str(stream.timescale),
                "presentationTimeOffset": str(stream.timeline[0][0]),
                "initialization": stream.relative(stream.result.init_segment.name),
                "media": stream.relative(_MEDIA_TEMPLATE),
                "startNumber": "0",
            },
        )
        timeline = ET.SubElement(template, "SegmentTimeline")
        for start, length, repeat in _runs(stream.timeline):
            entry = {"t": str(start), "d": str(length)}
            if repeat:
                entry["r"] = str(repeat)
            ET.SubElement(timeline, "S", entry)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, "unicode") + "\n"


def _check_names(renditions: list[LadderRendition], flat: bool) -> None:
    if not renditions:
        raise ValueError("no renditions to package")
    if flat and len(renditions) != 1:
        raise ValueError("a flat package holds exactly one rendition")
    names = [rendition.name for rendition in renditions]
    if len(set(names)) != len(names):
        raise ValueError(f"rendition names repeat: {names}")
    for name in names:
        # Also the Representation's id; a folder only when not flat.
        if not _NAME.fullmatch(name) or (not flat and name in RESERVED_NAMES):
            raise ValueError(f"{name!r} cannot name a rendition's folder")
    if len({len(rendition.chunk_paths) for rendition in renditions}) != 1:
        raise ValueError("the renditions have different numbers of chunks")


def _describe(name: str, folder: str, result: RenditionResult) -> PackagedStream:
    """Read a rendition's segments back: timing for the MPD, byte ranges for I-frames."""
    for number, path in enumerate(result.segments):
        if path.name != SEGMENT_PATTERN % number:
            # The MPD's $Number$ template names the files: it must name these ones.
            raise RuntimeError(f"segment {number} is {path.name}, not {SEGMENT_PATTERN}")
    timescale = init_timescale(result.init_segment.read_bytes())
    parsed = [read_segment(segment.read_bytes()) for segment in result.segments]
    for fragments, path in zip(parsed, result.segments, strict=True):
        if not fragments.starts_with_sync_sample:
            raise RuntimeError(f"{path.name} does not start with a keyframe")
    starts = [segment.earliest_presentation_time for segment in parsed]
    # Each segment lasts until the next one starts (the last: its samples' durations), so
    # the timeline has no gap or overlap whatever the fragments' rounding.
    lengths = [b - a for a, b in itertools.pairwise(starts)] + [parsed[-1].duration]
    ranges = [segment.first_sample_range() for segment in parsed]
    durations = result.segment_durations_s
    peak, average = bandwidths([segment.size for segment in parsed], durations)
    iframe_peak, iframe_average = bandwidths([length for _, length in ranges], durations)
    return PackagedStream(
        name=name,
        folder=folder,
        result=result,
        timescale=timescale,
        timeline=list(zip(starts, lengths, strict=True)),
        iframe_ranges=ranges,
        bandwidth=peak,
        average_bandwidth=average,
        iframe_bandwidth=iframe_peak,
        iframe_average_bandwidth=iframe_average,
    )


def _check_aligned(streams: list[PackagedStream]) -> None:
    # A player switches renditions between segments: segment n must cover the same time in
    # every rendition. Half a frame of tolerance (#EXTINF has six decimals).
    top = streams[0]
    rate = top.result.frame_rate
    tolerance = 0.5 / float(rate) if rate else 1e-3
    for stream in streams[1:]:
        if stream.result.frames != top.result.frames:
            raise ValueError(
                f"rendition {stream.name} has {stream.result.frames} frames, "
                f"{top.name} {top.result.frames}"
            )
        ours, theirs = stream.result.segment_durations_s, top.result.segment_durations_s
        if len(ours) != len(theirs) or any(
            abs(a - b) > tolerance for a, b in zip(ours, theirs, strict=True)
        ):
            raise ValueError(f"the segments of {stream.name} and {top.name} do not line up")


def _write_iframe_playlist(path: Path, stream: PackagedStream) -> None:
    durations = stream.result.segment_durations_s
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(max(durations)))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-I-FRAMES-ONLY",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{stream.result.init_segment.name}"',
    ]
    for segment, duration, (offset, length) in zip(
        stream.result.segments, durations, stream.iframe_ranges, strict=True
    ):
        lines += [f"#EXTINF:{duration:.6f},", f"#EXT-X-BYTERANGE:{length}@{offset}", segment.name]
    lines.append("#EXT-X-ENDLIST")
    path.write_text("\n".join(lines) + "\n")


def _runs(timeline: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """``(t, d, r)`` SegmentTimeline entries: equal, back-to-back durations in one entry."""
    runs: list[tuple[int, int, int]] = []
    for start, length in timeline:
        if runs and runs[-1][1] == length:
            first, _, repeat = runs[-1]
            runs[-1] = (first, length, repeat + 1)
        else:
            runs.append((start, length, 0))
    return runs


def _iso_duration(seconds: Fraction) -> str:
    return f"PT{float(seconds):.3f}S"


def _rate(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"
