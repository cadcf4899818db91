"""Shared fixtures of the stitch tests: the synthetic rig at a small size and its panorama."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.stitch.panorama import (
    PanoramaModel,
    StitchMaps,
    build_stitch_maps,
    panorama_model_from_rig,
)
from polyvision.geometry import Rig
from synth.generate import SynthConfig, generate_match

# Small enough to keep the tests fast, large enough that a penalty spot is a few pixels wide.
MATCH = SynthConfig(seconds=2.0, fps=25.0, width=640, height=360, seed=1)


@pytest.fixture(scope="session")
def synth_match(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 2 s match: left.mp4, right.mp4 (keyframe every second), rig.json."""
    directory = tmp_path_factory.mktemp("stitch") / "match"
    generate_match(MATCH, directory)
    return directory


@pytest.fixture(scope="session")
def rig(synth_match: Path) -> Rig:
    return Rig.load(synth_match / "rig.json")


@pytest.fixture(scope="session")
def model(rig: Rig) -> PanoramaModel:
    return panorama_model_from_rig(rig)


@pytest.fixture(scope="session")
def maps(rig: Rig, model: PanoramaModel) -> StitchMaps:
    return build_stitch_maps(rig, model)
