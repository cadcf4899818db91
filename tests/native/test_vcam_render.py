"""The virtual camera's native renderer against the view's NumPy reference and ``cv2.remap``.

The spec is `activities.vcam.view`: `view_maps` gives every output pixel's panorama position.
Tolerances (one policy, `assert_close`): within 1 grey level of the exact float64 bilinear sample
at those positions on any image (float rounding, ties); within 1 of ``cv2.remap`` on smooth
images, where its 1/32-pixel positions and 5-bit weights change the value by less than a level.
The CUDA twin runs where `native.cuda_available()`; it must give the CPU renderer's bytes.
"""

from __future__ import annotations

import sys
import threading

import cv2
import numpy as np
import numpy.typing as npt
import pytest

import native
from activities.vcam.view import ViewGeometry, view_maps
from native import _native

UInt8Array = npt.NDArray[np.uint8]

TOLERANCE = 1
PANORAMA = (200, 640)  # (height, width)
GEOMETRY = ViewGeometry(focal_px=180.0, cv=104.5, width=PANORAMA[1], height=PANORAMA[0])

# (cx, cy, width, (out_w, out_h)): level, tilted up and down, narrow (magnified), wider than the
# widest field of view (narrowed to 150 degrees), and near each edge, where the view reaches
# outside the panorama and the edges are replicated; odd and tiny outputs.
VIEWS = [
    (320.0, 104.5, 200.0, (96, 54)),
    (300.3, 20.0, 150.0, (96, 54)),
    (341.7, 190.0, 260.0, (96, 54)),
    (320.0, 110.0, 40.0, (64, 36)),
    (320.0, 100.0, 600.0, (96, 54)),
    (8.0, 100.0, 220.0, (80, 45)),
    (633.0, 196.0, 180.0, (80, 45)),
    (200.25, 3.0, 300.0, (33, 17)),
    (250.0, 90.0, 100.0, (1, 1)),
]


def smooth_image(height: int, width: int, seed: int = 0) -> UInt8Array:
    """Low-frequency texture: a few levels per pixel at most, so 1/32 px does not matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        value = np.full((height, width), 128.0)
        for _ in range(4):
            fx, fy = rng.uniform(-0.05, 0.05, 2)
            value += 25 * np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi))
        channels.append(value)
    return np.clip(np.stack(channels, axis=-1), 0, 255).round().astype(np.uint8)


def sharp_image(height: int, width: int, seed: int = 0) -> UInt8Array:
    """Random noise: the hardest case for positions (a level per 1/255 px)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def render(
    panorama: UInt8Array, view: tuple[float, float, float, tuple[int, int]], threads: int = 1
) -> UInt8Array:
    cx, cy, width, (out_w, out_h) = view
    out = np.empty((out_h, out_w, 3), np.uint8)
    result = _native.vcam_render(
        panorama, out, cx, cy, width, GEOMETRY.focal_px, GEOMETRY.cv, threads=threads
    )
    assert result is out
    return out


