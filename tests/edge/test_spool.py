"""The spool: survives reopening, allows only the documented transitions."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.spool import PairInfo, Spool, SpoolStateError, State


def pair(tmp_path: Path, name: str = "match1", ref: str | None = None) -> PairInfo:
    return PairInfo(
        client_ref=ref or f"edge-pair-{name}",
        name=name,
        left_path=tmp_path / f"{name}_left.mp4",
        right_path=tmp_path / f"{name}_right.mp4",
        rig_path=tmp_path / "rig.json",
        title="Derby",
        recorded_at=datetime(2025, 5, 1, 15, 0, tzinfo=UTC),
        left_size=100,
        right_size=120,
        left_sha256="a" * 64,
        right_sha256="b" * 64,
        left_frames=25,
        right_frames=25,
        part_size=40,
    )


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    session_id, match_id = uuid.uuid4(), uuid.uuid4()
    with Spool.open(path) as spool:
        recording = spool.enqueue(pair(tmp_path))
        spool.start(recording.id)
        spool.set_session(recording.id, session_id, match_id, 40)
        spool.confirm_parts(recording.id, "left", [(1, 40), (2, 40)])
        spool.confirm_parts(recording.id, "right", [(3, 40)])
    with Spool.open(path) as spool:
        (again,) = spool.all()
        assert again.id == recording.id
        assert again.info == pair(tmp_path)
        assert again.state is State.uploading
        assert (again.session_id, again.match_id, again.attempts) == (session_id, match_id, 1)
        assert spool.confirmed_parts(again.id, "left") == {1, 2}
        assert spool.confirmed_parts(again.id, "right") == {3}
        # A pair left uploading by a killed run is due again at once.
        assert [r.id for r in spool.due()] == [again.id]


def test_enqueue_is_idempotent(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        first = spool.enqueue(pair(tmp_path))
        second = spool.enqueue(pair(tmp_path))
        assert first.id == second.id
        assert len(spool.all()) == 1
        found = spool.find_by_paths(first.info.left_path, first.info.right_path)
        assert found is not None and found.id == first.id
        assert spool.find_by_paths(tmp_path / "x", tmp_path / "y") is None


def test_happy_path_and_forbidden_transitions(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(pair(tmp_path))
        assert recording.state is State.queued
        with pytest.raises(SpoolStateError, match="queued -> completed"):
            spool.complete(recording.id, "match-x")
        with pytest.raises(SpoolStateError):
            spool.fail(recording.id, "no")
        spool.start(recording.id)
        done = spool.complete(recording.id, "match-x")
        assert done.state is State.completed and done.workflow_id == "match-x"
        assert spool.due() == []
        for move in (spool.start, spool.requeue):
            with pytest.raises(SpoolStateError):
                move(recording.id)


def test_failed_pairs_wait_for_an_operator(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(pair(tmp_path))
        spool.start(recording.id)
        failed = spool.fail(recording.id, "left: sha256 differs")
        assert failed.state is State.failed and failed.last_error == "left: sha256 differs"
        assert spool.due() == []
        again = spool.requeue(recording.id)
        assert again.state is State.queued and again.attempts == 0
        assert [r.id for r in spool.due()] == [recording.id]


def test_retry_later_sets_the_next_attempt(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(pair(tmp_path))
        spool.start(recording.id)
        later = spool.retry_later(recording.id, "API unreachable", 60.0)
        assert later.state is State.queued and later.last_error == "API unreachable"
        assert later.next_attempt_at == pytest.approx(time.time() + 60.0, abs=5)
        assert spool.due() == []
        assert [r.id for r in spool.due(now=time.time() + 61)] == [recording.id]
        assert spool.next_due_at() == later.next_attempt_at
        assert spool.start(recording.id).attempts == 2


def test_a_new_session_forgets_the_old_parts(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(pair(tmp_path))
        first = uuid.uuid4()
        spool.set_session(recording.id, first, uuid.uuid4(), 40)
        spool.confirm_parts(recording.id, "left", [(1, 40)])
        spool.set_session(recording.id, first, uuid.uuid4(), 40)
        assert spool.confirmed_parts(recording.id, "left") == {1}
        spool.set_session(recording.id, uuid.uuid4(), uuid.uuid4(), 40)
        assert spool.confirmed_parts(recording.id, "left") == set()


def test_a_failed_transition_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    with Spool.open(path) as spool:
        recording = spool.enqueue(pair(tmp_path))
        with pytest.raises(SpoolStateError):
            spool.complete(recording.id, "match-x")
        with pytest.raises(KeyError):
            spool.start(recording.id + 100)
    with Spool.open(path) as spool:
        (row,) = spool.all()
        assert row.state is State.queued and row.workflow_id is None
