"""Each part's result file: its figures, its checks, the command and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.checks import Check

RESULTS_DIR = Path(__file__).parent / "results"


def _commit() -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def write_result(
    part: str,
    *,
    command: str,
    seed: int,
    elapsed_s: float,
    figures: dict[str, Any],
    checks: Sequence[Check],
    directory: Path = RESULTS_DIR,
) -> Path:
    """Write ``{directory}/{part}.json`` (``chaos/results/`` by default)."""
    directory.mkdir(exist_ok=True)
    path = directory / f"{part}.json"
    record = {
        "part": part,
        "command": command,
        "seed": seed,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
        "elapsed_s": round(elapsed_s, 1),
        "passed": all(check.ok for check in checks),
        "checks": [check.to_json() for check in checks],
        "figures": figures,
    }
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


def read_results(directory: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """Every part's last result, by part name."""
    found = {}
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        found[record["part"]] = record
    return found
