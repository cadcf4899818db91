"""Decoding a chunk's panorama video into the frames the detector reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np


def decode_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of the video's first stream, in order, as ``[H, W, 3]`` BGR uint8."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
