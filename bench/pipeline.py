"""The whole pipeline's cost: the real recording through the match workflow, three settings.

Each setting runs its own embedded stack (`polyvision up`, the worker configured by the
setting's ``PV_`` variables), one after the other in the same run, on the same recordings:

- ``naive``: every frame, every tile of the panorama, ONNX Runtime's default threads
  (``PV_DETECT_STRIDE=1 PV_DETECT_TILES=all PV_INFERENCE_LAYOUT=ort-default``);
- ``tuned``: every frame, the tiles that see the pitch at the one upscale, one single-thread
  inference session per core (``PV_DETECT_STRIDE=1 PV_DETECT_TILES=pitch``);
- ``ours``: the defaults (full detection every 4th frame, tiles sized to the players).

On each stack the real SoccerTrack pair (10 s, 2 x 3072x1728 at 25 fps) goes through the
whole workflow (`polyvision process`), then each fresh synthetic seed (`polyvision synth`).
Meanwhile the CPU time of the stack's processes (`polyvision up`: API, worker and embedded
stores; the Temporal dev server) is sampled twice a second and given to the activities that
were running (from the workflow's and its children's histories; an interval with several
running is split evenly, one with none is "orchestration"). After the stack stops, each seed
is scored against its truth (`polyvision eval`: MOTA, IDF1, the ball within 2 m, false ball
reports).

Figures, per setting: per-stage CPU seconds and wall seconds on the real recording, CPU per
frame, the real-time factor; the accuracy on every seed; the ratios of CPU per frame
(tuned / ours: the issue asks at least 3; naive / ours: target 10) and the accuracy deltas
against ``tuned`` (MOTA and IDF1 within 0.02, ball figures held). From the measured per-stage
costs, the time a 90-minute match of 2 x 3856x2180 at 50 fps would take on 2, 16 and 64 cores
(stitch, detect and render scale with chunks across cores; track, analyze, packaging and
indexing see the whole match on one; per-frame costs scaled by panorama pixels, detection
by its tiles a frame).

Run: ``python -m bench.pipeline [--seeds 3] [--seconds 20] [--size 1920x1080]
[--settings naive,tuned,ours]``; results in ``bench/results/pipeline.json``. Expect about
an hour on two cores. The machine is shared: CPU seconds are less sensitive to other load
than wall seconds; compare settings by their ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.detect_tiling import MODELS_DIR
from bench.results_file import write_results
from bench.stitch_quality import REAL_DIR

ROOT = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).with_name("polyvision"))]

SETTINGS: dict[str, dict[str, str]] = {
    "naive": {
        "PV_DETECT_STRIDE": "1",
        "PV_DETECT_TILES": "all",
        "PV_INFERENCE_LAYOUT": "ort-default",
    },
    "tuned": {"PV_DETECT_STRIDE": "1", "PV_DETECT_TILES": "pitch", "PV_INFERENCE_LAYOUT": "auto"},
    "ours": {},
}

STAGE_OF_ACTIVITY = {
    "ingest": "ingest",
    "stitch_prepare": "stitch",
    "stitch_chunk": "stitch",
    "detect_chunk": "detect",
    "track_match": "track",
    "vcam_plan": "vcam",
    "vcam_render": "render",
    "analyze_match": "analyze",
    "package_hls": "package",
    "index_match": "index",
    "cleanup_match": "index",
}
PARALLEL_STAGES = {"ingest", "stitch", "detect", "render"}
"""Stages whose work is per chunk, spread over cores (and machines); the rest see the whole
match in one activity."""

SAMPLE_S = 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TARGET_MATCH_S = 90 * 60
TARGET_FPS = 50
TARGET_SOURCE = (3856, 2180)


# -- the stack's processes and their CPU time ----------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process, its threads included (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuSampler:
    """Samples the CPU seconds of a process tree in a thread: ``(wall time, cumulative CPU)``."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[int, float] = {}

    def _total(self) -> float:
        for pid in _tree(self._pid):
            self._seen[pid] = max(self._seen.get(pid, 0.0), _cpu_seconds(pid))
        return sum(self._seen.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._total()))
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self._total()))


# -- a stack per setting ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    state: dict[str, Any] = field(default_factory=dict)


