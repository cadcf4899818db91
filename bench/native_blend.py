"""Feather blend of two panorama-sized frames: native (GIL released) against NumPy.

Peer: the same arithmetic in NumPy float32, which is what the stitch stage would do
without the native core. Both run side by side in this process on the same inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

import native
from bench.results_file import write_results

HEIGHT, WIDTH = 1080, 3840  # a 2x1920 panorama row band at 1080p


def numpy_blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    w = np.clip(weight, 0.0, 1.0)[..., None]
    v = w * a.astype(np.float32) + (np.float32(1.0) - w) * b.astype(np.float32)
    return (v + np.float32(0.5)).astype(np.uint8)


def best_of(fn: Callable[[], object], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    weight = rng.uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32)
    assert np.array_equal(native.feather_blend(a, b, weight), numpy_blend(a, b, weight))
    t_native = best_of(lambda: native.feather_blend(a, b, weight))
    t_numpy = best_of(lambda: numpy_blend(a, b, weight))
    ratio = t_numpy / t_native
    print(
        f"feather_blend {WIDTH}x{HEIGHT}: native {t_native * 1e3:.1f} ms, "
        f"numpy {t_numpy * 1e3:.1f} ms, native is {ratio:.2f}x numpy"
    )
    path = write_results(
        "native_blend",
        {
            "frame": f"{WIDTH}x{HEIGHT}x3",
            "native_ms": round(t_native * 1e3, 2),
            "numpy_ms": round(t_numpy * 1e3, 2),
            "speedup_vs_numpy": round(ratio, 2),
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
