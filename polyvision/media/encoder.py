"""Encoding one stream of frames into a ladder of H.264 renditions in one pass.

Every frame is converted to YUV 4:2:0 once at the top size and scaled from there into each
smaller rendition with FFmpeg's own scaler (libswscale, area filter: what ``ffmpeg -vf
scale=...:flags=area`` does), then handed to one encoder per rendition. Each rendition is an
MP4 file with closed GOPs of a fixed length, keyframes at the same frames in every rendition,
so segments can be cut at the same times in all of them (`activities.encode.ladder`).

Two encoders: FFmpeg's ``h264_nvenc`` where the machine has an NVIDIA hardware encoder (an
H100 has none: `nvenc_available` asks FFmpeg to open one rather than guessing from the GPU's
name), ``libx264`` otherwise. Both are capped CRF/CQ: constant quality, with a peak bit rate
per rendition so a busy scene cannot starve the slowest viewers.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from polyvision.media.h264 import avc1_codecs
from polyvision.media.writer import x264_asm_flags

Encoder = Literal["libx264", "h264_nvenc"]
"""The H.264 encoders a ladder can use."""

SCALER = "AREA"
"""libswscale's filter for the smaller renditions (box average: no aliasing when shrinking)."""


@dataclass(frozen=True)
class EncodeTarget:
    """One rendition to encode.

    Attributes:
        name: The rendition's name.
        width: Pixels (even).
        height: Pixels (even).
        path: The MP4 file to write.
        max_kbps: Peak bit rate, kbit/s (VBV maximum rate); None: quality alone decides.
    """

    name: str
    width: int
    height: int
    path: Path
    max_kbps: int | None = None


@dataclass(frozen=True)
class EncodedRendition:
    """One rendition written by a `LadderEncoder`.

    Attributes:
        name: The rendition's name.
        width: Pixels.
        height: Pixels.
        path: The MP4 file.
        frames: Frames encoded.
        codecs: RFC 6381 codec string of the stream (``avc1.640028``).
        encoder: The encoder that wrote it.
    """

    name: str
    width: int
    height: int
    path: Path
    frames: int
    codecs: str
    encoder: Encoder


@functools.cache
def nvenc_available() -> bool:
    """Whether FFmpeg can open an NVENC H.264 encoder on this machine (cached per process).

    Opening one is the only reliable test: the wheel always lists ``h264_nvenc``, and GPUs
    without the encoder block (H100, A100) have the driver but refuse the session.
    """
    if "h264_nvenc" not in av.codecs_available:
        return False
    try:
        context = cast(Any, av.CodecContext.create("h264_nvenc", "w"))
        context.width, context.height = 256, 144
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except Exception:  # FFmpeg reports a missing device in many ways
        return False
    return True


def choose_encoder(prefer_hardware: bool = True) -> Encoder:
    """``h264_nvenc`` where it opens and is wanted, else ``libx264``."""
    return "h264_nvenc" if prefer_hardware and nvenc_available() else "libx264"


def _encoder_options(
    encoder: Encoder, crf: int, preset: str, gop: int, max_kbps: int | None
) -> dict[str, str]:
    """The encoder's options for capped constant quality and a fixed, closed GOP."""
    if encoder == "libx264":
        # keyint = min-keyint and no scene cuts: keyframes exactly every `gop` frames; x264's
        # GOPs are closed unless open-gop is asked for.
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        if max_kbps:
            params += f":vbv-maxrate={max_kbps}:vbv-bufsize={2 * max_kbps}"
        if asm := x264_asm_flags():
            params += f":asm={asm}"
        return {"crf": str(crf), "preset": preset, "x264-params": params}
    options = {
        # p4 is NVENC's balanced preset; constant quality (cq) with VBR rate control mirrors CRF.
        "preset": "p4",
        "rc": "vbr",
        "cq": str(crf),
        "forced-idr": "1",
        "no-scenecut": "1",
        "strict_gop": "1",
        "bf": "0",
    }
    if max_kbps:
        options |= {"maxrate": f"{max_kbps}k", "bufsize": f"{2 * max_kbps}k"}
    return options


QUEUE_FRAMES = 4
"""Frames each rendition's thread may hold back: enough to keep it busy, little memory."""

_STOP = None