@contextmanager
def running_stack(data_dir: Path, setting: dict[str, str], log: Path) -> Iterator[Stack]:
    env = {
        **os.environ,
        "PV_DATA_DIR": str(data_dir),
        "PV_MODELS_DIR": str(MODELS_DIR),
        **setting,
    }
    for key in ("PV_DETECT_STRIDE", "PV_DETECT_TILES", "PV_INFERENCE_LAYOUT"):
        if key not in setting:
            env.pop(key, None)
    ports = [str(_free_port()) for _ in range(4)]
    args = ["up", "--api-port", ports[0], "--temporal-port", ports[1], "--ui-port", ports[2]]
    args += ["--metrics-port", ports[3]]
    with log.open("wb") as out:
        process = subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    stack = Stack(data_dir, env, process)
    try:
        state_file = data_dir / "stack.json"
        deadline = time.time() + 300
        while not state_file.exists():
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"polyvision up did not start; see {log}")
            time.sleep(1)
        stack.state = json.loads(state_file.read_text())
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- one recording through the workflow --------------------------------------------------------


@dataclass
class Span:
    stage: str
    start: float
    end: float


async def _histories_spans(address: str, namespace: str, workflow_id: str) -> list[Span]:
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    spans: list[Span] = []
    todo = [workflow_id]
    while todo:
        history = await client.get_workflow_handle(todo.pop()).fetch_history()
        scheduled: dict[int, str] = {}
        started: dict[int, float] = {}
        for event in history.events:
            kind = event.event_type
            when = event.event_time.ToDatetime().timestamp()
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = name
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[event.activity_task_started_event_attributes.scheduled_event_id] = when
            elif kind in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            ):
                attrs = (
                    event.activity_task_completed_event_attributes
                    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    else event.activity_task_failed_event_attributes
                )
                sid = attrs.scheduled_event_id
                if sid in started:
                    stage = STAGE_OF_ACTIVITY.get(scheduled.get(sid, ""), "other")
                    spans.append(Span(stage, started[sid], when))
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                child = event.child_workflow_execution_started_event_attributes
                todo.append(child.workflow_execution.workflow_id)
    return spans


