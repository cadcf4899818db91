"""Our one-pass ladder encoder against the ``ffmpeg`` command line, and render + encode speed.

Two measurements, side by side in one run on this machine:

1. **The ladder against ffmpeg.** The same input, a 1920x1080 25 fps H.264 clip made from the
   real recording (the left camera of ``../shared/data/soccertrack-v1``, scaled with an area
   filter), is encoded into the default ladder (1080p, 720p, 480p) by

   * ours: PyAV decodes it and `polyvision.media.encoder.LadderEncoder` converts each frame to
     4:2:0 once, scales it with libswscale's area filter and encodes every rendition;
   * peer: Debian's ``ffmpeg`` (installed by ``make bench``) with ``split=3`` and
     ``scale=...:flags=area`` into three libx264 outputs.

   Both use the same x264 settings: preset, CRF, a closed GOP of 2 s (keyint = min-keyint,
   no scene cuts), the same VBV caps per rendition and the same ``asm`` flags
   (`polyvision.media.writer.x264_asm_flags`). The contenders alternate within each round and
   the wall-clock times are compared as ``ffmpeg / ours`` (above 1: ours is faster). PSNR of
   each rendition is measured against the source scaled to its size with the same area filter
   (luma, over every frame), for both.
2. **Render + encode.** `activities.vcam.render.render_ladder` on a 10 s panorama chunk of the
   real recording (the two cameras side by side, scaled to the rig's 5700x1668 panorama), with a
   path that pans across it: decode, rectilinear view (native renderer), scaling and three
   encodes. The real-time factor is the wall time over the video's duration (below 1: faster
   than real time).

Run: ``python -m bench.ladder [--rounds 3] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from activities.vcam.contracts import DEFAULT_LADDER
from activities.vcam.plan import VcamPath
from activities.vcam.render import render_ladder
from activities.vcam.view import ViewGeometry
from bench.results_file import write_results
from polyvision.media.encoder import SCALER, EncodeTarget, LadderEncoder
from polyvision.media.writer import VideoWriter, x264_asm_flags

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "soccertrack-v1"
FPS = 25.0
CRF = 20
PRESET = "veryfast"
GOP = 50  # 2 s: the published segment length
PANORAMA_SIZE = (5700, 1668)


def _require_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise SystemExit("ffmpeg is not installed: `make bench` installs Debian's package")
    return path


def _real_frames(name: str, count: int) -> Iterator[npt.NDArray[np.uint8]]:
    """The first ``count`` frames of a camera of the real recording, one at a time."""
    path = REAL_DIR / name
    if not path.exists():
        raise SystemExit(f"the real recording is missing: {path}")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index == count:
                return
            yield np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)


def make_source(path: Path, seconds: float) -> int:
    """The 1080p source clip (nearly lossless, so both contenders start from the same pixels)."""
    count = 0
    with VideoWriter(path, 1920, 1080, FPS, crf=10, gop=GOP) as writer:
        for frame in _real_frames("left_camera.mp4", round(seconds * FPS)):
            writer.write(
                np.asarray(cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_AREA), np.uint8)
            )
            count += 1
    return count


def make_panorama(path: Path, seconds: float) -> int:
    """A panorama chunk of real content: the two cameras side by side at the rig's size."""
    wanted = round(seconds * FPS)
    count = 0
    left = _real_frames("left_camera.mp4", wanted)
    right = _real_frames("right_camera.mp4", wanted)
    with VideoWriter(path, *PANORAMA_SIZE, FPS, crf=18, gop=GOP) as writer:
        for a, b in zip(left, right, strict=True):
            pair = np.hstack([a, b])
            writer.write(
                np.asarray(cv2.resize(pair, PANORAMA_SIZE, interpolation=cv2.INTER_AREA), np.uint8)
            )
            count += 1
    return count


def _targets(folder: Path) -> list[EncodeTarget]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        EncodeTarget(r.name, r.width, r.height, folder / f"{r.name}.mp4", r.max_kbps)
        for r in DEFAULT_LADDER
    ]


def encode_ours(source: Path, folder: Path) -> float:
    """Decode ``source`` and encode the default ladder with `LadderEncoder`; seconds taken."""
    started = time.perf_counter()
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        with LadderEncoder(_targets(folder), FPS, gop=GOP, crf=CRF, preset=PRESET) as ladder:
            for frame in container.decode(stream):
                ladder.write_frame(frame)
            ladder.close()
    return time.perf_counter() - started


def ffmpeg_command(ffmpeg: str, source: Path, folder: Path) -> list[str]:
    """``ffmpeg`` producing the same three renditions with the same x264 settings."""
    targets = _targets(folder)
    labels = [f"v{i}" for i in range(len(targets))]
    split = f"[0:v]split={len(targets)}" + "".join(f"[s{i}]" for i in range(len(targets)))
    scales = [
        f"[s{i}]scale={t.width}:{t.height}:flags={SCALER.lower()},format=yuv420p[{labels[i]}]"
        for i, t in enumerate(targets)
    ]
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    command += ["-filter_complex", ";".join([split, *scales])]
    asm = x264_asm_flags()
    for label, target in zip(labels, targets, strict=True):
        params = f"keyint={GOP}:min-keyint={GOP}:scenecut=0"
        if target.max_kbps:
            params += f":vbv-maxrate={target.max_kbps}:vbv-bufsize={2 * target.max_kbps}"
        if asm:
            params += f":asm={asm}"
        command += ["-map", f"[{label}]", "-c:v", "libx264", "-preset", PRESET]
        command += ["-crf", str(CRF), "-x264-params", params, "-an", str(target.path)]
    return command


