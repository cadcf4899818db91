"""The fused stitch kernel (`native.stitch_panorama`) against cv2.remap + the blend in float."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import native
from tests.native.stitch_cases import (
    StitchCase,
    assert_close,
    make_case,
    reference,
    reference_value,
)


@pytest.mark.parametrize("seed", range(4))
def test_matches_remap_and_float_blend(seed: int) -> None:
    case = make_case(seed)
    out = native.stitch_panorama(*case.args)
    assert_close(out, reference(case))
    # Tighter: within half a grey level (plus the 16.16 gains' rounding) of the exact value.
    exact = np.minimum(reference_value(case), 255.0)
    assert float(np.abs(out - exact).max()) <= 0.5 + 0.01


def test_unit_gains_and_hard_seam_are_bit_exact_with_cv2_remap() -> None:
    case = replace(make_case(7, band_half=0), gains=np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(native.stitch_panorama(*case.args), reference(case))
    # The same with a band: only blended pixels may round differently.
    banded = replace(case, band_half=6)
    assert_close(native.stitch_panorama(*banded.args), reference(banded))


@pytest.mark.parametrize(
    ("panorama", "left_frame", "right_frame", "band_half"),
    [
        ((1, 1), (1, 1), (1, 1), 1),  # one pixel, one-pixel frames: every footprint on a border
        ((9, 17), (2, 3), (5, 4), 2),  # frames too small for the SIMD path
        ((33, 250), (40, 61), (17, 300), 0),  # hard seam, unequal frames
        ((50, 413), (90, 130), (80, 150), 200),  # band wider than the overlap
    ],
)
def test_odd_sizes_and_bands(
    panorama: tuple[int, int],
    left_frame: tuple[int, int],
    right_frame: tuple[int, int],
    band_half: int,
) -> None:
    case = make_case(11, panorama, left_frame, right_frame, band_half)
    assert_close(native.stitch_panorama(*case.args), reference(case))


def test_seam_outside_the_panorama() -> None:
    case = make_case(5)
    height = case.shape[0]
    for seam in (-(10**9), -3, case.shape[1] + 40, 10**9):
        shifted = replace(case, seam=np.full(height, seam, np.int32))
        assert_close(native.stitch_panorama(*shifted.args), reference(shifted))


def test_saturates_bright_pixels_and_zero_gains_give_black() -> None:
    case = make_case(2, gains=((16.0, 16.0, 16.0), (3.0, 2.0, 1.5)))
    out = native.stitch_panorama(*case.args)
    assert_close(out, reference(case))
    assert (out == 255).any()
    dark = replace(case, gains=np.zeros((2, 3), np.float32))
    assert not native.stitch_panorama(*dark.args).any()


def test_thread_counts_give_identical_output() -> None:
    case = make_case(3, panorama=(203, 640), left_frame=(180, 400), right_frame=(190, 380))
    one = native.stitch_panorama(*case.args, threads=1)
    np.testing.assert_array_equal(native.stitch_panorama(*case.args, threads=2), one)
    np.testing.assert_array_equal(native.stitch_panorama(*case.args, threads=0), one)
    np.testing.assert_array_equal(native.stitch_panorama(*case.args, threads=64), one)


def test_out_is_written_in_place_and_returned() -> None:
    case = make_case(4)
    out = np.full(case.shape, 77, np.uint8)
    result = native.stitch_panorama(*case.args, out=out)
    assert result is out
    assert_close(out, reference(case))


def test_strided_rows_are_read_and_written_in_place() -> None:
    case = make_case(6)
    height, width, _ = case.shape
    # Frames and panorama as column windows of wider buffers: rows strided, pixels packed.
    wide_left = np.zeros((case.left.shape[0], case.left.shape[1] + 13, 3), np.uint8)
    wide_left[:, 5 : 5 + case.left.shape[1]] = case.left
    left_view = wide_left[:, 5 : 5 + case.left.shape[1]]
    canvas = np.full((height + 2, width + 30, 3), 9, np.uint8)
    out_view = canvas[1 : height + 1, 20 : 20 + width]
    result = native.stitch_panorama(left_view, *case.args[1:], out=out_view)
    assert result is out_view
    assert_close(out_view, reference(case))
    # Nothing outside the window was touched.
    untouched = canvas.copy()
    untouched[1 : height + 1, 20 : 20 + width] = 9
    assert (untouched == 9).all()


def test_gains_may_be_a_nested_list() -> None:
    case = make_case(8)
    as_list = native.stitch_panorama(*case.args[:-1], case.gains.tolist())
    np.testing.assert_array_equal(as_list, native.stitch_panorama(*case.args))


def _bad(case: StitchCase, **changes: Any) -> tuple[object, ...]:
    names = (
        "left",
        "right",
        "left_map1",
        "left_map2",
        "right_map1",
        "right_map2",
        "seam",
        "band_half",
        "gains",
    )
    values = dict(zip(names, case.args, strict=True))
    values.update(changes)
    return tuple(values[name] for name in names)


_CASE = make_case(1)
_H, _W, _ = _CASE.shape


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"left": _CASE.left.astype(np.float32)}, "left must be uint8, got float32"),
        ({"right": _CASE.right[..., :2].copy()}, r"right must have shape \(h, w, 3\)"),
        ({"left": _CASE.left[:, ::2]}, "left must have its pixels packed"),
        ({"left": _CASE.left.tolist()}, "left must be a numpy array, got list"),
        ({"left_map1": _CASE.left_map1.astype(np.int32)}, "left_map1 must be int16, got int32"),
        ({"right_map2": _CASE.right_map2.astype(np.int16)}, "right_map2 must be uint16"),
        ({"left_map1": _CASE.left_map1[..., :1].copy()}, r"left_map1 must have shape \(H, W, 2\)"),
        ({"right_map1": _CASE.right_map1[:-1].copy()}, "right_map1 must have shape"),
        ({"left_map2": _CASE.left_map2[:, :-1].copy()}, "left_map2 must have shape"),
        ({"right_map2": np.asfortranarray(_CASE.right_map2)}, "right_map2 must be C-contiguous"),
        ({"seam": _CASE.seam.astype(np.int64)}, "seam must be int32, got int64"),
        ({"seam": _CASE.seam[:-1].copy()}, "seam must have shape"),
        ({"seam": np.repeat(_CASE.seam, 2)[::2]}, "seam must be C-contiguous"),
        ({"band_half": -1}, r"band_half must be in \[0, 65535\]"),
        ({"band_half": 70000}, r"band_half must be in \[0, 65535\]"),
        ({"gains": np.ones((3, 2), np.float32)}, r"gains must have shape \(2, 3\)"),
        ({"gains": np.full((2, 3), np.nan, np.float32)}, r"gains must be finite and in \[0, 16\]"),
        ({"gains": np.full((2, 3), -0.5, np.float32)}, r"gains must be finite and in \[0, 16\]"),
        ({"gains": np.full((2, 3), 17, np.float32)}, r"gains must be finite and in \[0, 16\]"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        native.stitch_panorama(*_bad(_CASE, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.zeros((_H, _W, 3), np.float32), "out must be uint8"),
        (np.zeros((_H, _W + 1, 3), np.uint8), "out must have shape"),
        (np.zeros((_H, _W, 4), np.uint8), "out must have shape"),
        (np.zeros((_H, 2 * _W, 3), np.uint8)[:, ::2], "out must have its pixels packed"),
    ],
)
def test_bad_out_raises_a_clear_value_error(out: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        native.stitch_panorama(*_CASE.args, out=out)


def test_read_only_or_overlapping_out_is_refused() -> None:
    read_only = np.zeros(_CASE.shape, np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        native.stitch_panorama(*_CASE.args, out=read_only)
    # A panorama-shaped view sharing memory with the left frame.
    frame = np.zeros((_H + 5, _W, 3), np.uint8)
    frame[:] = 40
    with pytest.raises(ValueError, match="out must not overlap an input"):
        native.stitch_panorama(frame, *_CASE.args[1:], out=frame[2 : 2 + _H])


def test_negative_thread_count_is_refused() -> None:
    with pytest.raises(ValueError, match="threads must be >= 0"):
        native.stitch_panorama(*_CASE.args, threads=-1)


def main_thread_ran_during(call: Callable[[], object], tries: int = 5) -> bool:
    """Whether the main thread executed Python while ``call`` ran in another thread.

    With the GIL held for the whole call, the main thread could record no timestamp before the
    call returns; with a short switch interval it gets the GIL back within a fraction of a
    millisecond after that, so timestamps in the first half of the call prove it was released.
    A few tries absorb scheduling gaps on a busy machine.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        for _ in range(tries):
            span: list[float] = []

            def run(span: list[float] = span) -> None:
                started = time.perf_counter()
                call()
                span.extend((started, time.perf_counter()))

            worker = threading.Thread(target=run)
            ticks: list[float] = []
            worker.start()
            while worker.is_alive():
                ticks.append(time.perf_counter())
            worker.join()
            first_half = [t for t in ticks if span[0] < t < (span[0] + span[1]) / 2]
            if len(first_half) >= 3:
                return True
        return False
    finally:
        sys.setswitchinterval(interval)


