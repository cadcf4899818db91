"""``polyvision-edge`` without an API: usage errors, the status command, directory scans."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from edge.cli import parse_size, progress_line, run
from edge.uploader import Progress
from edge.watch import pair_name, scan


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run([])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        run(["upload", "left.mp4"])
    assert caught.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_failures_exit_1_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "l.mp4").write_bytes(b"x")
    (tmp_path / "r.mp4").write_bytes(b"x")
    (tmp_path / "rig.json").write_text("{}")
    state = str(tmp_path / "state")
    code = run(["--state-dir", state, "upload", *(str(tmp_path / n) for n in ("l.mp4", "r.mp4")),
                "--rig", str(tmp_path / "rig.json")])  # fmt: skip
    assert code == 1
    assert "run `polyvision-edge provision` first" in capsys.readouterr().err
    assert run(["--state-dir", state, "watch", str(tmp_path / "nowhere"), "--once"]) == 1
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run(["--state-dir", state, "watch", str(tmp_path / "empty"), "--once"]) == 1
    assert "no rig.json" in capsys.readouterr().err


def test_status_of_an_empty_spool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--state-dir", str(tmp_path), "status"]) == 0
    assert "empty" in capsys.readouterr().out
    assert run(["--state-dir", str(tmp_path), "status", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5M", 5 * 1024**2), ("5MiB", 5 * 1024**2), ("1024", 1024), ("1.5k", 1536), ("2G", 2 << 30)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1", "0"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_scan_finds_only_finished_pairs(tmp_path: Path) -> None:
    for name in ("a_left.mp4", "a_right.mp4", "a.done", "b_left.mp4", "b_right.mp4",
                 "c_left.mp4", "c.done", "rig.json"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    pairs = scan(tmp_path)
    assert [pair.name for pair in pairs] == ["a"]
    assert pairs[0].left == tmp_path / "a_left.mp4"
    assert pairs[0].marker == tmp_path / "a.done"


def test_pair_name() -> None:
    assert pair_name(Path("/r/match_1_left.mp4")) == "match_1"
    assert pair_name(Path("/r/camera.mp4")) == "camera"


def test_progress_lines_are_labelled_by_file() -> None:
    # `upload left.mp4 right.mp4` names its pair "left": the file, not "left left", labels it.
    step = Progress("left", "left", "part", 3, 3, 8, 15, 40, "left.mp4")
    assert progress_line(step) == "left.mp4: 3/8 parts (15/40 bytes), part 3 sent"
    resumed = dataclasses.replace(step, event="resume", number=0)
    assert progress_line(resumed) == "left.mp4: 3/8 parts (15/40 bytes) already on the server"
    unnamed = dataclasses.replace(step, file="")
    assert progress_line(unnamed).startswith("left left: 3/8 parts")
