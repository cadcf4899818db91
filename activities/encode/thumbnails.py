"""Scrubbing thumbnails (JPEG sprites with a WebVTT index) and a poster, from chunk MP4s.

Players show a thumbnail above the seek bar: the WebVTT file maps each time range to a tile
of a sprite (``sprite.jpg#xywh=x,y,w,h``, the W3C media-fragment syntax hls.js, video.js and
Shaka's UI read). One thumbnail every few seconds, taken from the smallest rendition (the
cheapest to decode), scaled to a fixed width; sprites are grids of at most ``columns`` x
``rows`` tiles so that a player fetches a small image for the part of the match it scrubs.

The poster is one frame of the top rendition at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from activities.encode.contracts import THUMBNAILS_FOLDER, THUMBNAILS_VTT

SPRITE_PATTERN = "sprite-{:03d}.jpg"
"""Sprite file names inside the thumbnails folder."""

THUMBNAIL_INTERVAL_S = 5.0
"""Seconds between thumbnails: a 90-minute match has 1,080."""
THUMBNAIL_WIDTH = 160
"""Thumbnail width in pixels (90 high for 16:9)."""
POSTER_AT = 0.1
"""Where the poster is taken, as a fraction of the duration: past the line-ups and kick-off."""

_JPEG_QUALITY = 80


@dataclass(frozen=True)
class Thumbnails:
    """What `write_thumbnails` wrote.

    Attributes:
        vtt: The WebVTT index.
        sprites: The sprite images in order.
        count: Thumbnails in all.
        width: One thumbnail's width in pixels.
        height: Its height.
        interval_s: Seconds between thumbnails.
    """

    vtt: Path
    sprites: list[Path]
    count: int
    width: int
    height: int
    interval_s: float


def write_thumbnails(
    chunk_paths: list[Path],
    out_dir: Path,
    *,
    interval_s: float = THUMBNAIL_INTERVAL_S,
    width: int = THUMBNAIL_WIDTH,
    columns: int = 10,
    rows: int = 10,
) -> Thumbnails:
    """Write ``thumbnails.vtt`` and ``thumbnails/sprite-NNN.jpg`` into ``out_dir``.

    Thumbnail *k* is the first frame shown at or after ``k * interval_s`` (match time, the
    chunks played one after another); its cue lasts until the next one, the last until the
    end of the match.

    Args:
        chunk_paths: One rendition's chunk MP4s in playback order.
        out_dir: Where to write (created); earlier sprites there are replaced.
        interval_s: Seconds between thumbnails.
        width: Thumbnail width; the height keeps the video's aspect ratio (even).
        columns: Tiles per sprite row.
        rows: Tile rows per sprite at most.

    Returns:
        The files written and the tile size.

    Raises:
        ValueError: No chunks, a non-positive interval or size, or a chunk without frames.
    """
    if not chunk_paths:
        raise ValueError("no chunks to take thumbnails from")
    if interval_s <= 0 or width <= 0 or columns <= 0 or rows <= 0:
        raise ValueError("interval, width, columns and rows must be positive")
    frame_rate, source_size = _video_parameters(chunk_paths[0])
    height = max(2, round(width * source_size[1] / source_size[0] / 2) * 2)
    counts = [_frame_count(path) for path in chunk_paths]
    tiles = _grab(chunk_paths, counts, frame_rate, Fraction(interval_s), (width, height))
    total = sum(counts) / frame_rate

    folder = out_dir / THUMBNAILS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("sprite-*.jpg"):
        stale.unlink()
    per_sprite = columns * rows
    sprites = []
    cues = ["WEBVTT", ""]
    for first in range(0, len(tiles), per_sprite):
        batch = tiles[first : first + per_sprite]
        used_rows = math.ceil(len(batch) / columns)
        sheet = np.zeros((used_rows * height, min(columns, len(batch)) * width, 3), np.uint8)
        name = SPRITE_PATTERN.format(first // per_sprite)
        for index, tile in enumerate(batch):
            x, y = index % columns * width, index // columns * height
            sheet[y : y + height, x : x + width] = tile
            number = first + index
            start = number * Fraction(interval_s)
            end = min(total, (number + 1) * Fraction(interval_s))
            cues += [
                f"{_timestamp(start)} --> {_timestamp(end)}",
                f"{THUMBNAILS_FOLDER}/{name}#xywh={x},{y},{width},{height}",
                "",
            ]
        path = folder / name
        _write_jpeg(path, sheet)
        sprites.append(path)
    vtt = out_dir / THUMBNAILS_VTT
    vtt.write_text("\n".join(cues))
    return Thumbnails(vtt, sprites, len(tiles), width, height, interval_s)


def write_poster(chunk_paths: list[Path], path: Path, *, at: float = POSTER_AT) -> tuple[int, int]:
    """Write the frame shown at ``at`` (a fraction of the duration) as a JPEG at full size.

    Only the chunk holding that instant is decoded.

    Returns:
        The poster's width and height.

    Raises:
        ValueError: No chunks, or ``at`` outside [0, 1).
    """
    if not chunk_paths:
        raise ValueError("no chunks to take a poster from")
    if not 0 <= at < 1:
        raise ValueError(f"at must be in [0, 1), got {at}")
    counts = [_frame_count(path) for path in chunk_paths]
    wanted = int(sum(counts) * at)
    chunk = 0
    while wanted >= counts[chunk]:
        wanted -= counts[chunk]
        chunk += 1
    chunk_path = chunk_paths[chunk]
    with av.open(str(chunk_path)) as container:
        stream = container.streams.video[0]
        for number, frame in enumerate(container.decode(stream)):
            if number == wanted:
                image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
                break
        else:
            raise ValueError(f"{chunk_path}: fewer frames than its header says")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_jpeg(path, image)
    return image.shape[1], image.shape[0]


def _grab(
    chunk_paths: list[Path],
    counts: list[int],
    frame_rate: Fraction,
    interval: Fraction,
    size: tuple[int, int],
) -> list[npt.NDArray[np.uint8]]:
    """The scaled frames at every multiple of ``interval``, in order (``counts``: each
    chunk's frames)."""
    tiles: list[npt.NDArray[np.uint8]] = []
    half_frame = 1 / (2 * frame_rate)
    first = 0  # match frame number of the chunk's first frame
    for path, count in zip(chunk_paths, counts, strict=True):
        # The next thumbnail's time, and whether this chunk holds it: a chunk without one is
        # not decoded, and decoding stops after the chunk's last one.
        end = (first + count) / frame_rate
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if len(tiles) * interval - half_frame < end:
                for number, frame in enumerate(container.decode(stream), start=first):
                    if number / frame_rate >= len(tiles) * interval - half_frame:
                        scaled = frame.reformat(
                            width=size[0], height=size[1], format="bgr24", interpolation="AREA"
                        )
                        tiles.append(np.asarray(scaled.to_ndarray(), np.uint8))
                    if len(tiles) * interval - half_frame >= end:
                        break
        first += count
    if not tiles:
        raise ValueError("the chunks hold no frames")
    return tiles


def _video_parameters(path: Path) -> tuple[Fraction, tuple[int, int]]:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        if not stream.average_rate:
            raise ValueError(f"{path}: the video states no frame rate")
        return Fraction(stream.average_rate), (stream.codec_context.width, stream.height)


def _frame_count(path: Path) -> int:
    """Frames in a chunk: the container's count, or its packets counted."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size)


def _timestamp(seconds: Fraction) -> str:
    """WebVTT's ``hh:mm:ss.ttt``."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _write_jpeg(path: Path, image: npt.NDArray[np.uint8]) -> None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path.name}")
    path.write_bytes(encoded.tobytes())
