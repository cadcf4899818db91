"""Rendering the virtual camera: cut each frame's view out of the panorama video.

Two renderers, one per kind of plan:

* :func:`render_rectilinear_view` shows the rectilinear view of a pinhole camera at the
  panorama's centre (`activities.vcam.view`: vertical lines stay vertical and straight lines on
  the pitch stay straight). It runs the native renderer (``native._native.vcam_render``: bilinear,
  edges replicated, rows shared out to all cores with the GIL released); without the native core
  it falls back to :func:`~activities.vcam.view.render_view_remap`, the same view by
  ``cv2.remap``. Bilinear sampling aliases where it shrinks by 2x or more, so a window at least
  ``2 * out_w`` wide is rendered from the panorama reduced by a whole factor ``k =
  floor(width / out_w)`` with an area filter on the panorama's grid (as for the crop below),
  through the same view with its geometry scaled by ``1 / k``. The factor follows the window's
  mean scale: the projection shrinks the view's centre more than that and its sides less, so a
  wide view is a little soft at its sides and a little aliased at its centre. (With the planner's
  windows, never taller than the panorama, a 1080p view of a 5700x1668 panorama never needs it.)
* :func:`render_view` resamples an axis-aligned window with a single ``cv2.warpAffine``
  (bilinear, exact sub-pixel position and scale): a crop of the panorama, for paths planned
  before views existed. Bilinear sampling alone aliases when it shrinks by 2x or more (grass
  texture and pitch lines would shimmer as the camera pans), so for those zooms the window's
  neighbourhood is first reduced by an integer factor ``k`` with an area (box) filter whose blocks
  are aligned to the *panorama's* pixel grid, not the window's. The prefiltered pixels therefore
  do not change as the window moves, only where they are sampled, which is what keeps a slow pan
  free of shimmer; the remaining scale (``1 <= s/k < 2``) is bilinear.

:func:`render_chunk` decodes a panorama chunk with PyAV, renders every frame (the rectilinear view
when given the panorama's :class:`~activities.vcam.view.ViewGeometry`, else the crop) and encodes
the views with :class:`~polyvision.media.writer.VideoWriter`, one keyframe per second so HLS
segments can be cut at chunk boundaries.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from activities.vcam.plan import ASPECT, VcamPath
from activities.vcam.view import ViewGeometry, render_view_remap
from polyvision.media.encoder import EncodedRendition, Encoder, EncodeTarget, LadderEncoder

__all__ = [
    "RenderChunkResult",
    "RenderedRendition",
    "render_chunk",
    "render_ladder",
    "render_rectilinear_view",
    "render_view",
    "sha256_of",
]

BgrImage = npt.NDArray[np.uint8]

PROGRESS_FRAMES = 5
"""Progress is reported every this many frames: a frame of the whole ladder can take a good
fraction of a second on a busy CPU, and a heartbeat timeout is seconds (the SDK throttles the
beats it sends, so reporting often costs nothing)."""
NativeRenderer = Callable[..., BgrImage]


@functools.cache
def _native_renderer() -> NativeRenderer | None:
    """The native ``vcam_render``, or None where the native core is not built."""
    try:
        from native import _native
    except ImportError:
        return None
    return _native.vcam_render


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


def render_rectilinear_view(
    panorama_bgr: BgrImage,
    geometry: ViewGeometry,
    cx: float,
    cy: float,
    width: float,
    out_size: tuple[int, int] = (1920, 1080),
    *,
    out: BgrImage | None = None,
    threads: int = 0,
) -> BgrImage:
    """The rectilinear view of path row ``(cx, cy, width)`` (`activities.vcam.view`).

    Bilinear with the panorama's edges replicated: :func:`~activities.vcam.view.render_view_remap`
    up to rounding (``cv2.remap`` rounds positions to 1/32 pixel, this renderer does not),
    without building the per-pixel maps. A window ``k >= 2`` times wider than the output is
    rendered from the panorama reduced by ``k`` with an area filter (see the module docstring).

    Args:
        panorama_bgr: ``[H, W, 3]`` uint8 BGR panorama frame (pixels packed; rows may be strided).
        geometry: The panorama's cylinder.
        cx: View centre column in panorama pixels.
        cy: View centre row in panorama pixels.
        width: Span of the view on the panorama's centre row, in panorama pixels.
        out_size: ``(width, height)`` of the view.
        out: ``[out_h, out_w, 3]`` uint8 array to render into (``None``: a new one).
        threads: Rows are shared out to this many threads; 0: every CPU the process may use.

    Returns:
        ``out`` (a new array when it is ``None``).

    Raises:
        ValueError: Bad sizes, a non-positive width or non-finite numbers.
    """
    out_w, out_h = out_size
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"out_size must be positive, got {out_size}")
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be positive and finite, got {width}")
    if out is None:
        out = np.empty((out_h, out_w, 3), np.uint8)
    elif out.shape != (out_h, out_w, 3):
        raise ValueError(f"out is {out.shape}, expected {(out_h, out_w, 3)}")
    k = _prefilter_factor(width / out_w)
    if k > 1 and panorama_bgr.shape[0] >= k and panorama_bgr.shape[1] >= k:
        panorama_bgr, geometry, cx, cy, width = _reduced(panorama_bgr, geometry, cx, cy, width, k)
    renderer = _native_renderer()
    if renderer is None:
        out[...] = render_view_remap(panorama_bgr, geometry, cx, cy, width, out_size)
        return out
    return renderer(
        panorama_bgr, out, cx, cy, width, geometry.focal_px, geometry.cv, threads=threads
    )


def _reduced(
    panorama_bgr: BgrImage, geometry: ViewGeometry, cx: float, cy: float, width: float, k: int
) -> tuple[BgrImage, ViewGeometry, float, float, float]:
    """The panorama reduced by ``k`` (area filter over whole ``k``-blocks, so cv2.resize's box
    filter is exact) and the view's terms in its pixels: panorama position ``p`` is
    ``(p + 0.5) / k - 0.5`` there, and the focal length shrinks by ``k``, which keeps the view's
    field of view and tilt."""
    height, width_px = panorama_bgr.shape[0] // k, panorama_bgr.shape[1] // k
    blocks = panorama_bgr[: height * k, : width_px * k]
    small = np.asarray(
        cv2.resize(blocks, (width_px, height), interpolation=cv2.INTER_AREA), np.uint8
    )
    scaled = ViewGeometry(geometry.focal_px / k, (geometry.cv + 0.5) / k - 0.5, width_px, height)
    return small, scaled, (cx + 0.5) / k - 0.5, (cy + 0.5) / k - 0.5, width / k


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


@dataclass(frozen=True)
class RenderedRendition:
    """One rendition written by :func:`render_ladder`.

    Attributes:
        rendition: What the encoder wrote (name, size, path, frames, codec string, encoder).
        sha256: Hex digest of the file.
        size: Its size in bytes.
    """

    rendition: EncodedRendition
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
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
    out_size: tuple[int, int] = (1920, 1080),
    on_progress: Callable[[int], None] | None = None,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    geometry: ViewGeometry | None = None,
) -> RenderChunkResult:
    """Render the virtual camera for one panorama chunk into one H.264 MP4.

    :func:`render_ladder` with a single rendition of ``out_size`` and one keyframe per second.

    Args:
        panorama_video_path: The panorama chunk (any format PyAV decodes).
        path: The whole match's path; the chunk's ``i``-th decoded frame uses the window of
            match frame ``first_frame + i``.
        first_frame: Match frame number of the chunk's first frame.
        out_path: MP4 to write.
        fps: Output frame rate; the keyframe interval is one second (``round(fps)`` frames).
        out_size: ``(width, height)`` of the view (even numbers).
        on_progress: Called with the number of frames done every `PROGRESS_FRAMES` frames and
            at the end (a place for activity heartbeats).
        crf: x264 constant rate factor.
        preset: x264 preset.
        geometry: The panorama's cylinder (see :func:`render_ladder`).

    Returns:
        Frame count, output path and the file's SHA-256.

    Raises:
        ValueError: If the chunk has more frames than the path has left after ``first_frame``,
            or its frames are not the size ``geometry`` describes.
    """
    out_path = Path(out_path)
    target = EncodeTarget("view", out_size[0], out_size[1], out_path)
    (written,) = render_ladder(
        panorama_video_path,
        path,
        first_frame,
        [target],
        fps,
        gop=max(1, round(fps)),
        on_progress=on_progress,
        crf=crf,
        preset=preset,
        geometry=geometry,
    )
    return RenderChunkResult(written.rendition.frames, out_path, written.sha256)


def render_ladder(
    panorama_video_path: Path,
    path: VcamPath,
    first_frame: int,
    targets: Sequence[EncodeTarget],
    fps: float,
    *,
    gop: int,
    on_progress: Callable[[int], None] | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    encoder: Encoder = "libx264",
    geometry: ViewGeometry | None = None,
) -> list[RenderedRendition]:
    """Render the virtual camera for one panorama chunk once, into every rendition in one pass.

    Each frame is rendered at the top rendition's size and scaled into the others by the
    :class:`~polyvision.media.encoder.LadderEncoder` (keyframes every ``gop`` frames, at the
    same frames in every rendition; the first frame is one, so the chunk starts a segment).

    Args:
        panorama_video_path: The panorama chunk (any format PyAV decodes).
        path: The whole match's path; the chunk's ``i``-th decoded frame uses the window of
            match frame ``first_frame + i``.
        first_frame: Match frame number of the chunk's first frame.
        targets: The renditions, top first (the view is rendered at the first one's size).
        fps: Output frame rate.
        gop: Keyframe interval in frames.
        on_progress: Called with the number of frames done every `PROGRESS_FRAMES` frames and
            at the end (a place for activity heartbeats).
        crf: Constant rate factor (x264) or constant-quality level (NVENC).
        preset: x264 preset.
        encoder: ``libx264`` or ``h264_nvenc``.
        geometry: The panorama's cylinder: each frame is then the rectilinear view
            (:func:`render_rectilinear_view`, on every core); ``None``: the axis-aligned crop
            (:func:`render_view`) that paths planned before views were rendered with.

    Returns:
        Every rendition written, top first, with its digest and size.

    Raises:
        ValueError: If the chunk has more frames than the path has left after ``first_frame``,
            or its frames are not the size ``geometry`` describes.
    """
    if first_frame < 0:
        raise ValueError("first_frame must be >= 0")
    if not targets:
        raise ValueError("no renditions to render")
    out_size = (targets[0].width, targets[0].height)
    buffer = np.empty((out_size[1], out_size[0], 3), np.uint8)
    done = 0
    with (
        av.open(str(panorama_video_path)) as container,
        LadderEncoder(targets, fps, gop=gop, crf=crf, preset=preset, encoder=encoder) as ladder,
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
            cx, cy, width = (float(path.cx[index]), float(path.cy[index]), float(path.width[index]))
            if geometry is None:
                view = render_view(panorama, cx, cy, width, out_size)
            else:
                if panorama.shape[:2] != (geometry.height, geometry.width):
                    raise ValueError(
                        f"panorama frame is {panorama.shape[1]}x{panorama.shape[0]}, the "
                        f"geometry is for {geometry.width}x{geometry.height}"
                    )
                # The encoder converts the frame in write(), so one buffer serves every frame.
                view = render_rectilinear_view(
                    panorama, geometry, cx, cy, width, out_size, out=buffer
                )
            ladder.write(view)
            done += 1
            if on_progress is not None and done % PROGRESS_FRAMES == 0:
                on_progress(done)
        written = ladder.close()
    if on_progress is not None and done % PROGRESS_FRAMES:
        on_progress(done)
    return [RenderedRendition(r, sha256_of(r.path), r.path.stat().st_size) for r in written]
