"""The virtual camera's native renderer against ``cv2.remap``, 1080p views of full-size panoramas.

Panoramas: the synthetic rig's (`synth.rig.default_rig`, `panorama_model_from_rig`) at 3856x2180
sources, 5700x1668, and at 1920x1080 sources, 2838x826, with a texture of smoothed noise (content
does not change the work, only how far the two outputs can differ). Along a moving path (a pan
across the middle half of the panorama, tilting and zooming out to the widest window the
planner allows, never taller than the panorama) each renders the 1920x1080 rectilinear view of
`activities.vcam.view`, at 1 and 2 threads:

* ours: ``native._native.vcam_render(..., out=out, threads=n)``, which maps and samples in one
  pass;
* peer: `activities.vcam.view.view_maps` (the NumPy maps, one thread whatever ``n``) then
  ``cv2.remap`` (bilinear, edges replicated) with ``cv2.setNumThreads(n)``: what rendering would
  cost without the native renderer (`render_view_remap`);
* for scale, ``cv2.remap`` alone with the maps made beforehand (a lower bound no renderer that
  must compute its maps per frame reaches).

Timings are per frame: the best, over rounds, of each contender's time for the whole path, the
contenders alternating within each round (wall clock). The outputs are compared frame by frame:
``cv2.remap`` rounds positions to 1/32 pixel and uses 5-bit weights, ours does not, so they
differ by a level or two on this texture (the tests bound ours within a level of the exact
bilinear sample).

Run: ``python -m bench.vcam_render [--rounds 5] [--frames 12]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from activities.vcam.plan import ASPECT
from activities.vcam.view import ViewGeometry, view_maps
from bench.results_file import write_results
from native import _native

OUT_SIZE = (1920, 1080)
THREADS = (1, 2)
SOURCES = ((3856, 2180), (1920, 1080))  # the rig's source frames -> 5700x1668, 2838x826

UInt8Array = npt.NDArray[np.uint8]
Window = tuple[float, float, float]


@dataclass(frozen=True)
class Scene:
    panorama: UInt8Array
    geometry: ViewGeometry
    path: list[Window]

    @property
    def name(self) -> str:
        return f"{self.geometry.width}x{self.geometry.height}"


def _texture(width: int, height: int, rng: np.random.Generator) -> UInt8Array:
    noise = rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR), np.uint8)


def build_scene(source: tuple[int, int], frames: int) -> Scene:
    from activities.stitch.panorama import panorama_model_from_rig
    from synth.rig import default_rig

    model = panorama_model_from_rig(default_rig(*source))
    geometry = ViewGeometry.of(model)
    width, height = geometry.width, geometry.height
    t = np.linspace(0.0, 1.0, frames)
    widest = height * ASPECT  # the planner's windows are never taller than the panorama
    path = [
        (
            float(width * (0.25 + 0.5 * s)),
            float(height * (0.45 + 0.1 * np.sin(2 * np.pi * s))),
            float(widest * (0.65 + 0.35 * s)),
        )
        for s in t
    ]
    return Scene(_texture(width, height, np.random.default_rng(0)), geometry, path)


def best_time(functions: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time of each function over ``rounds``, the functions alternating each round."""
    best = dict.fromkeys(functions, float("inf"))
    for fn in functions.values():  # warm-up: page in outputs, start thread pools
        fn()
    for _ in range(rounds):
        for name, fn in functions.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def run_scene(scene: Scene, rounds: int) -> dict[str, object]:
    g = scene.geometry
    out_w, out_h = OUT_SIZE
    ours = [np.empty((out_h, out_w, 3), np.uint8) for _ in scene.path]
    peers = [np.empty((out_h, out_w, 3), np.uint8) for _ in scene.path]
    maps = [view_maps(g, cx, cy, width, OUT_SIZE) for cx, cy, width in scene.path]

    def native_path(threads: int) -> Callable[[], None]:
        def run() -> None:
            for (cx, cy, width), out in zip(scene.path, ours, strict=True):
                _native.vcam_render(
                    scene.panorama, out, cx, cy, width, g.focal_px, g.cv, threads=threads
                )

        return run

    def opencv_path() -> None:
        for (cx, cy, width), out in zip(scene.path, peers, strict=True):
            map_x, map_y = view_maps(g, cx, cy, width, OUT_SIZE)
            cv2.remap(
                scene.panorama,
                map_x,
                map_y,
                cv2.INTER_LINEAR,
                dst=out,
                borderMode=cv2.BORDER_REPLICATE,
            )

    def remap_only() -> None:
        for (map_x, map_y), out in zip(maps, peers, strict=True):
            cv2.remap(
                scene.panorama,
                map_x,
                map_y,
                cv2.INTER_LINEAR,
                dst=out,
                borderMode=cv2.BORDER_REPLICATE,
            )

    frames = len(scene.path)
    figures: dict[str, object] = {
        "panorama": scene.name,
        "view": f"{out_w}x{out_h}",
        "frames": frames,
        "focal_px": round(g.focal_px, 1),
        "window_widths": [round(scene.path[0][2]), round(scene.path[-1][2])],
    }
    lines = []
    threads_before = cv2.getNumThreads()
    try:
        for threads in THREADS:
            cv2.setNumThreads(threads)
            times = best_time(
                {
                    "native": native_path(threads),
                    "opencv": opencv_path,
                    "remap_only": remap_only,
                },
                rounds,
            )
            ms = {name: seconds / frames * 1e3 for name, seconds in times.items()}
            speedup, speedup_remap = ms["opencv"] / ms["native"], ms["remap_only"] / ms["native"]
            figures[f"threads_{threads}"] = {
                "native_ms_per_frame": round(ms["native"], 2),
                "opencv_maps_and_remap_ms_per_frame": round(ms["opencv"], 2),
                "opencv_remap_only_ms_per_frame": round(ms["remap_only"], 2),
                "native_frames_per_s": round(1e3 / ms["native"], 1),
                "speedup_vs_opencv": round(speedup, 2),
                "speedup_vs_remap_only": round(speedup_remap, 2),
            }
            lines.append(
                f"  {threads} thread{'s' if threads > 1 else ''}: native "
                f"{ms['native']:.1f} ms/frame, opencv (NumPy maps + remap) {ms['opencv']:.1f} ms, "
                f"remap alone {ms['remap_only']:.1f} ms: native is {speedup:.2f}x opencv, "
                f"{speedup_remap:.2f}x remap alone"
            )
    finally:
        cv2.setNumThreads(threads_before)
    # The last round left every frame of both in `ours` and `peers` (remap_only writes the same
    # views as opencv).
    diffs = [
        np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(ours, peers, strict=True)
    ]
    max_diff = max(int(d.max()) for d in diffs)
    share = float(np.mean([float((d > 1).mean()) for d in diffs]))
    figures["max_diff_vs_opencv"] = max_diff
    figures["share_differing_by_more_than_1"] = round(share, 6)
    print(f"vcam_render {scene.name} -> {out_w}x{out_h}, {frames} frames:")
    for line in lines:
        print(line)
    print(
        f"  max |native - opencv| = {max_diff}, {100 * share:.4f} % of values differ by more than 1"
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args(argv)
    scenes = [run_scene(build_scene(source, args.frames), args.rounds) for source in SOURCES]
    path = write_results("vcam_render", {"rounds": args.rounds, "scenes": scenes})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
