"""Rendering the virtual camera: exact crops, sub-pixel sampling, and a whole chunk to H.264."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

import activities.vcam.render as render_module
from activities.vcam.plan import VcamPath
from activities.vcam.render import (
    PROGRESS_FRAMES,
    render_chunk,
    render_rectilinear_view,
    render_view,
)
from activities.vcam.view import ViewGeometry, render_view_remap, view_maps
from polyvision.media.writer import VideoWriter


def code_image(width=400, height=300):
    """Every pixel different: B = x, G = y, R = a mix (all mod 256)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx % 256, yy % 256, (7 * xx + 3 * yy) % 256], axis=-1).astype(np.uint8)


def linear_image(width=400, height=300):
    """Smooth linear ramps, which area and bilinear sampling reproduce at any position."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([0.6 * xx, 0.8 * yy, 0.3 * xx + 0.4 * yy], axis=-1).round().astype(np.uint8)


def test_integer_window_at_one_to_one_is_the_exact_crop():
    pano = code_image()
    view = render_view(pano, 200.0, 150.0, 160.0, out_size=(160, 90))
    np.testing.assert_array_equal(view, pano[105:195, 120:280])
    view = render_view(pano, 81.0, 46.0, 32.0, out_size=(32, 18))
    np.testing.assert_array_equal(view, pano[37:55, 65:97])


def test_integer_window_at_half_scale_is_the_block_mean():
    pano = linear_image()
    view = render_view(pano, 200.0, 150.0, 320.0, out_size=(160, 90))
    crop = pano[60:240, 40:360].astype(np.float64)
    blocks = crop.reshape(90, 2, 160, 2, 3).mean(axis=(1, 3))
    assert np.abs(view - blocks).max() <= 1.0


def test_quarter_pixel_pan_at_one_to_one():
    # Slope 4 ramps: a quarter-pixel offset lands exactly on an integer level.
    yy, xx = np.mgrid[0:64, 0:64]
    pano = np.stack([4 * xx, 4 * yy, np.zeros_like(xx)], axis=-1).astype(np.uint8)
    view = render_view(pano, 32.25, 30.5, 32.0, out_size=(32, 18)).astype(int)
    np.testing.assert_array_equal(view[..., 0], np.tile(65 + 4 * np.arange(32), (18, 1)))
    np.testing.assert_array_equal(view[..., 1], np.tile(86 + 4 * np.arange(18)[:, None], (1, 32)))


# Not exactly 1:1: at one scale every pixel has the same sub-pixel phase, so uint8 rounding
# errors no longer average out (the 1:1 case has its own exact tests above).
@pytest.mark.parametrize("width", [48.0, 161.3, 203.7, 330.0, 371.3])
def test_sub_pixel_windows_sample_the_right_place(width):
    # The view of a linear ramp is the ramp evaluated at each output pixel's centre.
    pano = linear_image()
    out_w, out_h = 160, 90
    cx, cy = 197.3, 151.6
    view = render_view(pano, cx, cy, width, out_size=(out_w, out_h)).astype(np.float64)
    # OpenCV rounds halves up (INTER_AREA's block means often end in .5), a bias of up to half a
    # level that would hide a geometric shift. The negated image has the same bias with the
    # opposite sign of the ramp, so half their difference is the geometry alone.
    negated = render_view(255 - pano, cx, cy, width, out_size=(out_w, out_h)).astype(np.float64)
    view = (view - negated + 255) / 2
    height = width * 9 / 16
    u = cx - width / 2 + (np.arange(out_w) + 0.5) * width / out_w - 0.5
    v = cy - height / 2 + (np.arange(out_h) + 0.5) * height / out_h - 0.5
    xx, yy = np.meshgrid(u, v)
    expected = np.stack([0.6 * xx, 0.8 * yy, 0.3 * xx + 0.4 * yy], axis=-1)
    error = view - expected
    assert np.abs(error).max() <= 1.0  # uint8 rounding of the ramp and of the result
    # No systematic shift: a 0.1 px shift would give 0.06..0.08 levels on each channel.
    assert np.abs(error.mean(axis=(0, 1))).max() < 0.04


def test_full_size_render_shape():
    pano = np.zeros((1100, 3648, 3), np.uint8)
    assert render_view(pano, 1824.0, 550.0, 1955.0).shape == (720, 1280, 3)


def square_centre(frame: np.ndarray) -> tuple[float, float]:
    mask = frame.mean(axis=-1) > 128
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def test_render_chunk_follows_a_moving_square(tmp_path: Path):
    frames, fps = 30, 10.0
    pano_path = tmp_path / "pano.mp4"
    centres = [(100.0 + 15 * i, 80.0 + 2 * i) for i in range(frames)]
    with VideoWriter(pano_path, 640, 200, fps, gop=10) as writer:
        for x, y in centres:
            frame = np.full((200, 640, 3), 40, np.uint8)
            frame[int(y) - 10 : int(y) + 10, int(x) - 10 : int(x) + 10] = 255
            writer.write(frame)

    # The path covers 5 frames before the chunk: the chunk is match frames 5 .. 34.
    first = 5
    cx = np.array([0.0] * first + [x - 0.5 for x, _ in centres])
    cy = np.array([0.0] * first + [y - 0.5 for _, y in centres])
    path = VcamPath(cx, cy, np.full(first + frames, 320.0))
    progress: list[int] = []
    out = tmp_path / "view.mp4"
    result = render_chunk(
        pano_path, path, first, out, fps, out_size=(320, 180), on_progress=progress.append
    )

    assert result.frames == frames
    assert result.out_path == out
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert progress == list(range(PROGRESS_FRAMES, frames + 1, PROGRESS_FRAMES))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    with av.open(str(out)) as container:
        keyframes = [
            i
            for i, packet in enumerate(container.demux(video=0))
            if packet.size and packet.is_keyframe
        ]
    assert keyframes == [0, 10, 20]  # one keyframe per second
    assert len(decoded) == frames
    assert decoded[0].shape == (180, 320, 3)
    for view in decoded:
        x, y = square_centre(view)
        assert abs(x - 159.5) < 1.5 and abs(y - 89.5) < 1.5


def test_render_chunk_refuses_a_path_that_is_too_short(tmp_path: Path):
    pano_path = tmp_path / "pano.mp4"
    with VideoWriter(pano_path, 64, 36, 10.0) as writer:
        for _ in range(5):
            writer.write(np.zeros((36, 64, 3), np.uint8))
    path = VcamPath(np.full(3, 32.0), np.full(3, 18.0), np.full(3, 64.0))
    with pytest.raises(ValueError, match="beyond the path"):
        render_chunk(pano_path, path, 0, tmp_path / "v.mp4", 10.0, out_size=(64, 36))


# ------------------------------------------------------------------ the rectilinear view


def smooth_image(width=320, height=120, phase=0.0):
    """Slow waves (a few levels per pixel): cv2.remap's 1/32 px and 4:2:0 chroma barely show."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    b = 128 + 90 * np.sin(xx / 23.0 + phase) * np.cos(yy / 31.0)
    g = 128 + 90 * np.cos(xx / 17.0 - yy / 29.0 + phase)
    r = 128 + 60 * np.sin((xx + yy) / 41.0 + 2 * phase)
    return np.stack([b, g, r], axis=-1).round().astype(np.uint8)