def float_reference(
    panorama: UInt8Array,
    view: tuple[float, float, float, tuple[int, int]],
    geometry: ViewGeometry = GEOMETRY,
) -> UInt8Array:
    """Bilinear in float64 at `view_maps`' positions, edges replicated, rounded to nearest."""
    cx, cy, width, out_size = view
    map_x, map_y = view_maps(geometry, cx, cy, width, out_size)
    height, pano_w = panorama.shape[:2]
    u = np.clip(map_x.astype(np.float64), 0, pano_w - 1)
    v = np.clip(map_y.astype(np.float64), 0, height - 1)
    x0 = np.minimum(np.floor(u).astype(int), max(pano_w - 2, 0))
    y0 = np.minimum(np.floor(v).astype(int), max(height - 2, 0))
    x1 = np.minimum(x0 + 1, pano_w - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    fx = (u - x0)[..., None]
    fy = (v - y0)[..., None]
    p = panorama.astype(np.float64)
    top = p[y0, x0] * (1 - fx) + p[y0, x1] * fx
    bottom = p[y1, x0] * (1 - fx) + p[y1, x1] * fx
    return np.floor(top * (1 - fy) + bottom * fy + 0.5).astype(np.uint8)


def remap_reference(
    panorama: UInt8Array, view: tuple[float, float, float, tuple[int, int]]
) -> UInt8Array:
    cx, cy, width, out_size = view
    map_x, map_y = view_maps(GEOMETRY, cx, cy, width, out_size)
    result = cv2.remap(panorama, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(result, np.uint8).reshape(out_size[1], out_size[0], 3)


def assert_close(actual: UInt8Array, expected: UInt8Array, tolerance: int = TOLERANCE) -> None:
    assert actual.shape == expected.shape
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    worst = np.argwhere(diff.max(axis=-1) == diff.max())[:3].tolist()
    assert int(diff.max()) <= tolerance, f"max diff {int(diff.max())} at {worst}"


@pytest.mark.parametrize("view", VIEWS)
def test_matches_the_float_reference_and_cv2_remap(view) -> None:
    smooth = smooth_image(*PANORAMA)
    ours = render(smooth, view)
    assert_close(ours, float_reference(smooth, view))
    assert_close(ours, remap_reference(smooth, view))
    sharp = sharp_image(*PANORAMA)
    assert_close(render(sharp, view), float_reference(sharp, view))


def test_a_level_view_at_one_to_one_is_the_panorama_at_its_centre() -> None:
    # A level view has d_y = 0 on its centre row, which maps to the horizon row exactly, and
    # near the centre column the cylinder and the plane agree to well below a pixel.
    panorama = sharp_image(*PANORAMA)
    geometry = GEOMETRY
    out = np.empty((3, 5, 3), np.uint8)
    _native.vcam_render(panorama, out, 300.0, 104.0, 5.0, geometry.focal_px, 104.0)
    np.testing.assert_array_equal(out[1], panorama[104, 298:303])


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (2, 2)])
def test_tiny_panoramas_replicate_their_edges(shape: tuple[int, int]) -> None:
    panorama = sharp_image(*shape, seed=4)
    view = (0.3, 0.6, 3.0, (9, 5))
    cx, cy, width, (out_w, out_h) = view
    geometry = ViewGeometry(2.0, 0.5, shape[1], shape[0])
    out = np.empty((out_h, out_w, 3), np.uint8)
    _native.vcam_render(panorama, out, cx, cy, width, geometry.focal_px, geometry.cv)
    if shape == (1, 1):
        assert (out == panorama[0, 0]).all()
    assert_close(out, float_reference(panorama, view, geometry))


def test_the_result_does_not_depend_on_the_thread_count() -> None:
    panorama = sharp_image(*PANORAMA, seed=1)
    view = (310.0, 60.0, 250.0, (301, 170))
    one = render(panorama, view, threads=1)
    np.testing.assert_array_equal(render(panorama, view, threads=2), one)
    np.testing.assert_array_equal(render(panorama, view, threads=0), one)
    np.testing.assert_array_equal(render(panorama, view, threads=7), one)


def test_strided_rows_are_read_and_written_in_place() -> None:
    big = sharp_image(PANORAMA[0], PANORAMA[1] + 20, seed=2)
    panorama = big[:, 10:-10]
    assert not panorama.flags.c_contiguous
    view = (300.0, 100.0, 200.0, (64, 36))
    canvas = np.full((36, 80, 3), 9, np.uint8)
    out = canvas[:, 8:72]
    cx, cy, width, _ = view
    _native.vcam_render(panorama, out, cx, cy, width, GEOMETRY.focal_px, GEOMETRY.cv)
    np.testing.assert_array_equal(out, render(np.ascontiguousarray(panorama), view))
    assert (canvas[:, :8] == 9).all() and (canvas[:, 72:] == 9).all()


def _bad_calls() -> list[object]:
    pano = np.zeros((20, 40, 3), np.uint8)
    read_only = np.zeros((9, 16, 3), np.uint8)
    read_only.flags.writeable = False
    cases: list[tuple[str, dict[str, object], str]] = [
        ("list panorama", {"panorama": [[0, 0, 0]]}, "panorama must be a numpy array, got list"),
        ("float panorama", {"panorama": pano.astype(np.float32)}, "panorama must be uint8"),
        (
            "4 channels",
            {"panorama": np.zeros((20, 40, 4), np.uint8)},
            r"panorama must have shape \(h, w, 3\), got \(20, 40, 4\)",
        ),
        (
            "2-d panorama",
            {"panorama": np.zeros((20, 40), np.uint8)},
            r"panorama must have shape \(h, w, 3\)",
        ),
        ("empty", {"panorama": np.zeros((0, 40, 3), np.uint8)}, "panorama must not be empty"),
        ("columns skipped", {"panorama": pano[:, ::2]}, "panorama must be C-contiguous"),
        (
            "planar",
            {"panorama": np.zeros((3, 20, 40), np.uint8).transpose(1, 2, 0)},
            "panorama must be C-contiguous",
        ),
        ("out dtype", {"out": np.zeros((9, 16, 3), np.int16)}, "out must be uint8"),
        ("out shape", {"out": np.zeros((9, 16), np.uint8)}, r"out must have shape \(h, w, 3\)"),
        ("out read-only", {"out": read_only}, "out must be writeable"),
        ("out overlaps", {"panorama": pano, "out": pano[:9, :16]}, "out must not overlap"),
        ("zero width", {"width": 0.0}, "width must be positive"),
        ("negative width", {"width": -5.0}, "width must be positive"),
        ("nan width", {"width": float("nan")}, "width must be finite"),
        ("nan cx", {"cx": float("nan")}, "cx must be finite"),
        ("inf cy", {"cy": float("inf")}, "cy must be finite"),
        ("zero focal", {"focal_px": 0.0}, "focal_px must be positive"),
        ("inf focal", {"focal_px": float("inf")}, "focal_px must be finite"),
        ("nan cv", {"cv": float("nan")}, "cv must be finite"),
        ("negative threads", {"threads": -1}, "threads must be >= 0"),
    ]
    return [pytest.param(changes, message, id=case) for case, changes, message in cases]


