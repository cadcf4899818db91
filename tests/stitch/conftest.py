"""Shared fixtures of the stitch tests: the synthetic rig at a small size, its panorama and maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from activities.stitch.maps import StitchMaps, build_stitch_maps
from activities.stitch.panorama import PanoramaModel, panorama_model_from_rig
from activities.stitch.stitch_plan import StitchPlan
from polyvision.geometry import Rig
from synth.generate import SynthConfig, generate_match
from tests.stitch.helpers import decode_all, straight_seam

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


@pytest.fixture(scope="session")
def plan(maps: StitchMaps) -> StitchPlan:
    """A plan with the straight seam and unit gains."""
    return StitchPlan.from_maps(maps, straight_seam(maps))


@pytest.fixture(scope="session")
def left_frames(synth_match: Path) -> list[np.ndarray]:
    return decode_all(synth_match / "left.mp4")


@pytest.fixture(scope="session")
def right_frames(synth_match: Path) -> list[np.ndarray]:
    return decode_all(synth_match / "right.mp4")
