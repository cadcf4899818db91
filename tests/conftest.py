"""Session-wide fixtures: each real server lives in its own plugin module under fixtures/."""

import os
from pathlib import Path

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.temporal",
    "tests.fixtures.processed_match",
]

# Subprocesses the tests start (polyvision up, demo, worker) find the detector where the
# Makefile would point them: the shared data beside the repository, when it is there.
_SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "models"
if "PV_MODELS_DIR" not in os.environ and (_SHARED_MODELS / "yolox_nano.onnx").exists():
    os.environ["PV_MODELS_DIR"] = str(_SHARED_MODELS)
