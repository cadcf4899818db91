"""What a process loads when it only wants to start a workflow or serve the API.

Checked by what the modules are, in a fresh interpreter: a module imported lazily inside a
function would not show here, and that is the point — nothing heavy may load at import time.
The import-linter contracts in pyproject.toml check the same rule statically (`make lint`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("cv2", "av", "onnxruntime", "native", "scipy")


def loaded_after_import(module: str) -> set[str]:
    """The heavy top-level modules present in ``sys.modules`` after importing ``module``."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module",
    [
        "workflows.match",
        "workflows.health",
        "processing.client",
        "activities.ingest.contracts",
        "activities.stitch.contracts",
        "activities.detect.contracts",
        "activities.track.contracts",
        "activities.vcam.contracts",
        "activities.analyze.contracts",
        "activities.encode.contracts",
        "activities.index.contracts",
    ],
)
def test_workflow_side_loads_nothing_heavy(module: str) -> None:
    assert loaded_after_import(module) == set()


def test_api_app_loads_no_decoder_detector_or_native_code() -> None:
    # OpenCV is allowed: the API draws heatmap PNGs with it.
    assert loaded_after_import("api.app") & {"av", "onnxruntime", "native"} == set()


def test_geometry_loads_no_native_code() -> None:
    assert "native" not in loaded_after_import("polyvision.geometry")


def test_the_check_sees_a_heavy_import() -> None:
    # The probe itself must be able to fail: a stage's activity module does load the detector.
    assert {"cv2", "onnxruntime"} <= loaded_after_import("activities.detect.activity")
