"""The ladder package: one set of CMAF segments per rendition, described for HLS and DASH.

Checked with the libraries players' tooling uses (`m3u8`, `mpegdash`) and by decoding: every
playlist and the MPD parse, every segment starts with a keyframe and decodes after its init
segment, each rendition lasts as long as the match (within a frame), the I-frame byte ranges
decode to the segment's first frame, and the MPD names exactly the files the HLS playlists
name.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import av
import cv2
import m3u8
import numpy as np
import pytest
from mpegdash.nodes import MPEGDASH
from mpegdash.parser import MPEGDASHParser

from activities.encode.cmaf import CmafError, init_timescale, iter_boxes, read_segment
from activities.encode.ladder import LadderRendition, LadderResult, package_ladder
from activities.encode.thumbnails import write_poster, write_thumbnails
from tests.encode.ladder_media import (
    CHUNK_FRAMES,
    FPS,
    LADDER,
    LadderChunks,
    frame_number,
    write_chunks,
    write_ladder,
)

FRAMES = sum(CHUNK_FRAMES)
FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> LadderChunks:
    return write_ladder(tmp_path_factory.mktemp("ladder"))


@pytest.fixture(scope="module")
def package(ladder: LadderChunks, tmp_path_factory: pytest.TempPathFactory) -> LadderResult:
    """Segments of one second at most: several per chunk, cut at shared keyframes."""
    renditions = [LadderRendition(name, paths) for name, paths in ladder.renditions.items()]
    out = tmp_path_factory.mktemp("package")
    return package_ladder(renditions, out, segment_seconds=1.0)


def _out(package: LadderResult) -> Path:
    return package.master_playlist.parent


def _mpd(package: LadderResult) -> MPEGDASH:
    return MPEGDASHParser.parse(package.dash_manifest.read_text())


def _dash_files(mpd: MPEGDASH) -> dict[str, tuple[str, list[str]]]:
    """Per Representation id: its init segment and media segments, as a DASH client expands
    the SegmentTemplate ($Number%05d$ over the SegmentTimeline)."""
    files = {}
    (adaptation_set,) = mpd.periods[0].adaptation_sets
    for representation in adaptation_set.representations:
        (template,) = representation.segment_templates
        count = sum(1 + (s.r or 0) for s in template.segment_timelines[0].Ss)
        number = int(template.start_number)

        def expand(n: int, media: str = template.media) -> str:
            return re.sub(r"\$Number%0(\d+)d\$", lambda m: f"{n:0{int(m.group(1))}d}", media)

        files[representation.id] = (
            template.initialization,
            [expand(number + i) for i in range(count)],
        )
    return files


def _decode(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        return list(container.decode(video=0))


# --- manifests -------------------------------------------------------------------------------


def test_the_master_playlist_names_every_rendition_and_its_iframe_stream(
    package: LadderResult,
) -> None:
    master = m3u8.load(str(package.master_playlist))
    assert master.is_variant and master.version == 7 and master.is_independent_segments
    assert [p.uri for p in master.playlists] == [f"{name}/media.m3u8" for name, *_ in LADDER]
    for playlist, (_, width, height) in zip(master.playlists, LADDER, strict=True):
        info = playlist.stream_info
        assert info.resolution == (width, height)
        assert info.bandwidth >= info.average_bandwidth > 0
        assert re.fullmatch(r"avc1\.64[0-9a-f]{4}", info.codecs)
        assert info.frame_rate == pytest.approx(FPS)
    # The top rendition costs the most.
    assert master.playlists[0].stream_info.bandwidth > master.playlists[-1].stream_info.bandwidth
    iframes = master.iframe_playlists
    assert [p.uri for p in iframes] == [f"{name}/iframes.m3u8" for name, *_ in LADDER]
    for playlist, (_, width, height) in zip(iframes, LADDER, strict=True):
        info = playlist.iframe_stream_info
        assert info.resolution == (width, height) and info.bandwidth > 0 and info.codecs


def test_media_playlists_are_version_7_cmaf_with_aligned_segments(package: LadderResult) -> None:
    out = _out(package)
    durations = []
    for name, *_ in LADDER:
        media = m3u8.load(str(out / name / "media.m3u8"))
        assert media.version == 7 and media.is_independent_segments and media.is_endlist
        assert media.playlist_type == "vod"
        assert [m.uri for m in media.segment_map] == ["init.mp4"]
        assert [s.uri for s in media.segments] == [f"seg_{i:05d}.m4s" for i in range(4)]
        assert all(round(s.duration) <= media.target_duration for s in media.segments)
        durations.append([s.duration for s in media.segments])
    # Cut at the shared keyframes (one a second), never across a chunk start (2 s, then 1.48 s).
    assert durations[0] == pytest.approx([1.0, 1.0, 1.0, 0.48], abs=1e-3)
    assert all(d == pytest.approx(durations[0], abs=1e-3) for d in durations)


def test_iframe_playlists_point_into_the_same_segments(package: LadderResult) -> None:
    out = _out(package)
    for name, *_ in LADDER:
        iframes = m3u8.load(str(out / name / "iframes.m3u8"))
        media = m3u8.load(str(out / name / "media.m3u8"))
        assert iframes.is_i_frames_only and iframes.version == 7 and iframes.is_endlist
        assert [m.uri for m in iframes.segment_map] == ["init.mp4"]
        assert [s.uri for s in iframes.segments] == [s.uri for s in media.segments]
        init = (out / name / "init.mp4").read_bytes()
        for number, segment in enumerate(iframes.segments):
            length, offset = (int(part) for part in segment.byterange.split("@"))
            data = (out / name / segment.uri).read_bytes()
            assert offset + length <= len(data)
            # The range alone, after the init segment, is one decodable keyframe: the
            # segment's first frame.
            (frame,) = _decode(init + data[offset : offset + length])
            assert frame.key_frame
            assert frame_number(frame.to_ndarray(format="bgr24")) == number * 25


def test_the_mpd_describes_the_same_files_as_the_hls_playlists(package: LadderResult) -> None:
    mpd = _mpd(package)
    assert mpd.type == "static" and mpd.profiles == "urn:mpeg:dash:profile:isoff-live:2011"
    (period,) = mpd.periods
    (adaptation_set,) = period.adaptation_sets
    assert adaptation_set.mime_type == "video/mp4" and adaptation_set.segment_alignment
    master = m3u8.load(str(package.master_playlist))
    representations = adaptation_set.representations
    assert [r.id for r in representations] == [name for name, *_ in LADDER]
    for representation, variant in zip(representations, master.playlists, strict=True):
        info = variant.stream_info
        assert (representation.width, representation.height) == info.resolution
        assert representation.codecs == info.codecs
        assert representation.bandwidth == info.bandwidth
        assert representation.frame_rate == "25"
    out = _out(package)
    for name, (init, segments) in _dash_files(mpd).items():
        media = m3u8.load(str(out / name / "media.m3u8"))
        assert init == f"{name}/{media.segment_map[0].uri}"
        assert segments == [f"{name}/{segment.uri}" for segment in media.segments]
        assert all((out / segment).is_file() for segment in segments)


# --- the segments ----------------------------------------------------------------------------


def test_every_segment_starts_with_a_keyframe_and_decodes_after_its_init(
    package: LadderResult,
) -> None:
    out = _out(package)
    for name, width, height in LADDER:
        init = (out / name / "init.mp4").read_bytes()
        first = 0
        for segment in sorted((out / name).glob("seg_*.m4s")):
            data = segment.read_bytes()
            assert read_segment(data).starts_with_sync_sample, segment
            with av.open(io.BytesIO(init + data), mode="r", format="mp4") as container:
                packet = next(p for p in container.demux(video=0) if p.size)
                assert packet.is_keyframe, segment
            frames = _decode(init + data)
            assert frames[0].key_frame and (frames[0].width, frames[0].height) == (width, height)
            numbers = [frame_number(f.to_ndarray(format="bgr24")) for f in frames]
            assert numbers == list(range(first, first + len(frames))), segment
            first += len(frames)
        assert first == FRAMES, name


def test_each_rendition_lasts_as_long_as_the_match(package: LadderResult) -> None:
    match_s = FRAMES / FPS
    out = _out(package)
    for name, *_ in LADDER:
        media = m3u8.load(str(out / name / "media.m3u8"))
        assert sum(s.duration for s in media.segments) == pytest.approx(match_s, abs=FRAME_S)
    mpd = _mpd(package)
    total = float(mpd.media_presentation_duration.removeprefix("PT").removesuffix("S"))
    assert total == pytest.approx(match_s, abs=FRAME_S)
    for representation in mpd.periods[0].adaptation_sets[0].representations:
        (template,) = representation.segment_templates
        ticks = sum(s.d * (1 + (s.r or 0)) for s in template.segment_timelines[0].Ss)
        assert ticks / template.timescale == pytest.approx(match_s, abs=FRAME_S)
        # The timeline starts where the first segment's first frame is shown.
        assert template.segment_timelines[0].Ss[0].t == template.presentation_time_offset
    assert package.duration_s == pytest.approx(match_s, abs=FRAME_S)


def test_the_timeline_is_read_from_the_segments(package: LadderResult) -> None:
    out = _out(package)
    stream = package.streams[0]
    assert stream.timescale == init_timescale((out / "360p/init.mp4").read_bytes())
    for (start, length), path in zip(stream.timeline, stream.result.segments, strict=True):
        segment = read_segment(path.read_bytes())
        assert start == segment.earliest_presentation_time
        assert length == segment.duration
    starts = [start for start, _ in stream.timeline]
    assert all(b - a == stream.timescale for a, b in itertools.pairwise(starts[:3]))


# --- cutting ---------------------------------------------------------------------------------


def test_renditions_are_cut_only_where_all_have_a_keyframe(tmp_path: Path) -> None:
    # A keyframe every 5 frames in one rendition, every 25 in the other: only the shared
    # ones (every second) may start a segment, however short the segments asked for.
    dense = write_chunks(tmp_path / "dense", 192, 108, gop=5)
    sparse = write_chunks(tmp_path / "sparse", 160, 90, gop=25)
    result = package_ladder(
        [LadderRendition("dense", dense), LadderRendition("sparse", sparse)],
        tmp_path / "out",
        segment_seconds=0.2,
    )
    for stream in result.streams:
        assert stream.result.segment_durations_s == pytest.approx([1.0, 1.0, 1.0, 0.48], abs=1e-3)
    # Without segment_seconds: one segment per chunk.
    per_chunk = package_ladder([LadderRendition("dense", dense)], tmp_path / "chunks")
    assert per_chunk.streams[0].result.segment_durations_s == pytest.approx([2.0, 1.48])


def test_renditions_that_do_not_match_are_refused(ladder: LadderChunks, tmp_path: Path) -> None:
    top = ladder.renditions["360p"]
    shorter = write_chunks(tmp_path / "short", 192, 108, (50, 30))
    with pytest.raises(ValueError, match="frames"):
        package_ladder([LadderRendition("a", top), LadderRendition("b", shorter)], tmp_path / "x")
    with pytest.raises(ValueError, match="frame counts"):
        package_ladder(
            [LadderRendition("a", top), LadderRendition("b", shorter)],
            tmp_path / "y",
            segment_seconds=1.0,
        )
    with pytest.raises(ValueError, match="numbers of chunks"):
        package_ladder([LadderRendition("a", top), LadderRendition("b", top[:1])], tmp_path / "z")
    for name in ("views", "panorama", "thumbnails", "../up", ""):
        with pytest.raises(ValueError, match="cannot name"):
            package_ladder([LadderRendition(name, top)], tmp_path / "n")
    with pytest.raises(ValueError, match="repeat"):
        package_ladder([LadderRendition("a", top), LadderRendition("a", top)], tmp_path / "r")
    with pytest.raises(ValueError, match="flat"):
        package_ladder(
            [LadderRendition("a", top), LadderRendition("b", top)], tmp_path / "f", flat=True
        )


def test_a_flat_package_puts_its_one_rendition_beside_the_manifests(
    ladder: LadderChunks, tmp_path: Path
) -> None:
    out = tmp_path / "panorama"
    result = package_ladder([LadderRendition("panorama", ladder.panorama)], out, flat=True)
    assert sorted(result.files) == sorted(
        [
            *("init.mp4", "seg_00000.m4s", "seg_00001.m4s", "media.m3u8", "iframes.m3u8"),
            *("manifest.mpd", "master.m3u8"),
        ]
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(result.files)
    master = m3u8.load(str(out / "master.m3u8"))
    assert [p.uri for p in master.playlists] == ["media.m3u8"]
    assert master.playlists[0].stream_info.resolution == (384, 96)
    init, segments = _dash_files(MPEGDASHParser.parse((out / "manifest.mpd").read_text()))[
        "panorama"
    ]
    assert (init, segments) == ("init.mp4", ["seg_00000.m4s", "seg_00001.m4s"])


# --- thumbnails and poster -------------------------------------------------------------------


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def _vtt_cues(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest)

    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = []
    for index, line in enumerate(lines):
        if "-->" in line:
            start, end = (part.strip() for part in line.split("-->"))
            cues.append((seconds(start), seconds(end), lines[index + 1]))
    return cues


def test_thumbnails_tile_the_match_every_interval(ladder: LadderChunks, tmp_path: Path) -> None:
    result = write_thumbnails(
        ladder.renditions["144p"], tmp_path, interval_s=0.4, columns=3, rows=2
    )
    cues = _vtt_cues(result.vtt.read_text())
    # 3.48 s every 0.4 s: 9 thumbnails, in two sprites of at most 3x2.
    assert (result.count, len(cues), len(result.sprites)) == (9, 9, 2)
    assert (result.width, result.height) == (160, 90)
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(FRAMES / FPS)
    assert all(a[1] == pytest.approx(b[0]) for a, b in itertools.pairwise(cues))
    sprites = {p.name: _imread(p) for p in result.sprites}
    assert sprites["sprite-000.jpg"].shape == (180, 480, 3)
    assert sprites["sprite-001.jpg"].shape == (90, 480, 3)  # 3 left: one row
    for number, (start, _, target) in enumerate(cues):
        path, _, fragment = target.partition("#xywh=")
        x, y, w, h = (int(v) for v in fragment.split(","))
        assert path.startswith("thumbnails/sprite-") and (w, h) == (160, 90)
        tile = sprites[path.removeprefix("thumbnails/")][y : y + h, x : x + w]
        # The tile shows the frame at the cue's start.
        assert frame_number(tile) == round(start * FPS) == round(number * 0.4 * FPS)


def test_the_poster_is_a_full_size_frame_from_the_top_rendition(
    ladder: LadderChunks, tmp_path: Path
) -> None:
    size = write_poster(ladder.renditions["360p"], tmp_path / "poster.jpg", at=0.7)
    image = _imread(tmp_path / "poster.jpg")
    assert size == (320, 180) and image.shape == (180, 320, 3)
    assert frame_number(image) == int(FRAMES * 0.7)  # in the second chunk
    with pytest.raises(ValueError):
        write_poster(ladder.renditions["360p"], tmp_path / "p.jpg", at=1.0)


# --- box reading -----------------------------------------------------------------------------


def test_box_reading_refuses_truncated_files(package: LadderResult) -> None:
    data = package.streams[0].result.segments[0].read_bytes()
    assert [box.type for box in iter_boxes(data)][-2:] == [b"moof", b"mdat"]
    with pytest.raises(CmafError):
        read_segment(data[:-10])  # the samples run past the end
    with pytest.raises(CmafError):
        list(iter_boxes(data[:5]))
    with pytest.raises(CmafError):
        init_timescale(data)  # a media segment has no moov