def test_the_gil_is_released_while_it_runs() -> None:
    """Timing two concurrent calls against one is too noisy on a shared 2-core machine; this
    checks the mechanism instead (`main_thread_ran_during`)."""
    case = make_case(9, panorama=(1000, 2500), left_frame=(600, 1100), right_frame=(600, 1100))
    # Every footprint on the frames' last column: the scalar path, ~20 ms.
    slow = case.left_map1.copy()
    slow[..., 0] = case.left.shape[1] - 1
    slow[..., 1] = np.arange(case.shape[0], dtype=np.int16)[:, None] % case.left.shape[0]
    args = (case.left, case.left, slow, case.left_map2, slow, case.left_map2, *case.args[6:])
    out = np.empty(case.shape, np.uint8)
    assert main_thread_ran_during(lambda: native.stitch_panorama(*args, out=out, threads=1)), (
        "the main thread never ran while the kernel did: is the GIL held?"
    )


_PATH_SCRIPT = """
import sys
import numpy as np
import native
from tests.native.stitch_cases import make_case

outs = {}
for seed, size in ((0, (90, 160)), (3, (203, 640)), (13, (9, 17))):
    case = make_case(seed, panorama=size)
    outs[f"seed{seed}"] = native.stitch_panorama(*case.args, threads=2)
np.savez(sys.argv[1], path=native.stitch_code_path(), **outs)
"""