def _call(function, changes: dict[str, object]) -> object:
    args: dict[str, object] = {
        "panorama": np.zeros((20, 40, 3), np.uint8),
        "out": np.zeros((9, 16, 3), np.uint8),
        "cx": 20.0,
        "cy": 10.0,
        "width": 30.0,
        "focal_px": 12.0,
        "cv": 10.0,
        "threads": 1,
    }
    args.update(changes)
    return function(**args)


@pytest.mark.parametrize(("changes", "message"), _bad_calls())
def test_bad_arguments_are_clear_value_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^vcam_render: {message}"):
        _call(_native.vcam_render, changes)


def test_the_gil_is_released_while_rendering() -> None:
    # With a switch interval far longer than the test, a thread gives the GIL up only when it
    # blocks or releases it. The main thread waits for the render thread to start; it can run
    # again while the render is in flight only if vcam_render released the GIL, and then the
    # render thread cannot record its end before the main thread blocks (in join). If the GIL
    # were held, the main thread would wake only once the render thread had finished.
    panorama = sharp_image(1000, 2000, seed=3)
    out = np.empty((1080, 1920, 3), np.uint8)

    def work(started: threading.Event, finished: list[bool]) -> None:
        started.set()
        _native.vcam_render(panorama, out, 1000.0, 500.0, 900.0, 600.0, 500.0, threads=1)
        finished.append(True)

    observed_in_flight = False
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        for _ in range(5):  # a render that ends before the main thread wakes proves nothing
            started = threading.Event()
            finished: list[bool] = []
            thread = threading.Thread(target=work, args=(started, finished))
            thread.start()
            started.wait()
            in_flight = not finished
            thread.join()
            assert finished
            if in_flight:
                observed_in_flight = True
                break
    finally:
        sys.setswitchinterval(interval)
    assert observed_in_flight


# ------------------------------------------------------------------ CUDA twin

needs_cuda = pytest.mark.skipif(not native.cuda_available(), reason="no CUDA device")


def _cuda_module():
    return pytest.importorskip("native._native_cuda", reason="built without CUDA")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("view", VIEWS)
def test_cuda_gives_the_cpu_renderers_bytes(view) -> None:
    cuda = _cuda_module()
    panorama = sharp_image(*PANORAMA, seed=5)
    cx, cy, width, (out_w, out_h) = view
    out = np.empty((out_h, out_w, 3), np.uint8)
    assert cuda.vcam_render(panorama, out, cx, cy, width, GEOMETRY.focal_px, GEOMETRY.cv) is out
    # Built without fused multiply-adds, so bit-exact is expected; a level is the stated bound.
    assert_close(out, render(panorama, view))
    assert_close(out, float_reference(panorama, view))


@pytest.mark.gpu
@needs_cuda
def test_cuda_full_size_strided() -> None:
    cuda = _cuda_module()
    big = sharp_image(1668, 5720, seed=6)
    panorama = big[:, 10:-10]
    canvas = np.full((1080, 1930, 3), 9, np.uint8)
    out = canvas[:, 5:1925]
    cuda.vcam_render(panorama, out, 2850.0, 700.0, 2000.0, 1727.0, 834.0)
    expected = np.empty((1080, 1920, 3), np.uint8)
    _native.vcam_render(panorama, expected, 2850.0, 700.0, 2000.0, 1727.0, 834.0, threads=0)
    assert_close(out, expected)
    assert (canvas[:, :5] == 9).all() and (canvas[:, 1925:] == 9).all()


def test_cuda_twin_checks_arguments_like_the_cpu_renderer() -> None:
    cuda = _cuda_module()  # the checks run before any CUDA call: no device needed
    with pytest.raises(ValueError, match=r"^vcam_render_cuda: width must be positive"):
        _call(cuda.vcam_render, {"width": 0.0})


@pytest.mark.skipif(native.cuda_available(), reason="a CUDA device is present")
def test_without_a_device_the_cuda_twin_refuses_to_run() -> None:
    cuda = _cuda_module()
    with pytest.raises(RuntimeError, match="vcam_render_cuda"):
        _call(cuda.vcam_render, {})