class _Rendition:
    """One open output, fed by its own thread.

    Each rendition scales and encodes on a thread of its own: FFmpeg's scaler and encoders run
    with the GIL released, so the renditions' serial parts (scaling, x264's per-frame decisions,
    muxing) overlap instead of queueing behind each other as they would in one loop.
    """

    def __init__(
        self,
        target: EncodeTarget,
        rate: Fraction,
        encoder: Encoder,
        options: dict[str, str],
        gop: int,
        top_size: tuple[int, int],
    ) -> None:
        self.target = target
        self.container = av.open(str(target.path), mode="w", format="mp4")
        # bitexact: no encoder version strings or times, so identical runs give identical bytes.
        bitexact = cast(int, av.container.Flags.bitexact.value)
        self.container.flags = cast(Any, int(self.container.flags) | bitexact)
        self.stream: VideoStream = self.container.add_stream(encoder, rate=rate)
        self.stream.width = target.width
        self.stream.height = target.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.gop_size = gop
        self.stream.options = cast(Any, options)
        self.frames = 0
        self._time_base = 1 / rate
        self._scaled = (target.width, target.height) != top_size
        self._reformatter = VideoReformatter()
        self._queue: queue.Queue[tuple[av.VideoFrame, int] | None] = queue.Queue(QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"encode-{target.name}", daemon=True)
        self._thread.start()

    def put(self, top: av.VideoFrame, pts: int) -> None:
        """Queue one top-size 4:2:0 frame (the caller must not change it afterwards)."""
        self.raise_error()
        self._queue.put((top, pts))

    def raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"encoding {self.target.name} failed") from self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._error is not None:
                continue  # keep draining so the producer never blocks on a dead thread
            top, pts = item
            try:
                self._encode(top, pts)
            except BaseException as exc:  # handed to the producer by raise_error()
                self._error = exc

    def _encode(self, top: av.VideoFrame, pts: int) -> None:
        if self._scaled:
            # A reformatter of this thread's own: a frame's reformat() keeps one scaler context
            # on the frame, and the renditions' threads share the frame.
            frame = self._reformatter.reformat(
                top,
                width=self.target.width,
                height=self.target.height,
                format="yuv420p",
                interpolation=SCALER,
            )
            # A new frame copies its source's timing and picture type: set ours.
            frame.pts = pts
            frame.time_base = self._time_base
            frame.pict_type = av.video.frame.PictureType.NONE
        else:
            frame = top
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def stop(self) -> None:
        """Let the thread finish the queued frames and end."""
        self._queue.put(_STOP)
        self._thread.join()

    def close(self) -> str:
        """Finish, flush and close; the stream's codec string (known once the encoder ran)."""
        self.stop()
        self.raise_error()
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        extradata = bytes(self.stream.codec_context.extradata or b"")
        self.container.close()
        return avc1_codecs(extradata)


class LadderEncoder:
    """Encode frames into every rendition of a ladder in one pass.

    The first target is the top rendition: frames arrive at its size and the others are scaled
    from them. Targets must not be larger than the top one.

    Args:
        targets: The renditions, top first.
        fps: Frames per second.
        gop: Keyframe interval in frames (every GOP closed; the same frames in every rendition).
        crf: x264 constant rate factor (NVENC: its constant-quality level).
        preset: x264 preset (NVENC uses its balanced preset).
        encoder: ``libx264`` or ``h264_nvenc`` (`choose_encoder`).
        threads: Encoder threads per rendition (0: FFmpeg decides).
    """

    def __init__(
        self,
        targets: Sequence[EncodeTarget],
        fps: float,
        *,
        gop: int,
        crf: int = 20,
        preset: str = "veryfast",
        encoder: Encoder = "libx264",
        threads: int = 0,
    ) -> None:
        if not targets:
            raise ValueError("a ladder needs at least one rendition")
        if gop < 1:
            raise ValueError(f"gop must be at least 1 frame, got {gop}")
        top = targets[0]
        for target in targets:
            if target.width % 2 or target.height % 2:
                raise ValueError(
                    f"{target.name}: H.264 yuv420p needs even sizes, got "
                    f"{target.width}x{target.height}"
                )
            if target.width > top.width or target.height > top.height:
                raise ValueError(f"{target.name} is larger than the top rendition {top.name}")
        if len({t.name for t in targets}) != len(targets):
            raise ValueError("rendition names must be distinct")
        self.encoder: Encoder = encoder
        self.top_size = (top.width, top.height)
        rate = Fraction(fps).limit_denominator(1001)
        self._time_base = 1 / rate
        self._outputs: list[_Rendition] = []
        try:
            for target in targets:
                options = _encoder_options(encoder, crf, preset, gop, target.max_kbps)
                output = _Rendition(target, rate, encoder, options, gop, self.top_size)
                output.stream.codec_context.thread_count = threads
                self._outputs.append(output)
        except Exception:
            for output in self._outputs:
                output.stop()
                output.container.close()
            raise
        self.frames_written = 0

    def write(self, frame_bgr: npt.NDArray[np.uint8]) -> None:
        """Encode one BGR ``uint8`` frame of the top rendition's size into every rendition."""
        width, height = self.top_size
        if frame_bgr.shape != (height, width, 3):
            raise ValueError(f"frame is {frame_bgr.shape}, expected {(height, width, 3)}")
        self.write_frame(av.VideoFrame.from_ndarray(frame_bgr, format="bgr24"))

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Encode one decoded frame of the top rendition's size (any pixel format)."""
        width, height = self.top_size
        if (frame.width, frame.height) != (width, height):
            raise ValueError(f"frame is {frame.width}x{frame.height}, expected {width}x{height}")
        # To 4:2:0 once; every smaller rendition is scaled from the converted frame (on its own
        # thread). A decoded frame carries its source's timing and picture type: the encoder
        # would rescale the one and obey the other (a keyframe wherever the source had one).
        top = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        top.pts = self.frames_written
        top.time_base = self._time_base
        top.pict_type = av.video.frame.PictureType.NONE
        for output in self._outputs:
            output.put(top, self.frames_written)
        self.frames_written += 1

    def close(self) -> list[EncodedRendition]:
        """Flush every encoder, close the files and say what was written, top first."""
        written: list[EncodedRendition] = []
        for output in self._outputs:
            codecs = output.close()
            target = output.target
            written.append(
                EncodedRendition(
                    name=target.name,
                    width=target.width,
                    height=target.height,
                    path=target.path,
                    frames=output.frames,
                    codecs=codecs,
                    encoder=self.encoder,
                )
            )
        return written

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            return
        # On an error the files are incomplete: close them without pretending they are done.
        for output in self._outputs:
            # Already failing: keep the first error.
            with contextlib.suppress(Exception):
                output.stop()
                output.container.close()
