"""`make demo`'s command end to end: up, ready, health, an edge upload to a stream, down clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from programs.demo_story import format_processing
from tests.fixtures.pipeline import requires_model


@requires_model
def test_demo_passes_and_cleans_up(tmp_path: Path) -> None:
    env = dict(os.environ, PV_DATA_DIR=str(tmp_path / "pv"))
    completed = subprocess.run(
        [sys.executable, "-m", "programs.cli", "demo", "--seconds", "2", "--size", "640x360"],
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
    assert "stage: done" in out
    assert "/delivery/" in out and "master.m3u8" in out
    assert "team 0" in out and "team 1" in out
    assert "Stopped cleanly (exit 0, nothing left running)" in out
    assert not (tmp_path / "pv" / "demo").exists()  # the demo's data is removed afterwards


def test_processing_status_is_shown_as_stage_bars() -> None:
    status = {
        "status": "running",
        "progress": {
            "stage": "detect",
            "stages": {
                "ingest": {"done": 1, "total": 1, "seconds": 0.25},
                "detect": {"done": 1, "total": 4, "seconds": None},
            },
        },
    }
    assert format_processing(status).splitlines() == [
        "stage: detect",
        "  ingest   ######################## 1/1    0.2 s",
        "  detect   ######------------------ 1/4",
    ]
    assert format_processing({"status": "not_started"}) == "stage: not_started"
