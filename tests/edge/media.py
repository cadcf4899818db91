"""Small MP4 recordings for edge tests, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_mp4(
    path: Path,
    frames: int,
    *,
    width: int = 64,
    height: int = 48,
    noise: bool = False,
    seed: int = 0,
) -> Path:
    """An H.264 MP4 of ``frames`` frames; ``noise`` makes it large (lossless random pixels)."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "qp": "0"} if noise else {"preset": "ultrafast"}
        for index in range(frames):
            if noise:
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                pixels = np.full((height, width, 3), (index * 7) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
