"""Real H.264 chunks in several renditions, as the vcam stage's ladder writes them.

Every frame shows its match frame number in binary as vertical black/white bars over the full
width (eight bars), so any rendition, thumbnail or poster can be read back to the frame it
shows, whatever its size: lossy coding and scaling leave the bars readable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activities.vcam.contracts import RenditionChunk
from polyvision.media.writer import VideoWriter

FPS = 25.0
BITS = 8  # frame-number bars: up to 255 frames
CHUNK_FRAMES = (50, 37)
LADDER = (("360p", 320, 180), ("240p", 256, 144), ("144p", 192, 108))
PANORAMA_SIZE = (384, 96)


def frame_image(number: int, width: int, height: int) -> np.ndarray:
    """A BGR frame showing ``number`` as bars (white = 1, least significant bit left)."""
    frame = np.full((height, width, 3), 16, np.uint8)
    bar = width // BITS
    for bit in range(BITS):
        if number >> bit & 1:
            frame[:, bit * bar : (bit + 1) * bar] = 235
    return frame


def frame_number(image: np.ndarray) -> int:
    """The number a `frame_image` shows (any size, BGR or grey)."""
    grey = image if image.ndim == 2 else image.mean(axis=2)
    width = grey.shape[1]
    bar = width // BITS
    # The middle half of each bar: scaling blurs the edges between bars.
    levels = [
        grey[:, bit * bar + bar // 4 : (bit + 1) * bar - bar // 4].mean() for bit in range(BITS)
    ]
    return sum(1 << bit for bit in range(BITS) if levels[bit] > 128)


def write_chunks(
    directory: Path,
    width: int,
    height: int,
    chunk_frames: tuple[int, ...] = CHUNK_FRAMES,
    *,
    gop: int = 25,
    name: str = "chunk",
) -> list[Path]:
    """One MP4 per chunk (closed GOPs of ``gop`` frames), numbered across chunks."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    first = 0
    for index, frames in enumerate(chunk_frames):
        path = directory / f"{name}-{index:05d}.mp4"
        with VideoWriter(path, width, height, FPS, gop=gop) as writer:
            for number in range(first, first + frames):
                writer.write(frame_image(number, width, height))
        paths.append(path)
        first += frames
    return paths


@dataclass(frozen=True)
class LadderChunks:
    """A ladder's chunk files (per rendition, top first) and the panorama's."""

    renditions: dict[str, list[Path]]
    sizes: dict[str, tuple[int, int]]
    panorama: list[Path]

    @property
    def frames(self) -> int:
        return sum(CHUNK_FRAMES)


def write_ladder(directory: Path, *, gop: int = 25) -> LadderChunks:
    """Every rendition of `LADDER` and the panorama, `CHUNK_FRAMES` long."""
    renditions = {
        name: write_chunks(directory / name, width, height, gop=gop)
        for name, width, height in LADDER
    }
    panorama = write_chunks(directory / "panorama", *PANORAMA_SIZE, gop=gop)
    sizes = {name: (width, height) for name, width, height in LADDER}
    return LadderChunks(renditions, sizes, panorama)


def rendition_chunks(
    ladder: LadderChunks, keys: dict[str, list[str]]
) -> list[list[RenditionChunk]]:
    """`PackageInput.chunk_renditions` for the ladder uploaded under ``keys``."""
    chunks = []
    for index in range(len(CHUNK_FRAMES)):
        chunk = []
        for name, paths in ladder.renditions.items():
            data = paths[index].read_bytes()
            width, height = ladder.sizes[name]
            chunk.append(
                RenditionChunk(
                    name=name,
                    width=width,
                    height=height,
                    video_key=keys[name][index],
                    sha256=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    codecs="avc1.64000c",
                )
            )
        chunks.append(chunk)
    return chunks