def test_every_cpu_code_path_gives_the_same_bytes(tmp_path: Path) -> None:
    """The SSE4.1 and scalar code only run on CPUs without AVX2 (or on request): run each in a
    subprocess (POLYVISION_STITCH_ISA picks the path at first use) and compare."""
    results = {}
    for isa in ("", "sse4.1", "scalar"):
        target = tmp_path / f"path-{isa or 'best'}.npz"
        env = {**os.environ, "POLYVISION_STITCH_ISA": isa}
        subprocess.run(
            [sys.executable, "-c", _PATH_SCRIPT, str(target)],
            check=True,
            env=env,
            cwd=Path(__file__).parents[2],
            timeout=120,
        )
        with np.load(target) as stored:
            results[str(stored["path"])] = {k: stored[k] for k in stored.files if k != "path"}
    assert "scalar" in results
    best = results.pop(native.stitch_code_path())
    for path, outs in results.items():
        for name, out in outs.items():
            np.testing.assert_array_equal(out, best[name], err_msg=f"{path} vs best, {name}")


def test_matches_cv2_on_a_realistic_warp() -> None:
    """Larger frames through the SIMD path: a rotated, bowed warp as from the rig's cameras."""
    case = make_case(12, panorama=(240, 900), left_frame=(300, 520), right_frame=(300, 520))
    out = native.stitch_panorama(*case.args)
    assert_close(out, reference(case))
    # Most of it really is warped content, not black.
    assert (out.max(axis=2) > 0).mean() > 0.7
