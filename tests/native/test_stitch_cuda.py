"""The CUDA twin of the stitch kernel against the CPU kernel (and the float reference).

Runs where `native.cuda_available()` (the CUDA module was built and a device is present);
elsewhere only the no-device behaviour is checked.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import native
from tests.native.stitch_cases import assert_close, make_case, reference

needs_cuda = pytest.mark.skipif(not native.cuda_available(), reason="no CUDA device")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("seed", range(3))
def test_cuda_matches_the_cpu_kernel(seed: int) -> None:
    case = make_case(seed, panorama=(241, 777), left_frame=(300, 520), right_frame=(280, 500))
    gpu = native.stitch_panorama_cuda(*case.args)
    assert_close(gpu, native.stitch_panorama(*case.args))
    assert_close(gpu, reference(case))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize(
    ("panorama", "left_frame", "right_frame", "band_half"),
    [
        ((1, 1), (1, 1), (1, 1), 1),
        ((9, 17), (2, 3), (5, 4), 2),
        ((33, 250), (40, 61), (17, 300), 0),
    ],
)
def test_cuda_odd_sizes(
    panorama: tuple[int, int],
    left_frame: tuple[int, int],
    right_frame: tuple[int, int],
    band_half: int,
) -> None:
    case = make_case(11, panorama, left_frame, right_frame, band_half)
    assert_close(native.stitch_panorama_cuda(*case.args), native.stitch_panorama(*case.args))


@pytest.mark.gpu
@needs_cuda
def test_cuda_writes_strided_out_in_place() -> None:
    case = make_case(4)
    height, width, _ = case.shape
    canvas = np.full((height, width + 10, 3), 9, np.uint8)
    view = canvas[:, 4 : 4 + width]
    assert native.stitch_panorama_cuda(*case.args, out=view) is view
    assert_close(view, native.stitch_panorama(*case.args))
    assert (canvas[:, :4] == 9).all() and (canvas[:, 4 + width :] == 9).all()


@pytest.mark.gpu
@needs_cuda
def test_cuda_checks_arguments_like_the_cpu_kernel() -> None:
    case = make_case(1)
    bad = replace(case, seam=case.seam.astype(np.int64))
    with pytest.raises(ValueError, match="stitch_panorama_cuda: seam must be int32"):
        native.stitch_panorama_cuda(*bad.args)


@pytest.mark.skipif(native.cuda_available(), reason="a CUDA device is present")
def test_without_a_device_the_cuda_kernel_refuses_to_run() -> None:
    assert native.cuda_available() is False
    case = make_case(0)
    with pytest.raises(RuntimeError, match="CUDA"):
        native.stitch_panorama_cuda(*case.args)