def encode_ffmpeg(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def _luma(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> npt.NDArray[np.float64]:
    if size is not None and (frame.width, frame.height) != size:
        frame = frame.reformat(
            width=size[0], height=size[1], format="yuv420p", interpolation=SCALER
        )
    elif frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width].astype(np.float64)


def psnr(source: Path, encoded: Path) -> float:
    """Luma PSNR (dB) of ``encoded`` against ``source`` scaled to its size (area filter)."""
    squared, samples = 0.0, 0
    with av.open(str(source)) as a, av.open(str(encoded)) as b:
        for ref, out in zip(a.decode(video=0), b.decode(video=0), strict=True):
            test = _luma(out)
            want = _luma(ref, (out.width, out.height))
            squared += float(((test - want) ** 2).sum())
            samples += test.size
    mse = squared / samples
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _sizes(folder: Path) -> dict[str, int]:
    return {r.name: (folder / f"{r.name}.mp4").stat().st_size for r in DEFAULT_LADDER}


def run_ladder_comparison(work: Path, seconds: float, rounds: int) -> dict[str, Any]:
    ffmpeg = _require_ffmpeg()
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    source = work / "source-1080p.mp4"
    frames = make_source(source, seconds)
    ours_dir, peer_dir = work / "ours", work / "ffmpeg"
    command = ffmpeg_command(ffmpeg, source, peer_dir)
    ours_s: list[float] = []
    peer_s: list[float] = []
    for round_number in range(rounds):
        # Alternate who goes first, so a noisy neighbour does not always hit the same one.
        if round_number % 2 == 0:
            ours_s.append(encode_ours(source, ours_dir))
            peer_s.append(encode_ffmpeg(command))
        else:
            peer_s.append(encode_ffmpeg(command))
            ours_s.append(encode_ours(source, ours_dir))
        print(f"round {round_number}: ours {ours_s[-1]:.2f} s, ffmpeg {peer_s[-1]:.2f} s")
    ratios = [p / o for p, o in zip(peer_s, ours_s, strict=True)]
    quality = {
        name: {
            "ours_psnr_db": round(psnr(source, ours_dir / f"{name}.mp4"), 2),
            "ffmpeg_psnr_db": round(psnr(source, peer_dir / f"{name}.mp4"), 2),
        }
        for name in (r.name for r in DEFAULT_LADDER)
    }
    return {
        "input": f"{frames} frames 1920x1080 at {FPS:g} fps (real recording, left camera)",
        "settings": {"preset": PRESET, "crf": CRF, "gop": GOP, "scaler": SCALER.lower()},
        "ffmpeg_version": version.splitlines()[0] if version else "",
        "ffmpeg_command": " ".join(command),
        "ours_s": [round(s, 3) for s in ours_s],
        "ffmpeg_s": [round(s, 3) for s in peer_s],
        "ffmpeg_over_ours_best": round(min(peer_s) / min(ours_s), 3),
        "ffmpeg_over_ours_median": round(statistics.median(ratios), 3),
        "ours_fps_best": round(frames / min(ours_s), 1),
        "ffmpeg_fps_best": round(frames / min(peer_s), 1),
        "psnr": quality,
        "bytes": {"ours": _sizes(ours_dir), "ffmpeg": _sizes(peer_dir)},
    }


def _pan_path(frames: int, geometry: ViewGeometry) -> VcamPath:
    """A pan across the middle of the panorama with a gentle zoom, as a match would need."""
    t = np.linspace(0.0, 1.0, frames)
    width = geometry.width * (0.30 + 0.10 * np.sin(2 * np.pi * t))
    cx = geometry.width * (0.3 + 0.4 * t)
    cy = np.full(frames, geometry.height * 0.55)
    return VcamPath(cx.astype(np.float32), cy.astype(np.float32), width.astype(np.float32))


def run_render_rtf(work: Path, seconds: float, rounds: int) -> dict[str, Any]:
    panorama = work / "panorama.mp4"
    frames = make_panorama(panorama, seconds)
    width, height = PANORAMA_SIZE
    # The rig's cylinder: the focal length that spans the panorama's ~200 degrees.
    geometry = ViewGeometry(width / math.radians(200.0), height * 0.35, width, height)
    path = _pan_path(frames, geometry)
    taken = []
    for _ in range(rounds):
        started = time.perf_counter()
        written = render_ladder(
            panorama,
            path,
            0,
            _targets(work / "rendered"),
            FPS,
            gop=GOP,
            crf=CRF,
            preset=PRESET,
            geometry=geometry,
        )
        taken.append(time.perf_counter() - started)
        assert all(w.rendition.frames == frames for w in written)
    duration = frames / FPS
    print(f"render + encode: {[round(s, 2) for s in taken]} s for {duration:g} s of video")
    return {
        "input": f"{frames} frames of a {width}x{height} panorama (real recording, side by side)",
        "renditions": [f"{r.name} {r.width}x{r.height}" for r in DEFAULT_LADDER],
        "seconds": [round(s, 3) for s in taken],
        "video_seconds": duration,
        "real_time_factor_best": round(min(taken) / duration, 3),
        "real_time_factor_median": round(statistics.median(taken) / duration, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pv-bench-ladder-") as scratch:
        work = Path(scratch)
        ladder = run_ladder_comparison(work, args.seconds, args.rounds)
        render = run_render_rtf(work, args.seconds, args.rounds)
    path = write_results("ladder", {"rounds": args.rounds, "ladder": ladder, "render": render})
    print(
        f"ffmpeg/ours best {ladder['ffmpeg_over_ours_best']}, median "
        f"{ladder['ffmpeg_over_ours_median']}; render+encode RTF "
        f"{render['real_time_factor_best']}; results: {path}"
    )


if __name__ == "__main__":
    main()