def attribute_cpu(
    samples: list[tuple[float, float]], spans: list[Span]
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds per stage (intervals split evenly among the stages running then) and the
    wall seconds during which each stage ran (pure)."""
    cpu: dict[str, float] = {}
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        mid = (t0 + t1) / 2
        running = [s.stage for s in spans if s.start <= mid < s.end]
        share = (c1 - c0) / len(running) if running else c1 - c0
        for stage in running or ["orchestration"]:
            cpu[stage] = cpu.get(stage, 0.0) + share
    wall: dict[str, float] = {}
    for stage in {s.stage for s in spans}:
        intervals = sorted((s.start, s.end) for s in spans if s.stage == stage)
        total, end = 0.0, -1e18
        for a, b in intervals:
            if b > end:
                total += b - max(a, end)
                end = b
        wall[stage] = total
    return cpu, wall


@dataclass
class Processed:
    match_id: str
    organization_id: str
    frames: int
    wall_s: float
    cpu_s: float
    stage_cpu_s: dict[str, float]
    stage_wall_s: dict[str, float]


def process_recording(stack: Stack, pair: Path, title: str, rig: Path) -> Processed:
    match_id = str(uuid.uuid4())
    args = ["process", "--left", str(pair / "left.mp4"), "--right", str(pair / "right.mp4")]
    args += ["--rig", str(rig), "--title", title, "--match-id", match_id]
    args += ["--stack", str(stack.data_dir)]
    with CpuSampler(stack.process.pid) as sampler:
        started = time.time()
        done = subprocess.run([*CLI, *args], env=stack.env, capture_output=True, text=True)
        ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"processing {title} failed: {done.stderr[-2000:]}")
    frames = int(re.search(r"done: (\d+) frames", done.stdout).group(1))  # type: ignore[union-attr]
    org = re.search(r"orgs/([0-9a-f-]{36})/", done.stdout).group(1)  # type: ignore[union-attr]
    spans = asyncio.run(
        _histories_spans(
            stack.state["temporal_address"],
            stack.state["temporal_namespace"],
            f"match-{match_id}",
        )
    )
    samples = [(t, c) for t, c in sampler.samples if started <= t <= ended]
    cpu, wall = attribute_cpu(samples, spans)
    total = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0.0
    return Processed(match_id, org, frames, ended - started, total, cpu, wall)


def evaluate(stack_dir: Path, env: dict[str, str], processed: Processed, truth: Path) -> Any:
    report = stack_dir / f"eval-{processed.match_id}.json"
    args = ["eval", "--truth", str(truth), "--match", processed.match_id]
    args += ["--org", processed.organization_id, "--json", str(report)]
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"eval failed: {done.stderr[-2000:]}")
    return json.loads(report.read_text())


def accuracy_of(report: Any) -> dict[str, Any]:
    tracking = report.get("tracking") or {}
    ball = report.get("ball") or {}
    return {
        "mota": tracking.get("mota"),
        "idf1": tracking.get("idf1"),
        "hota": tracking.get("hota"),
        "ball_within_2m": ball.get("found_2m_share"),
        "ball_within_1m": ball.get("found_1m_share"),
        "ball_false_report_share": ball.get("false_report_share"),
        "ball_false_report_share_all": ball.get("false_report_share_all"),
    }


# -- projection ------------------------------------------------------------------------------


def _scales(size: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Per setting, how per-frame costs grow from the real recording's panorama to the target
    rig's: pixels for most stages, tiles a frame for detection."""
    from activities.detect.pitch_tiles import plan_pitch_tiles
    from activities.detect.tiling import plan_tiles
    from activities.stitch.panorama import panorama_model_from_rig, player_region_mask
    from bench.stitch_quality import real_rig
    from synth.rig import default_rig

    real = panorama_model_from_rig(real_rig(REAL_DIR)[0])
    target = panorama_model_from_rig(default_rig(*size))

    def tiles(model: Any, scope: str) -> int:
        region = player_region_mask(model)
        if scope == "sized":
            return len(plan_pitch_tiles(model, region))
        roi = region if scope == "pitch" else None
        return len(plan_tiles(model.width, model.height, 416, 96, roi=roi, upscale=1.5))

    pixels = (target.width * target.height) / (real.width * real.height)
    scopes = {"naive": "all", "tuned": "pitch", "ours": "sized"}
    return {
        name: {"pixels": pixels, "detect": tiles(target, scope) / tiles(real, scope)}
        for name, scope in scopes.items()
    }


def project(stage_cpu: dict[str, float], frames: int, scale: dict[str, float]) -> dict[str, Any]:
    """Hours a 90-minute 2 x 3856x2180 match at 50 fps would take on 2, 16 and 64 cores."""
    target_frames = TARGET_MATCH_S * TARGET_FPS
    parallel = sequential = 0.0
    for stage, seconds in stage_cpu.items():
        per_frame = seconds / frames * (scale["detect"] if stage == "detect" else scale["pixels"])
        total = per_frame * target_frames
        if stage in PARALLEL_STAGES:
            parallel += total
        else:
            sequential += total
    return {
        "cpu_hours": round((parallel + sequential) / 3600, 2),
        **{
            f"hours_on_{cores}_cores": round((parallel / cores + sequential) / 3600, 2)
            for cores in (2, 16, 64)
        },
    }


# -- the run ---------------------------------------------------------------------------------


def _synth(seed: int, seconds: float, size: str, out: Path) -> None:
    args = ["synth", "--seconds", str(seconds), "--size", size, "--seed", str(seed)]
    subprocess.run([*CLI, *args, "--out", str(out)], check=True, capture_output=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="fresh synthetic seeds to score")
    parser.add_argument("--seed", type=int, action="append", help="a given seed (repeatable)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each seed")
    parser.add_argument("--size", default="1920x1080", help="synthetic camera size")
    parser.add_argument("--settings", default="naive,tuned,ours")
    parser.add_argument("--keep", default=None, help="keep the stacks' data here")
    args = parser.parse_args(argv)
    if not (REAL_DIR / "left_camera.mp4").exists() or not (MODELS_DIR / "yolox_nano.onnx").exists():
        print(f"bench.pipeline: needs {REAL_DIR} and {MODELS_DIR} (../shared/data)")
        return
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    seeds = args.seed or [random.SystemRandom().randrange(1000, 10**6) for _ in range(args.seeds)]
    work = Path(args.keep or tempfile.mkdtemp(prefix="pv-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    real = work / "real"
    real.mkdir(exist_ok=True)
    for side in ("left", "right"):
        link = real / f"{side}.mp4"
        if not link.exists():
            link.symlink_to(REAL_DIR / f"{side}_camera.mp4")
    rig = work / "real-rig.json"
    subprocess.run(
        [*CLI, "rig", "soccertrack", str(REAL_DIR), "--out", str(rig)],
        check=True,
        capture_output=True,
    )
    for seed in seeds:
        if not (work / f"seed-{seed}" / "rig.json").exists():
            print(f"synth seed {seed} ({args.seconds:g} s, {args.size})", flush=True)
            _synth(seed, args.seconds, args.size, work / f"seed-{seed}")
    results: dict[str, Any] = {}
    for name in names:
        stack_dir = work / f"stack-{name}"
        print(f"[{name}] stack up: {SETTINGS[name] or 'defaults'}", flush=True)
        processed: dict[str, Processed] = {}
        with running_stack(stack_dir, SETTINGS[name], work / f"{name}.log") as stack:
            processed["real"] = process_recording(stack, real, f"{name} real", rig)
            real_run = processed["real"]
            print(
                f"[{name}] real: {real_run.frames} frames, {real_run.wall_s:.0f} s wall, "
                f"{real_run.cpu_s:.0f} CPU s ({real_run.cpu_s / real_run.frames:.3f} a frame)",
                flush=True,
            )
            for seed in seeds:
                pair = work / f"seed-{seed}"
                processed[f"seed-{seed}"] = process_recording(
                    stack, pair, f"{name} seed {seed}", pair / "rig.json"
                )
                print(f"[{name}] seed {seed} processed", flush=True)
            env = stack.env
        accuracy = {
            str(seed): accuracy_of(
                evaluate(stack_dir, env, processed[f"seed-{seed}"], work / f"seed-{seed}")
            )
            for seed in seeds
        }
        real_run = processed["real"]
        results[name] = {
            "env": SETTINGS[name],
            "real": {
                "frames": real_run.frames,
                "wall_s": round(real_run.wall_s, 1),
                "cpu_s": round(real_run.cpu_s, 1),
                "cpu_s_per_frame": round(real_run.cpu_s / real_run.frames, 4),
                "real_time_factor": round(real_run.wall_s / (real_run.frames / 25.0), 2),
                "stage_cpu_s": {k: round(v, 1) for k, v in sorted(real_run.stage_cpu_s.items())},
                "stage_wall_s": {k: round(v, 1) for k, v in sorted(real_run.stage_wall_s.items())},
            },
            "seeds": accuracy,
            "seed_cpu_s_per_frame": {
                str(seed): round(
                    processed[f"seed-{seed}"].cpu_s / processed[f"seed-{seed}"].frames, 4
                )
                for seed in seeds
            },
        }
        print(f"[{name}] {json.dumps(results[name])}", flush=True)
    figures: dict[str, Any] = {
        "recording": "soccertrack-v1 (10 s, 2 x 3072x1728, 25 fps)",
        "seeds": seeds,
        "seed_seconds": args.seconds,
        "seed_size": args.size,
        "settings": results,
    }
    if "ours" in results:
        ours = results["ours"]["real"]["cpu_s_per_frame"]
        for peer in ("tuned", "naive"):
            if peer in results:
                figures[f"cpu_per_frame_{peer}_over_ours"] = round(
                    results[peer]["real"]["cpu_s_per_frame"] / ours, 2
                )
        if "tuned" in results:
            deltas = {}
            for seed in map(str, seeds):
                a, b = results["ours"]["seeds"][seed], results["tuned"]["seeds"][seed]
                deltas[seed] = {
                    key: None if a[key] is None or b[key] is None else round(a[key] - b[key], 4)
                    for key in a
                }
            figures["ours_minus_tuned"] = deltas
    scales = _scales(TARGET_SOURCE)
    figures["projection_90min_2x3856x2180_50fps"] = {
        name: project(
            results[name]["real"]["stage_cpu_s"], results[name]["real"]["frames"], scales[name]
        )
        for name in results
    }
    figures["projection_scales"] = scales
    figures["gpu"] = "not measured: no GPU was lent to this run (scripts/gpu_check.sh)"
    path = write_results("pipeline", figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "settings"}, indent=1))
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
