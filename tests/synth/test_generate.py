"""`polyvision synth` end to end: deterministic files, consistent truth, eval on top."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from evaluation.formats import Results, Tracks, load_truth, write_results
from polyvision.geometry import Rig, project
from synth.generate import GENERATOR_VERSION, SynthConfig, generate_match

SMALL = SynthConfig(seconds=1.0, fps=25.0, width=320, height=180, seed=3)
FILES = ("left.mp4", "right.mp4", "rig.json", "truth.parquet", "match.json")


def _digests(directory: Path) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def small_match(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("synth") / "match"
    generate_match(SMALL, directory)
    return directory


def test_same_seed_same_files_other_seed_other_match(small_match: Path, tmp_path: Path) -> None:
    generate_match(SMALL, tmp_path / "again")
    assert _digests(tmp_path / "again") == _digests(small_match)
    other = SynthConfig(seconds=1.0, fps=25.0, width=320, height=180, seed=4)
    generate_match(other, tmp_path / "other")
    assert _digests(tmp_path / "other")["truth.parquet"] != _digests(small_match)["truth.parquet"]


def test_videos_have_every_frame_at_the_rate_and_size(small_match: Path) -> None:
    for camera in ("left", "right"):
        with av.open(str(small_match / f"{camera}.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.width, stream.height) == (320, 180)
            assert stream.average_rate == 25
            assert sum(1 for _ in container.decode(stream)) == 25


def test_match_json_and_truth_shape(small_match: Path) -> None:
    meta = json.loads((small_match / "match.json").read_text())
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["frames"] == 25 and meta["fps"] == 25.0 and meta["seed"] == 3
    assert meta["size"] == [320, 180]
    truth = load_truth(small_match)
    agents = len(meta["agents"])
    assert agents == 24  # 22 players, a referee, the ball
    assert len(truth.frame) == 25 * agents
    assert set(truth.team.tolist()) == {"home", "away", "referee", "ball"}
    assert truth.in_play is not None


def test_visibility_matches_the_image_bounds(small_match: Path) -> None:
    truth = load_truth(small_match)
    rig = Rig.load(small_match / "rig.json")
    width, height = truth.size
    for camera_name, camera in rig.cameras.items():
        boxes, visible = truth.boxes[camera_name], truth.visible[camera_name]
        shown = boxes[visible]
        # A visible object has a real box inside the image.
        assert (shown[:, 0] >= 0).all() and (shown[:, 1] >= 0).all()
        assert (shown[:, 2] <= width).all() and (shown[:, 3] <= height).all()
        assert ((shown[:, 2] > shown[:, 0]) & (shown[:, 3] > shown[:, 1])).all()
        # An object whose ground point projects far outside the image is not visible.
        pixels, in_front = project(camera, truth.position.astype(np.float64))
        far_outside = ~in_front | (pixels[:, 0] < -0.5 * width) | (pixels[:, 0] > 1.5 * width)
        assert far_outside.any() and not (visible & far_outside).any()
        # Each camera sees a good share of the objects, and together they see nearly all.
    either = truth.visible["left"] | truth.visible["right"]
    assert either[truth.team != "ball"].mean() > 0.95


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "programs.cli", *args],
        env={**os.environ, "PV_LOG_JSON": "true"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cli_synth_then_eval_of_perfect_tracks(tmp_path: Path) -> None:
    out = tmp_path / "match"
    completed = _run_cli(
        "synth", "--seconds", "1", "--size", "320x180", "--seed", "5", "--out", str(out)
    )
    assert completed.returncode == 0, completed.stderr
    assert all((out / name).exists() for name in FILES)
    assert "filming 25/25 frames per camera" in completed.stderr

    truth = load_truth(out)
    people = truth.team != "ball"
    write_results(
        Results(
            tracks=Tracks(
                frame=truth.frame[people],
                track_id=truth.id[people].astype(np.int32) + 100,
                team=truth.team[people],
                position=truth.position[people, :2],
            )
        ),
        tmp_path / "results",
    )
    report_path = tmp_path / "report.json"
    completed = _run_cli(
        "eval",
        "--truth",
        str(out),
        "--results",
        str(tmp_path / "results"),
        "--json",
        str(report_path),
    )
    assert completed.returncode == 0, completed.stderr
    assert "MOTA" in completed.stdout
    report = json.loads(report_path.read_text())
    assert report["tracking"]["mota"] == 1.0
    assert report["tracking"]["idf1"] == 1.0
    assert report["tracking"]["team_accuracy"] == 1.0


def test_cli_eval_refuses_a_missing_truth(tmp_path: Path) -> None:
    completed = _run_cli("eval", "--truth", str(tmp_path / "nope"), "--results", str(tmp_path))
    assert completed.returncode == 2
    assert "polyvision eval:" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        SynthConfig(width=321, height=180)
    with pytest.raises(ValueError, match="positive"):
        SynthConfig(seconds=0)


def test_repeated_encodes_of_rendered_frames_are_identical(tmp_path: Path) -> None:
    # Regression: x264's AVX-512 code made about 1 encode in 7 differ on these frames.
    from polyvision.media.writer import VideoWriter
    from synth.render import Renderer
    from synth.rig import default_rig
    from synth.simulation import simulate

    simulation = simulate(1.0, 25.0, 3)
    renderer = Renderer(default_rig(320, 180), simulation.agents, seed=3)
    frames = [renderer.render_camera("left", i, simulation) for i in range(25)]
    digests = set()
    for attempt in range(10):
        path = tmp_path / f"{attempt}.mp4"
        with VideoWriter(path, 320, 180, 25.0, threads=1) as writer:
            for frame in frames:
                writer.write(frame)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
