"""The watcher: a pair whose content is already spooled under other names is hashed once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge import watch
from edge.client import EdgeClient
from edge.spool import PairInfo, Spool
from edge.uploader import Uploader, describe_pair
from synth.rig import default_rig
from tests.edge.media import write_mp4


def finished_pair(directory: Path, name: str, frames: int = 8) -> tuple[Path, Path]:
    left = write_mp4(directory / f"{name}_left.mp4", frames)
    right = write_mp4(directory / f"{name}_right.mp4", frames)
    (directory / f"{name}.done").write_text("")
    return left, right


def copy_pair(directory: Path, source: str, name: str) -> tuple[Path, Path]:
    left = shutil.copyfile(directory / f"{source}_left.mp4", directory / f"{name}_left.mp4")
    right = shutil.copyfile(directory / f"{source}_right.mp4", directory / f"{name}_right.mp4")
    (directory / f"{name}.done").write_text("")
    return left, right


class Hashed:
    """Counts the pairs the watcher describes (reads and hashes), calling the real function."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._describe: Callable[..., PairInfo] = describe_pair

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> PairInfo:
        self.names.append(name)
        return self._describe(name, *args, **kwargs)


def watcher(spool: Spool, directory: Path, notes: list[str]) -> watch.Watcher:
    # Nothing is uploaded here: the client is never called.
    uploader = Uploader(EdgeClient("http://127.0.0.1:9"), spool)
    return watch.Watcher(uploader, spool, directory, directory / "rig.json", notify=notes.append)


async def test_a_copied_pair_is_hashed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recordings = tmp_path / "rec"
    recordings.mkdir()
    default_rig().save(recordings / "rig.json")
    finished_pair(recordings, "derby")
    copy_left, _ = copy_pair(recordings, "derby", "derby2")
    hashed = Hashed()
    monkeypatch.setattr(watch, "describe_pair", hashed)
    notes: list[str] = []
    spool_path = tmp_path / "spool.sqlite"

    with Spool.open(spool_path) as spool:
        added = await watcher(spool, recordings, notes).enqueue_new()
        assert [recording.info.name for recording in added] == ["derby"]
        assert sorted(hashed.names) == ["derby", "derby2"]
        assert [note for note in notes if note.startswith("derby2:")] == [
            f"derby2: same recordings as derby ({recordings.resolve()}), not uploaded again"
        ]
        (original,) = spool.all()
        notes.clear()

        # Scans every poll interval: neither pair is read again.
        for _ in range(3):
            assert await watcher(spool, recordings, notes).enqueue_new() == []
        assert len(hashed.names) == 2 and notes == []

    # Nor after a restart: the duplicate is noted in the spool.
    with Spool.open(spool_path) as spool:
        assert await watcher(spool, recordings, notes).enqueue_new() == []
        assert len(hashed.names) == 2
        assert [recording.id for recording in spool.all()] == [original.id]

        # A copy that changes afterwards is described again (once).
        stat = copy_left.stat()
        os.utime(copy_left, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert await watcher(spool, recordings, notes).enqueue_new() == []
        assert await watcher(spool, recordings, notes).enqueue_new() == []
        assert hashed.names[2:] == ["derby2"]


async def test_pairs_with_other_content_are_all_queued(tmp_path: Path) -> None:
    recordings = tmp_path / "rec"
    recordings.mkdir()
    default_rig().save(recordings / "rig.json")
    finished_pair(recordings, "first", frames=8)
    finished_pair(recordings, "second", frames=9)
    notes: list[str] = []
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        added = await watcher(spool, recordings, notes).enqueue_new()
        assert [recording.info.name for recording in added] == ["first", "second"]
        assert not [note for note in notes if "same recordings" in note]
