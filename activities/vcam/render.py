"""Rendering the virtual camera: cut each frame's view window out of the panorama video.

:func:`render_view` resamples one window with a single ``cv2.warpAffine`` (bilinear, exact
sub-pixel position and scale). Bilinear sampling alone aliases when it shrinks by 2x or more
(grass texture and pitch lines would shimmer as the camera pans), so for those zooms the window's
neighbourhood is first reduced by an integer factor ``k`` with an area (box) filter whose blocks
are aligned to the *panorama's* pixel grid, not the window's. The prefiltered pixels therefore
do not change as the window moves, only where they are sampled, which is what keeps a slow pan
free of shimmer; the remaining scale (``1 <= s/k < 2``) is bilinear.

:func:`render_chunk` decodes a panorama chunk with PyAV, renders every frame and encodes the
views with :class:`~polyvision.media.writer.VideoWriter`, one keyframe per second so HLS
segments can be cut at chunk boundaries.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from activities.vcam.plan import ASPECT, VcamPath
from polyvision.media.writer import VideoWriter

__all__ = ["RenderChunkResult", "render_chunk", "render_view"]

BgrImage = npt.NDArray[np.uint8]


def _prefilter_factor(scale: float) -> int:
    # Bilinear is adequate below a 2x reduction; beyond it, reduce by whole factors first.
    return max(1, math.floor(scale + 1e-9))


def render_view(
    panorama_bgr: BgrImage,
    cx: float,
    cy: float,
    width: float,
    out_size: tuple[int, int] = (1280, 720),
) -> BgrImage:
    """The view window ``(cx, cy, width)`` (height ``width * 9 / 16``) resampled to ``out_size``.

    Pixel centres map exactly: output pixel ``u`` samples panorama x
    ``cx - width / 2 + (u + 0.5) * width / out_w - 0.5`` (likewise for y), so an integer window
    at 1:1 scale is an exact crop. Samples outside the panorama repeat its edge pixels.

    Args:
        panorama_bgr: ``[H, W, 3]`` uint8 BGR panorama frame.
        cx: Window centre x in panorama pixels.
        cy: Window centre y in panorama pixels.
        width: Window width in panorama pixels.
        out_size: ``(width, height)`` of the returned view.

    Returns:
        ``[out_h, out_w, 3]`` uint8 BGR view.
    """
    out_w, out_h = out_size
    if width <= 0 or out_w <= 0 or out_h <= 0:
        raise ValueError("width and out_size must be positive")
    pano_h, pano_w = panorama_bgr.shape[:2]
    height = width / ASPECT
    sx, sy = width / out_w, height / out_h
    x0, y0 = cx - width / 2, cy - height / 2
    k = _prefilter_factor(min(sx, sy))
    src = panorama_bgr
    # Offsets of the (prefiltered) source image in panorama pixels.
    ox = oy = 0
    if k > 1:
        # The window plus a pixel of bilinear support, widened to whole k-blocks of the panorama
        # grid (and to whole blocks inside the panorama, so cv2.resize's box filter is exact).
        xa = max(0, (math.floor(x0) - 1) // k * k)
        ya = max(0, (math.floor(y0) - 1) // k * k)
        xb = min(pano_w // k * k, -(-(math.ceil(x0 + width) + 1) // k) * k)
        yb = min(pano_h // k * k, -(-(math.ceil(y0 + height) + 1) // k) * k)
        if xb - xa >= k and yb - ya >= k:
            region = panorama_bgr[ya:yb, xa:xb]
            size = ((xb - xa) // k, (yb - ya) // k)
            src = np.asarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA), np.uint8)
            ox, oy = xa, ya
        else:
            k = 1
    # Output pixel u -> panorama x = x0 + (u + 0.5) * sx - 0.5 -> source x (pixel centres of a
    # k-reduced image sit at k * (j + 0.5) - 0.5): (x - ox + 0.5) / k - 0.5.
    matrix = np.array(
        [
            [sx / k, 0.0, (x0 - ox + 0.5 * sx) / k - 0.5],
            [0.0, sy / k, (y0 - oy + 0.5 * sy) / k - 0.5],
        ],
        dtype=np.float64,
    )
    view = cv2.warpAffine(
        src,
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(view, dtype=np.uint8)


@dataclass(frozen=True)
class RenderChunkResult:
    """What :func:`render_chunk` wrote.

    Attributes:
        frames: Number of view frames encoded.
        out_path: The H.264 MP4 written.
        sha256: Hex digest of the file (deterministic for the same inputs and settings).
    """

    frames: int
    out_path: Path
    sha256: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def render_chunk(
    panorama_video_path: Path,
    path: VcamPath,
    first_frame: int,
    out_path: Path,
    fps: float,
    out_size: tuple[int, int] = (1280, 720),
    on_progress: Callable[[int], None] | None = None,
    *,
    crf: int = 20,
    preset: str = "veryfast",
) -> RenderChunkResult:
    """Render the virtual camera for one panorama chunk into an H.264 MP4.

    Args:
        panorama_video_path: The panorama chunk (any format PyAV decodes).
        path: The whole match's path; the chunk's ``i``-th decoded frame uses the window of
            match frame ``first_frame + i``.
        first_frame: Match frame number of the chunk's first frame.
        out_path: MP4 to write.
        fps: Output frame rate; the keyframe interval is one second (``round(fps)`` frames).
        out_size: ``(width, height)`` of the view (even numbers).
        on_progress: Called with the number of frames done after every second of video and at
            the end (a place for activity heartbeats).
        crf: x264 constant rate factor.
        preset: x264 preset.

    Returns:
        Frame count, output path and the file's SHA-256.

    Raises:
        ValueError: If the chunk has more frames than the path has left after ``first_frame``.
    """
    if first_frame < 0:
        raise ValueError("first_frame must be >= 0")
    out_path = Path(out_path)
    out_w, out_h = out_size
    keyint = max(1, round(fps))
    done = 0
    with (
        av.open(str(panorama_video_path)) as container,
        VideoWriter(out_path, out_w, out_h, fps, crf=crf, preset=preset, gop=keyint) as writer,
    ):
        stream = container.streams.video[0]
        # Frame-threaded decoding overlaps with rendering; output order is unchanged.
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            index = first_frame + done
            if index >= path.frames:
                raise ValueError(
                    f"chunk frame {done} is match frame {index}, beyond the path's "
                    f"{path.frames} frames"
                )
            panorama = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
            view = render_view(
                panorama,
                float(path.cx[index]),
                float(path.cy[index]),
                float(path.width[index]),
                out_size,
            )
            writer.write(view)
            done += 1
            if on_progress is not None and done % keyint == 0:
                on_progress(done)
    if on_progress is not None and done % keyint:
        on_progress(done)
    return RenderChunkResult(frames=done, out_path=out_path, sha256=_sha256(out_path))
