"""`make demo`'s command end to end: up, ready, health through every queue, down clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_passes_and_cleans_up(tmp_path: Path) -> None:
    env = dict(os.environ, PV_DATA_DIR=str(tmp_path / "pv"))
    completed = subprocess.run(
        [sys.executable, "-m", "polyvision.cli", "demo"],
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
    assert "Stopped cleanly (exit 0, nothing left running)" in out
    assert not (tmp_path / "pv" / "demo").exists()  # the demo's data is removed afterwards
