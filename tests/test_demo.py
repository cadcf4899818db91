"""`make demo`'s command end to end: up, ready, health, a synthetic match to HLS, down clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.pipeline import requires_model


@requires_model
def test_demo_passes_and_cleans_up(tmp_path: Path) -> None:
    env = dict(os.environ, PV_DATA_DIR=str(tmp_path / "pv"))
    completed = subprocess.run(
        [sys.executable, "-m", "polyvision.cli", "demo", "--seconds", "2", "--size", "640x360"],
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
    # The synthetic match went through every stage to an HLS playlist and a summary.
    assert "stage: done" in out
    assert "HLS playlist" in out and "master.m3u8" in out
    assert "frames               50" in out
    assert "Stopped cleanly (exit 0, nothing left running)" in out
    assert not (tmp_path / "pv" / "demo").exists()  # the demo's data is removed afterwards