GEOMETRY = ViewGeometry(focal_px=90.0, cv=58.5, width=320, height=120)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_rectilinear_view_matches_the_remap_peer():
    pano = smooth_image()
    for cx, cy, width in [(160.0, 58.5, 120.0), (40.0, 20.0, 150.0), (300.0, 110.0, 90.0)]:
        ours = render_rectilinear_view(pano, GEOMETRY, cx, cy, width, (96, 54))
        assert max_diff(ours, render_view_remap(pano, GEOMETRY, cx, cy, width, (96, 54))) <= 1


def test_rectilinear_view_without_the_native_core_is_the_remap_peer(monkeypatch):
    monkeypatch.setattr(render_module, "_native_renderer", lambda: None)
    pano = smooth_image()
    out = np.zeros((54, 96, 3), np.uint8)
    view = render_rectilinear_view(pano, GEOMETRY, 150.0, 50.0, 120.0, (96, 54), out=out)
    assert view is out
    np.testing.assert_array_equal(
        view, render_view_remap(pano, GEOMETRY, 150.0, 50.0, 120.0, (96, 54))
    )


def test_wide_rectilinear_views_are_prefiltered_on_the_panorama_grid():
    # One-pixel stripes alias to anything between black and white under bilinear sampling at a
    # 2x reduction; the 2x2 area filter turns them into a flat grey first.
    pano = np.zeros((120, 320, 3), np.uint8)
    pano[:, ::2] = 255
    view = render_rectilinear_view(pano, GEOMETRY, 160.0, 58.5, 100.0, (48, 27))
    assert int(view.min()) >= 126 and int(view.max()) <= 129
    # The reduced panorama is sampled at the same places: a linear ramp (which area and
    # bilinear filters keep) comes out as the ramp at the view's positions.
    yy, xx = np.mgrid[0:120, 0:320].astype(np.float64)
    ramp = np.stack([0.7 * xx, 2 * yy, 0.3 * xx + yy], axis=-1).round().astype(np.uint8)
    view = render_rectilinear_view(ramp, GEOMETRY, 160.0, 58.5, 100.0, (48, 27))
    map_x, map_y = view_maps(GEOMETRY, 160.0, 58.5, 100.0, (48, 27))
    expected = np.stack([0.7 * map_x, 2 * map_y, 0.3 * map_x + map_y], axis=-1)
    assert np.abs(view - expected).max() <= 1.5  # rounding of the ramp, the area and the sample


