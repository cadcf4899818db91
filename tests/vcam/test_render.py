"""Rendering the virtual camera: exact crops, sub-pixel sampling, and a whole chunk to H.264."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from activities.vcam.plan import VcamPath
from activities.vcam.render import render_chunk, render_view
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
    assert progress == [10, 20, 30]
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
