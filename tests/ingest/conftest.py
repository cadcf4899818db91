"""Test material for ingest: small synthetic pairs, derived broken files, the real pair."""

from __future__ import annotations

import os
import re
from pathlib import Path

import av
import pytest

from synth.generate import SynthConfig, generate_match

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """Where the real test material lives: ``$PV_TEST_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("PV_TEST_DATA") or REPO_ROOT.parent / "shared" / "data")


def readme_sha256(data_dir: Path) -> dict[str, str]:
    """The sha256 of each file as published in the data README (the single source of truth)."""
    text = (data_dir / "README.md").read_text()
    return {name: digest for digest, name in re.findall(r"\b([0-9a-f]{64})\s+(\S+\.mp4)", text)}


def remux(src: Path, dst: Path, fmt: str, options: dict[str, str] | None = None) -> Path:
    """Copy the video packets of `src` into another container (no re-encoding)."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format=fmt, options=options) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue  # the flush packet
            packet.stream = stream
            out.mux(packet)
    return dst


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    """Write the first `fraction` of `src` to `dst`, as an interrupted upload would leave it."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="session")
def synth_2s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s synthetic match (50 frames a camera, a keyframe every 25): left/right.mp4, rig."""
    directory = tmp_path_factory.mktemp("synth-2s")
    generate_match(SynthConfig(seconds=2, width=320, height=180), directory)
    return directory


@pytest.fixture(scope="session")
def synth_1s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s synthetic match (25 frames a camera)."""
    directory = tmp_path_factory.mktemp("synth-1s")
    generate_match(SynthConfig(seconds=1, width=320, height=180), directory)
    return directory


@pytest.fixture(scope="session")
def soccertrack() -> Path:
    """The real SoccerTrack pair's directory; skips where the shared data is absent."""
    directory = shared_data_dir() / "soccertrack-v1"
    if not (directory / "left_camera.mp4").is_file():
        pytest.skip(f"real test data not found at {directory} (set PV_TEST_DATA)")
    return directory