def test_render_chunk_with_geometry_renders_the_rectilinear_view(tmp_path: Path):
    frames, fps, first = 12, 6.0, 2
    pano_path = tmp_path / "pano.mp4"
    with VideoWriter(pano_path, 320, 120, fps, crf=0) as writer:
        for i in range(frames):
            writer.write(smooth_image(phase=0.2 * i))
    with av.open(str(pano_path)) as container:
        panoramas = [
            np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in container.decode(video=0)
        ]
    assert len(panoramas) == frames

    n = first + frames
    cx = np.linspace(120.0, 200.0, n, dtype=np.float32)
    cy = np.linspace(40.0, 75.0, n, dtype=np.float32)
    width = np.linspace(110.0, 140.0, n, dtype=np.float32)
    path = VcamPath(cx, cy, width)
    out = tmp_path / "view.mp4"
    result = render_chunk(
        pano_path, path, first, out, fps, out_size=(96, 54), crf=0, geometry=GEOMETRY
    )

    assert result.frames == frames
    with av.open(str(out)) as container:
        views = [
            np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in container.decode(video=0)
        ]
    assert len(views) == frames
    expected = []
    for i, panorama in enumerate(panoramas):
        k = first + i
        window = (float(path.cx[k]), float(path.cy[k]), float(path.width[k]))
        expected.append(render_view_remap(panorama, GEOMETRY, *window, (96, 54)))
        # The rectilinear view is far from the crop of the same window.
        crop = render_view(panorama, *window, out_size=(96, 54))
        assert max_diff(crop, expected[-1]) > 20
    # The expected views through the same (lossless, but 4:2:0) encoding: what is left is our
    # renderer's difference from cv2.remap, a level, after the colour conversion.
    reference_path = tmp_path / "reference.mp4"
    with VideoWriter(reference_path, 96, 54, fps, crf=0) as writer:
        for view in expected:
            writer.write(view)
    with av.open(str(reference_path)) as container:
        references = [
            np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in container.decode(video=0)
        ]
    for view, reference in zip(views, references, strict=True):
        assert max_diff(view, reference) <= 3


def test_render_chunk_refuses_a_geometry_of_another_panorama(tmp_path: Path):
    pano_path = tmp_path / "pano.mp4"
    with VideoWriter(pano_path, 64, 36, 10.0) as writer:
        writer.write(np.zeros((36, 64, 3), np.uint8))
    path = VcamPath(np.full(1, 32.0), np.full(1, 18.0), np.full(1, 64.0))
    with pytest.raises(ValueError, match="geometry is for 320x120"):
        render_chunk(
            pano_path, path, 0, tmp_path / "v.mp4", 10.0, out_size=(64, 36), geometry=GEOMETRY
        )
