"""A short MP4 of each virtual-camera mode on the real recording, for people to look at.

Runs inside `bench.vcam_modes --real` (or alone: ``python -m bench.vcam_real``, which brings up
its own stack): the real two-camera recording is processed once with the ``ours`` settings,
then each mode is planned from its tracks and ball exactly as the vcam activity plans it, and
rendered from the stored panorama chunks with the rectilinear renderer into
``bench/results/vcam/<mode>.mp4`` (960x540, so the files stay small enough to keep in git).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow.parquet as pq

from activities.stitch.panorama import PanoramaModel
from activities.vcam.contracts import CAMERA_MODES, CameraSettings
from activities.vcam.modes import CameraScene, plan_camera
from activities.vcam.render import render_chunk
from activities.vcam.view import ViewGeometry

OUT_SIZE = (960, 540)


def _concat(parts: list[Path], out: Path) -> None:
    """Join chunk MP4s (same codec settings) into one file without re-encoding."""
    with av.open(str(out), "w") as dst:
        stream = None
        offset = 0
        for part in parts:
            with av.open(str(part)) as src:
                src_stream = src.streams.video[0]
                if stream is None:
                    stream = dst.add_stream_from_template(src_stream)
                last = 0
                for packet in src.demux(src_stream):
                    if packet.dts is None:
                        continue
                    packet.pts = (packet.pts or 0) + offset
                    packet.dts = packet.dts + offset
                    last = max(last, packet.pts + (packet.duration or 0))
                    packet.stream = stream
                    dst.mux(packet)
                offset = last


def render_modes(objects_dir: Path, match_prefix: str, results: Path, out_dir: Path) -> list[Path]:
    """Plan and render every mode of a processed match (its exported ``tracks.parquet`` and
    ``ball.parquet`` in ``results``, its panorama chunks under ``objects_dir/match_prefix``)."""
    stitch = objects_dir / match_prefix / "stitch"
    model = PanoramaModel.from_json((stitch / "panorama.json").read_text())
    chunks = sorted(stitch.glob("chunk-*.mp4"))
    counts = []
    for chunk in chunks:
        with av.open(str(chunk)) as c:
            counts.append(sum(1 for _ in c.demux(c.streams.video[0])) - 1)
    frames = sum(counts)
    fps = 25.0
    with av.open(str(chunks[0])) as c:
        rate = c.streams.video[0].average_rate
        if rate:
            fps = float(rate)
    tracks = pq.read_table(results / "tracks.parquet").to_pydict()
    ball: dict[str, Any] = pq.read_table(results / "ball.parquet").to_pydict()
    reported = np.asarray(ball["visible"], bool) & np.asarray(ball["in_play"], bool)
    scene = CameraScene(
        frames=frames,
        fps=fps,
        model=model,
        player_frame=np.asarray(tracks["frame"], np.int64),
        player_xy=np.column_stack([tracks["x_m"], tracks["y_m"]]).astype(np.float64),
        ball_frame=np.asarray(ball["frame"], np.int64)[reported],
        ball_xy=np.column_stack([ball["x_m"], ball["y_m"]]).astype(np.float64)[reported],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for mode in CAMERA_MODES:
        path = plan_camera(scene, CameraSettings(mode=mode))
        with tempfile.TemporaryDirectory() as tmp:
            parts = []
            first = 0
            for i, chunk in enumerate(chunks):
                part = Path(tmp) / f"{i:05d}.mp4"
                result = render_chunk(
                    chunk, path, first, part, fps, OUT_SIZE, geometry=ViewGeometry.of(model)
                )
                first += result.frames
                parts.append(part)
            out = out_dir / f"{mode}.mp4"
            _concat(parts, out)
        written.append(out)
        print(f"vcam real: {mode} -> {out} ({out.stat().st_size / 1e6:.1f} MB)", flush=True)
    return written


def process_real(stack: Any) -> Any:
    """Process the real recording in a running ``bench.pipeline`` stack (its ``Processed``)."""
    from bench.pipeline import CLI, process_recording
    from bench.stitch_quality import REAL_DIR

    work = Path(stack.data_dir)
    real = work / "real"
    real.mkdir(exist_ok=True)
    for side in ("left", "right"):
        link = real / f"{side}.mp4"
        if not link.exists():
            link.symlink_to(REAL_DIR / f"{side}_camera.mp4")
    rig = work / "real-rig.json"
    if not rig.exists():
        subprocess.run(
            [*CLI, "rig", "soccertrack", str(REAL_DIR), "--out", str(rig)],
            check=True,
            capture_output=True,
        )
    return process_recording(stack, real, "vcam real", rig)


def render_real_modes(stack_dir: Path, env: dict[str, str], done: Any, out_dir: Path) -> list[Path]:
    """Export the processed real recording's tracks from the stack's stores (once the stack
    has stopped: its worker holds the embedded analytics store) and render every mode."""
    from evaluation.export import export_match
    from polyvision.settings import Settings

    results = stack_dir / "eval" / done.match_id
    # The stack's own settings (its PV_ environment): the same stores its worker wrote.
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    asyncio.run(export_match(settings, done.organization_id, done.match_id, 1, results))
    prefix = f"orgs/{done.organization_id}/matches/{done.match_id}/1"
    return render_modes(stack_dir / "objects", prefix, results, out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", default=None, help="keep the stack's data here")
    args = parser.parse_args(argv)
    from bench.pipeline import SETTINGS, running_stack

    work = Path(args.keep or tempfile.mkdtemp(prefix="pv-bench-vcam-real-"))
    work.mkdir(parents=True, exist_ok=True)
    with running_stack(work / "stack", SETTINGS["ours"], work / "stack.log") as stack:
        done = process_real(stack)
        env = stack.env
    render_real_modes(work / "stack", env, done, Path(__file__).parent / "results" / "vcam")


if __name__ == "__main__":
    main()
