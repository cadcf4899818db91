"""`polyvision synth`: simulate a match, film it with the virtual rig, write the ground truth.

Output directory:
    left.mp4, right.mp4   H.264 recordings of the two cameras (keyframe every second)
    rig.json              the rig (intrinsics, distortion, pose, pitch) the stitch stage reads
    truth.parquet         per frame and object: id, team, role, pitch position, per-camera
                          image box and visibility, whether the ball is in play
    match.json            fps, frame count, size, seed, generator version, kits, events
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evaluation.formats import Truth, write_truth
from polyvision.geometry import Rig
from polyvision.media.writer import VideoWriter
from synth.render import Renderer
from synth.rig import default_rig
from synth.simulation import simulate
from synth.types import Simulation

GENERATOR_VERSION = 1
"""Bumped whenever the same seed would give different files."""

CAMERAS = ("left", "right")


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes:
        seconds: Length of the simulated play.
        fps: Frames per second of both cameras.
        width: Image width of each camera.
        height: Image height of each camera.
        seed: Seed of the simulation, rendering noise and everything random.
        crf: x264 quality (lower is better, larger files).
        preset: x264 speed preset.
    """

    seconds: float = 60.0
    fps: float = 25.0
    width: int = 1920
    height: int = 1080
    seed: int = 7
    crf: int = 20
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.fps <= 0:
            raise ValueError("seconds and fps must be positive")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ValueError(
                f"size must be even and at least 64x64, got {self.width}x{self.height}"
            )


@dataclass(frozen=True)
class SynthOutput:
    """Where the generated files are and what it took."""

    directory: Path
    frames: int
    seconds_taken: float


class _Progress:
    """Frames done per camera, printed as one line on a terminal (or every 10 % otherwise)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = dict.fromkeys(CAMERAS, 0)
        self._lock = threading.Lock()
        self._last_decile = -1
        self._started = time.monotonic()

    def advance(self, camera: str) -> None:
        with self._lock:
            self.done[camera] += 1
            if not self.enabled:
                return
            done = min(self.done.values())
            elapsed = time.monotonic() - self._started
            line = (
                f"\rfilming {done}/{self.total} frames per camera "
                f"({100 * done / self.total:5.1f} %, {elapsed:5.1f} s)"
            )
            if sys.stderr.isatty():
                sys.stderr.write(line)
            elif done * 10 // self.total > self._last_decile:
                self._last_decile = done * 10 // self.total
                sys.stderr.write(line.lstrip("\r") + "\n")

    def finish(self) -> None:
        if self.enabled and sys.stderr.isatty():
            sys.stderr.write("\n")


def _film_camera(
    camera: str,
    renderer: Renderer,
    simulation: Simulation,
    writer: VideoWriter,
    progress: _Progress,
    errors: list[BaseException],
) -> None:
    try:
        with writer:
            for frame_index in range(simulation.frame_count):
                writer.write(renderer.render_camera(camera, frame_index, simulation))
                progress.advance(camera)
    except BaseException as exc:  # re-raised by the caller's thread
        errors.append(exc)


def build_truth(renderer: Renderer, simulation: Simulation, config: SynthConfig) -> Truth:
    """Per frame and agent: identity, pitch position, and each camera's box and visibility."""
    frames, count = simulation.position.shape[:2]
    boxes = {camera: np.empty((frames, count, 4), np.float32) for camera in CAMERAS}
    visible = {camera: np.empty((frames, count), np.bool_) for camera in CAMERAS}
    for frame_index in range(frames):
        per_camera = renderer.boxes(frame_index, simulation)
        for camera in CAMERAS:
            frame_boxes, frame_visible, _inside = per_camera[camera]
            boxes[camera][frame_index] = frame_boxes
            visible[camera][frame_index] = frame_visible
    agents = simulation.agents
    return Truth(
        fps=config.fps,
        frames=frames,
        size=(config.width, config.height),
        seed=config.seed,
        frame=np.repeat(np.arange(frames, dtype=np.int32), count),
        id=np.tile(np.array([a.id for a in agents], np.int16), frames),
        team=np.tile(np.array([a.team.value for a in agents], dtype=object), frames),
        role=np.tile(np.array([a.role.value for a in agents], dtype=object), frames),
        position=simulation.position.reshape(frames * count, 3).astype(np.float32),
        boxes={camera: boxes[camera].reshape(frames * count, 4) for camera in CAMERAS},
        visible={camera: visible[camera].reshape(frames * count) for camera in CAMERAS},
        in_play=np.repeat(simulation.in_play, count),
    )


def _match_meta(config: SynthConfig, simulation: Simulation, rig: Rig) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "config": asdict(config),
        "fps": config.fps,
        "frames": simulation.frame_count,
        "size": [config.width, config.height],
        "seed": config.seed,
        "cameras": list(CAMERAS),
        "rig": "rig.json",
        "agents": [
            {
                "id": a.id,
                "team": a.team.value,
                "role": a.role.value,
                "number": a.number,
                "shirt_rgb": list(a.kit.shirt),
            }
            for a in simulation.agents
        ],
        "events": [{"frame": frame, "event": text} for frame, text in simulation.events],
    }


def generate_match(config: SynthConfig, out_dir: Path, *, progress: bool = False) -> SynthOutput:
    """Generate the whole synthetic match into ``out_dir`` (created; existing files replaced).

    Both cameras are rendered and encoded concurrently, one thread each: OpenCV's drawing and
    FFmpeg's encoder release the GIL, so the two cores are both busy.
    """
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    simulation = simulate(config.seconds, config.fps, config.seed)
    rig = default_rig(config.width, config.height)
    rig.save(out_dir / "rig.json")
    renderer = Renderer(rig, simulation.agents, seed=config.seed)
    bar = _Progress(simulation.frame_count, progress)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_film_camera,
            name=f"film-{camera}",
            args=(
                camera,
                renderer,
                simulation,
                VideoWriter(
                    out_dir / f"{camera}.mp4",
                    config.width,
                    config.height,
                    config.fps,
                    crf=config.crf,
                    preset=config.preset,
                    threads=1,
                ),
                bar,
                errors,
            ),
        )
        for camera in CAMERAS
    ]
    for thread in threads:
        thread.start()
    truth = build_truth(renderer, simulation, config)
    for thread in threads:
        thread.join()
    bar.finish()
    if errors:
        raise errors[0]
    write_truth(truth, out_dir)
    meta_path = out_dir / "match.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.update(_match_meta(config, simulation, rig))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return SynthOutput(out_dir, simulation.frame_count, time.monotonic() - started)
