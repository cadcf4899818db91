"""HLS packaging of per-chunk MP4s: segment layout, VOD playlists, decodability, master."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from activities.encode.hls import package_hls
from polyvision.media.h264 import avc1_codecs
from polyvision.media.writer import VideoWriter

WIDTH, HEIGHT, FPS = 320, 180, 25
FRAME_S = 1 / FPS
BITS = 8  # frame counter bars: up to 255 frames
BAR = WIDTH // BITS


def _frame(number: int) -> np.ndarray:
    # The frame number in binary as black/white vertical bars: survives lossy coding intact.
    frame = np.full((HEIGHT, WIDTH, 3), 16, np.uint8)
    for bit in range(BITS):
        if number >> bit & 1:
            frame[:, bit * BAR : (bit + 1) * BAR] = 235
    return frame


def _frame_number(frame: np.ndarray) -> int:
    bars = frame[:, : BITS * BAR].reshape(HEIGHT, BITS, BAR, 3).mean(axis=(0, 2, 3))
    return sum(1 << bit for bit in range(BITS) if bars[bit] > 128)


def _write_chunks(directory: Path, lengths: list[int], size: tuple[int, int] = (WIDTH, HEIGHT)):
    paths = []
    first = 0
    for index, length in enumerate(lengths):
        path = directory / f"chunk_{index:03d}.mp4"
        with VideoWriter(path, size[0], size[1], FPS, gop=25) as writer:
            for number in range(first, first + length):
                writer.write(_frame(number)[: size[1], : size[0]].copy())
        paths.append(path)
        first += length
    return paths


@dataclass
class Playlist:
    """A parsed m3u8: tags (name -> list of values) and (EXTINF duration, URI) entries."""

    tags: dict[str, list[str]] = field(default_factory=dict)
    entries: list[tuple[float, str]] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)


def parse_m3u8(path: Path) -> Playlist:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    playlist = Playlist()
    duration: float | None = None
    for line in lines[1:]:
        if line.startswith("#EXT"):
            name, _, value = line[1:].partition(":")
            playlist.tags.setdefault(name, []).append(value)
            if name == "EXTINF":
                duration = float(value.split(",")[0])
        elif not line.startswith("#"):
            playlist.uris.append(line)
            if duration is not None:
                playlist.entries.append((duration, line))
                duration = None
    return playlist


def parse_attributes(value: str) -> dict[str, str]:
    pairs = re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', value)
    return {key: raw.strip('"') for key, raw in pairs}


def _boundaries(playlist: Playlist) -> list[float]:
    starts = [0.0]
    for duration, _ in playlist.entries:
        starts.append(starts[-1] + duration)
    return starts


def _decode_numbers(media_playlist: Path) -> list[int]:
    with av.open(str(media_playlist)) as container:
        return [
            _frame_number(frame.to_ndarray(format="bgr24")) for frame in container.decode(video=0)
        ]


@pytest.fixture(scope="module")
def chunks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _write_chunks(tmp_path_factory.mktemp("chunks"), [50, 50, 50])


def test_one_segment_per_chunk_in_a_vod_playlist(chunks: list[Path], tmp_path: Path) -> None:
    result = package_hls(chunks, tmp_path / "hls")
    media = parse_m3u8(result.media_playlist)

    assert media.tags["EXT-X-PLAYLIST-TYPE"] == ["VOD"]
    assert "EXT-X-ENDLIST" in media.tags
    assert "EXT-X-INDEPENDENT-SEGMENTS" in media.tags
    assert parse_attributes(media.tags["EXT-X-MAP"][0])["URI"] == "init.mp4"
    assert (result.media_playlist.parent / "init.mp4").stat().st_size > 0

    assert len(media.entries) == 3
    total = sum(duration for duration, _ in media.entries)
    assert total == pytest.approx(6.0, abs=FRAME_S)
    assert result.duration_s == pytest.approx(total)
    # Chunk starts (0, 2, 4 s) are segment starts.
    starts = _boundaries(media)
    for chunk_start in (0.0, 2.0, 4.0):
        assert min(abs(start - chunk_start) for start in starts[:-1]) < FRAME_S / 2
    # Every #EXTINF, rounded, fits the target duration (RFC 8216 4.3.3.1).
    target = int(media.tags["EXT-X-TARGETDURATION"][0])
    assert all(round(duration) <= target for duration, _ in media.entries)

    assert [segment.name for segment in result.segments] == [uri for _, uri in media.entries]
    assert all(segment.stat().st_size > 0 for segment in result.segments)


def test_media_playlist_decodes_to_every_frame_in_order(chunks: list[Path], tmp_path: Path) -> None:
    result = package_hls(chunks, tmp_path / "hls")
    assert _decode_numbers(result.media_playlist) == list(range(150))


def test_media_playlist_timestamps_run_on_across_chunks(chunks: list[Path], tmp_path: Path) -> None:
    result = package_hls(chunks, tmp_path / "hls")
    with av.open(str(result.media_playlist)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert None not in times
    steps = np.diff(np.asarray(times, dtype=np.float64))
    # No gap or overlap at the chunk joins: one frame duration between all frames.
    assert np.allclose(steps, FRAME_S, atol=1e-6)


def test_master_playlist_names_the_variant(chunks: list[Path], tmp_path: Path) -> None:
    result = package_hls(chunks, tmp_path / "hls")
    master = parse_m3u8(result.master_playlist)
    assert result.master_playlist.name == "master.m3u8"
    assert len(master.tags["EXT-X-STREAM-INF"]) == 1
    attributes = parse_attributes(master.tags["EXT-X-STREAM-INF"][0])
    assert attributes["RESOLUTION"] == "320x180"
    assert re.fullmatch(r"avc1\.[0-9a-f]{6}", attributes["CODECS"])
    assert int(attributes["BANDWIDTH"]) >= int(attributes["AVERAGE-BANDWIDTH"]) > 0
    assert float(attributes["FRAME-RATE"]) == pytest.approx(25.0)
    assert master.uris == [result.media_playlist.name]
    # The CODECS value is the SPS's: the VideoWriter encodes High profile (0x64).
    assert attributes["CODECS"].startswith("avc1.64")


def test_shorter_segments_split_chunks_on_keyframes(chunks: list[Path], tmp_path: Path) -> None:
    result = package_hls(chunks, tmp_path / "hls", segment_seconds=1.0)
    media = parse_m3u8(result.media_playlist)
    assert [duration for duration, _ in media.entries] == pytest.approx([1.0] * 6, abs=1e-3)
    assert _decode_numbers(result.media_playlist) == list(range(150))


def test_unequal_chunks_still_cut_on_chunk_starts(tmp_path: Path) -> None:
    # 50, 37 and 63 frames: FFmpeg's own hls_time rule would drift off these boundaries.
    paths = _write_chunks(tmp_path, [50, 37, 63])
    result = package_hls(paths, tmp_path / "hls")
    media = parse_m3u8(result.media_playlist)
    assert [duration for duration, _ in media.entries] == pytest.approx([2.0, 1.48, 2.52], abs=1e-3)
    assert _decode_numbers(result.media_playlist) == list(range(150))


def test_repackaging_removes_stale_segments(chunks: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "hls"
    package_hls(chunks, out, segment_seconds=1.0)
    result = package_hls(chunks, out)
    assert sorted(path.name for path in out.glob("seg_*")) == [p.name for p in result.segments]
    assert len(result.segments) == 3


def test_rejects_no_chunks_and_mismatched_chunks(chunks: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no chunks"):
        package_hls([], tmp_path / "a")
    with pytest.raises(ValueError, match="segment_seconds"):
        package_hls(chunks, tmp_path / "b", segment_seconds=0)
    other = _write_chunks(tmp_path, [25], size=(160, 90))
    with pytest.raises(ValueError, match="differ"):
        package_hls([chunks[0], *other], tmp_path / "c")


def test_avc1_codecs_from_avcc_and_annexb() -> None:
    avcc = bytes([1, 0x4D, 0x40, 0x1F, 0xFF, 0xE1])
    assert avc1_codecs(avcc) == "avc1.4d401f"
    annexb = b"\x00\x00\x00\x01\x67\x64\x00\x28\xac" + b"\x00\x00\x00\x01\x68\xee"
    assert avc1_codecs(annexb) == "avc1.640028"
    with pytest.raises(ValueError):
        avc1_codecs(b"\x00\x00\x01\x68\xee\x3c\x80")


def test_rejects_a_chunk_not_starting_on_a_keyframe(chunks: list[Path], tmp_path: Path) -> None:
    # Stream-copy the middle chunk without its first packet: it now starts on a P/B frame.
    cut = tmp_path / "cut.mp4"
    with av.open(str(chunks[1])) as source, av.open(str(cut), "w", format="mp4") as target:
        out_stream = target.add_stream_from_template(source.streams.video[0])
        packets = [p for p in source.demux(video=0) if p.size]
        for packet in packets[1:]:
            packet.stream = out_stream
            target.mux(packet)
    with pytest.raises(ValueError, match="keyframe"):
        package_hls([chunks[0], cut], tmp_path / "hls")
