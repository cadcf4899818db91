"""`make demo`'s command end to end: up, ready, health, an edge upload to a stream, down clean;
Ctrl-C at any moment stops everything it started; a stalled match ends it, a slow one does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import programs.demo_story as demo_story
from programs.demo_story import StoryFailedError, format_processing, watch_processing
from tests.fixtures.pipeline import requires_model


def _demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "programs.cli", "demo", "--no-serve", *args]


@requires_model
def test_demo_passes_and_cleans_up(tmp_path: Path) -> None:
    env = dict(os.environ, PV_DATA_DIR=str(tmp_path / "pv"))
    completed = subprocess.run(
        _demo_command("--seconds", "2", "--size", "640x360"),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = completed.stdout
    assert completed.returncode == 0, out[-3000:] + completed.stderr[-3000:]
    for queue in ("polyvision-cpu", "polyvision-gpu", "polyvision-nvenc"):
        assert f"{queue}" in out and "answered by" in out
    assert "/namespaces/polyvision/workflows/health-" in out
    # The edge agent uploaded the synthetic match through the API; the workflow it started
    # went through every stage; the viewer's signed stream and the team figures came back.
    assert "polyvision-edge upload" in out
    assert "left.mp4: 1/1 parts" in completed.stderr  # the edge agent labels lines by file
    assert "stage: done" in out
    assert "  detect   ######################## 1/1 chunks, 50/50 frames" in out
    assert "/delivery/" in out and "master.m3u8" in out
    assert "team 0" in out and "team 1" in out
    assert "Stopped cleanly (exit 0, nothing left running)" in out
    assert not (tmp_path / "pv" / "demo").exists()  # the demo's data is removed afterwards


# --- Ctrl-C ------------------------------------------------------------------------------


def _processes_of(root: Path, group: int) -> list[str]:
    """Live processes the demo started: in its process group, or naming ``root`` in their
    command line or environment (the stack's Temporal dev server has a session of its own)."""
    marker = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            process_group = os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if "\nState:\tZ" in status:
            continue
        if process_group == group or marker in cmdline or marker in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


class _Lines:
    """The lines a child writes to stdout, read in a thread as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.lines: list[str] = []
        self._stdout = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float) -> int:
        """Index of the first line containing ``text``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines):
                if text in line:
                    return index
            time.sleep(0.05)
        raise AssertionError(f"never printed {text!r}:\n" + "\n".join(self.lines[-40:]))

    def join(self) -> list[str]:
        self._thread.join(timeout=10)
        return self.lines


@pytest.mark.parametrize(
    ("moment", "args", "to_group"),
    [
        # Filming a 30 s match at 640x360 takes several seconds: Ctrl-C lands mid-way. A
        # terminal's Ctrl-C reaches the whole foreground group (`polyvision up` included)...
        pytest.param("Filming a", ("--seconds", "30", "--size", "640x360"), True, id="filming"),
        # ... `kill -INT` only the demo, which must stop the stack itself.
        pytest.param(
            "stage: ",
            ("--seconds", "2", "--size", "640x360"),
            False,
            id="processing",
            marks=requires_model,
        ),
    ],
)
def test_ctrl_c_stops_everything_in_one_line(
    tmp_path: Path, moment: str, args: tuple[str, ...], to_group: bool
) -> None:
    root = tmp_path / "pv"
    env = dict(os.environ, PV_DATA_DIR=str(root))
    # A session of its own, like a shell's foreground job: its process group is the demo's.
    process = subprocess.Popen(
        _demo_command(*args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    group = process.pid
    out = _Lines(process)
    try:
        at = out.wait_for(moment, timeout_s=180)
        if to_group:
            os.killpg(group, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.killpg(group, signal.SIGKILL)
            process.wait()
    lines = out.join()
    assert process.stderr is not None
    err = process.stderr.read()
    after = [line for line in lines[at + 1 :] if line.strip() and not line.startswith(" ")]
    assert after[-1:] == ["interrupted: stack stopped"], lines[-20:]
    assert sum("interrupted" in line for line in lines) == 1
    for marker in ("Traceback", "KeyboardInterrupt"):
        assert marker not in err and marker not in "\n".join(lines), err[-3000:]
    deadline = time.monotonic() + 10
    while (left := _processes_of(root, group)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], left


# --- progress, and a stall -----------------------------------------------------------------


def test_processing_status_is_shown_as_stage_bars() -> None:
    status = {
        "status": "running",
        "progress": {
            "stage": "detect",
            "running": ["stitch", "detect"],
            "stages": {
                "ingest": {"done": 1, "total": 1, "seconds": 0.25},
                "stitch": {
                    "done": 2,
                    "total": 4,
                    "seconds": None,
                    "running": True,
                    "frames_done": 600,
                    "frames_total": 1000,
                },
                "detect": {
                    "done": 1,
                    "total": 4,
                    "seconds": None,
                    "running": True,
                    "frames_done": 300,
                    "frames_total": 1000,
                },
            },
        },
    }
    assert format_processing(status).splitlines()[:5] == [
        "stage: detect (running: stitch, detect)",
        "  ingest   ######################## 1/1    0.2 s",
        "  stitch   ##############---------- 2/4 chunks, 600/1000 frames  running",
        "  detect   #######----------------- 1/4 chunks, 300/1000 frames  running",
        "  track    ........................",
    ]
    assert format_processing({"status": "not_started"}) == "stage: not_started"


class _Answers:
    """The processing endpoint, answering from a list (the last answer repeats)."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers

    def poll(self, path: str) -> dict[str, Any] | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _running(stage: str, done: int, frames: int) -> dict[str, Any]:
    entry = {"done": done, "total": 2, "frames_done": frames, "frames_total": 100}
    return {
        "status": "running",
        "progress": {"stage": stage, "running": [stage], "stages": {stage: entry}},
    }


def test_a_slow_match_is_waited_for_and_a_stalled_one_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo_story, "POLL_S", 0.01)
    said: list[str] = []
    # Frames move inside a chunk (and the API is briefly unavailable): not a stall.
    moving = [_running("detect", 0, n) for n in range(0, 50, 5)]
    slow = _Answers([*moving[:3], None, *moving[3:], {"status": "completed", "progress": None}])
    api: Any = slow
    done = watch_processing(api, "/p", _running("detect", 0, 0), said.append, 0.5)
    assert done["status"] == "completed"

    stuck: Any = _Answers([_running("detect", 1, 60)])
    with pytest.raises(StoryFailedError, match="processing stalled in detect: no chunk or frame"):
        watch_processing(stuck, "/p", _running("detect", 1, 60), said.append, 0.2)
