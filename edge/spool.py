"""A durable spool of recording pairs waiting to be uploaded (SQLite, WAL).

One row per pair (paths, sizes, digests, frame counts, upload state) and one row per part the
server confirmed. The agent can be killed at any instant: every state change is one
transaction, and on restart the pairs left ``uploading`` are simply resumed, since the server's
session (found again through the pair's ``client_ref``) knows which parts it already holds.

States::

    queued ──► uploading ──► completed
      ▲            │  │
      └────────────┘  └──► failed ──(requeue)──► queued
      (transient error: retry later)
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from edge.protocol import FileSide


class State(StrEnum):
    queued = "queued"
    uploading = "uploading"
    completed = "completed"
    failed = "failed"


# Which states each transition may start from; anything else is a bug in the caller.
_ALLOWED_FROM: dict[State, frozenset[State]] = {
    State.uploading: frozenset({State.queued, State.uploading}),
    State.completed: frozenset({State.uploading}),
    State.failed: frozenset({State.uploading}),
    State.queued: frozenset({State.uploading, State.failed}),
}

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY,
    client_ref TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    left_path TEXT NOT NULL,
    right_path TEXT NOT NULL,
    rig_path TEXT NOT NULL,
    title TEXT,
    recorded_at TEXT NOT NULL,
    left_size INTEGER NOT NULL CHECK (left_size > 0),
    right_size INTEGER NOT NULL CHECK (right_size > 0),
    left_sha256 TEXT NOT NULL,
    right_sha256 TEXT NOT NULL,
    left_frames INTEGER NOT NULL,
    right_frames INTEGER NOT NULL,
    part_size INTEGER,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'uploading', 'completed', 'failed')),
    session_id TEXT,
    match_id TEXT,
    workflow_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    files_deleted INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (left_path, right_path)
);
CREATE TABLE IF NOT EXISTS parts (
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    file TEXT NOT NULL CHECK (file IN ('left', 'right')),
    number INTEGER NOT NULL CHECK (number > 0),
    size INTEGER NOT NULL,
    confirmed_at REAL NOT NULL,
    PRIMARY KEY (recording_id, file, number)
);
-- Pairs whose content is a spooled pair's under other names (version 2): remembered so that
-- the watcher does not hash them again on every scan. `signature` is sizes and mtimes: files
-- that change are described afresh.
CREATE TABLE IF NOT EXISTS duplicates (
    left_path TEXT NOT NULL,
    right_path TEXT NOT NULL,
    signature TEXT NOT NULL,
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    noted_at REAL NOT NULL,
    PRIMARY KEY (left_path, right_path)
);
"""


class SpoolStateError(RuntimeError):
    """A transition was asked from a state that does not allow it."""


@dataclass(frozen=True)
class PairInfo:
    """A finished recording pair, described and ready to enqueue.

    Attributes:
        client_ref: Stable id of the pair (the server's idempotency key).
        name: The pair's base name (``<name>_left.mp4``).
        left_path: Left recording.
        right_path: Right recording.
        rig_path: The rig.json describing the cameras.
        title: Match title, if any.
        recorded_at: When recording started (aware).
        left_size: Bytes of the left file.
        right_size: Bytes of the right file.
        left_sha256: Hex digest of the left file.
        right_sha256: Hex digest of the right file.
        left_frames: Video frames in the left file.
        right_frames: Video frames in the right file.
        part_size: Part size to ask the server for (None: the server's default).
    """

    client_ref: str
    name: str
    left_path: Path
    right_path: Path
    rig_path: Path
    title: str | None
    recorded_at: datetime
    left_size: int
    right_size: int
    left_sha256: str
    right_sha256: str
    left_frames: int
    right_frames: int
    part_size: int | None = None


@dataclass(frozen=True)
class Recording:
    """One spooled pair with its upload state."""

    id: int
    info: PairInfo
    state: State
    session_id: uuid.UUID | None
    match_id: uuid.UUID | None
    workflow_id: str | None
    attempts: int
    next_attempt_at: float
    last_error: str | None
    files_deleted: bool

    def path(self, side: FileSide) -> Path:
        """The recording of ``side``."""
        return self.info.left_path if side == "left" else self.info.right_path

    def size(self, side: FileSide) -> int:
        """Bytes of ``side``."""
        return self.info.left_size if side == "left" else self.info.right_size

    def sha256(self, side: FileSide) -> str:
        """Hex digest of ``side``."""
        return self.info.left_sha256 if side == "left" else self.info.right_sha256


def _recording(row: sqlite3.Row) -> Recording:
    info = PairInfo(
        client_ref=row["client_ref"],
        name=row["name"],
        left_path=Path(row["left_path"]),
        right_path=Path(row["right_path"]),
        rig_path=Path(row["rig_path"]),
        title=row["title"],
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        left_size=row["left_size"],
        right_size=row["right_size"],
        left_sha256=row["left_sha256"],
        right_sha256=row["right_sha256"],
        left_frames=row["left_frames"],
        right_frames=row["right_frames"],
        part_size=row["part_size"],
    )
    return Recording(
        id=row["id"],
        info=info,
        state=State(row["state"]),
        session_id=uuid.UUID(row["session_id"]) if row["session_id"] else None,
        match_id=uuid.UUID(row["match_id"]) if row["match_id"] else None,
        workflow_id=row["workflow_id"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        files_deleted=bool(row["files_deleted"]),
    )


class Spool:
    """The spool database. Open with `Spool.open`; one instance per process.

    Args:
        connection: An open SQLite connection in autocommit mode.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> Spool:
        """Open (creating when missing) the spool at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a read-check-write
        # transition holds the write lock from its first read.
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a part recorded as confirmed survives a power cut right after, not just a crash.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        # CREATE ... IF NOT EXISTS only: reopening an existing spool changes nothing.
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return cls(db)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- reading -------------------------------------------------------------------------------

    def get(self, recording_id: int) -> Recording:
        """The row ``recording_id``.

        Raises:
            KeyError: no such row.
        """
        row = self._db.execute("SELECT * FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        if row is None:
            raise KeyError(recording_id)
        return _recording(row)

    def find_by_paths(self, left: Path, right: Path) -> Recording | None:
        """The pair spooled from exactly these two files, if any."""
        row = self._db.execute(
            "SELECT * FROM recordings WHERE left_path = ? AND right_path = ?",
            (str(left), str(right)),
        ).fetchone()
        return _recording(row) if row is not None else None

    def duplicate_of(self, left: Path, right: Path, signature: str) -> Recording | None:
        """The spooled pair these two files were found to duplicate, if they were and have not
        changed since (same ``signature``)."""
        row = self._db.execute(
            "SELECT recording_id FROM duplicates WHERE left_path = ? AND right_path = ? "
            "AND signature = ?",
            (str(left), str(right), signature),
        ).fetchone()
        return self.get(int(row[0])) if row is not None else None

    def all(self) -> list[Recording]:
        """Every spooled pair, oldest first."""
        rows = self._db.execute("SELECT * FROM recordings ORDER BY id").fetchall()
        return [_recording(row) for row in rows]

    def due(self, now: float | None = None) -> list[Recording]:
        """Pairs to work on now: queued ones whose retry time has come, and ones left
        ``uploading`` by a previous run. Oldest first."""
        moment = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT * FROM recordings WHERE state IN ('queued', 'uploading') "
            "AND next_attempt_at <= ? ORDER BY id",
            (moment,),
        ).fetchall()
        return [_recording(row) for row in rows]

    def next_due_at(self) -> float | None:
        """The earliest retry time of a pending pair, or None when nothing is pending."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM recordings WHERE state IN ('queued', 'uploading')"
        ).fetchone()
        value = row[0] if row is not None else None
        return float(value) if value is not None else None

    def confirmed_parts(self, recording_id: int, side: FileSide) -> set[int]:
        """Part numbers of ``side`` the server has confirmed."""
        rows = self._db.execute(
            "SELECT number FROM parts WHERE recording_id = ? AND file = ?",
            (recording_id, side),
        ).fetchall()
        return {int(row[0]) for row in rows}

    # --- transitions ---------------------------------------------------------------------------

    def enqueue(self, info: PairInfo) -> Recording:
        """Add a pair in state ``queued``; a pair already spooled (same client_ref) is returned
        as it is."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT * FROM recordings WHERE client_ref = ?", (info.client_ref,)
            ).fetchone()
            if row is not None:
                return _recording(row)
            cursor = db.execute(
                "INSERT INTO recordings (client_ref, name, left_path, right_path, rig_path, "
                "title, recorded_at, left_size, right_size, left_sha256, right_sha256, "
                "left_frames, right_frames, part_size, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.client_ref,
                    info.name,
                    str(info.left_path),
                    str(info.right_path),
                    str(info.rig_path),
                    info.title,
                    info.recorded_at.isoformat(),
                    info.left_size,
                    info.right_size,
                    info.left_sha256,
                    info.right_sha256,
                    info.left_frames,
                    info.right_frames,
                    info.part_size,
                    now,
                    now,
                ),
            )
            recording_id = cursor.lastrowid
        assert recording_id is not None
        return self.get(recording_id)

    def record_duplicate(self, left: Path, right: Path, signature: str, recording_id: int) -> None:
        """Remember that these two files hold the content of pair ``recording_id``."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO duplicates "
                "(left_path, right_path, signature, recording_id, noted_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (str(left), str(right), signature, recording_id, time.time()),
            )

    def _move(
        self, db: sqlite3.Connection, recording_id: int, target: State, **columns: object
    ) -> None:
        row = db.execute("SELECT state FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        if row is None:
            raise KeyError(recording_id)
        current = State(row[0])
        if current not in _ALLOWED_FROM[target]:
            raise SpoolStateError(f"recording {recording_id}: cannot go {current} -> {target}")
        assignments = {"state": target.value, "updated_at": time.time(), **columns}
        names = ", ".join(f"{name} = ?" for name in assignments)
        db.execute(
            f"UPDATE recordings SET {names} WHERE id = ?",
            (*assignments.values(), recording_id),
        )

    def start(self, recording_id: int) -> Recording:
        """``queued``/``uploading`` → ``uploading`` (one more attempt)."""
        with self._transaction() as db:
            self._move(db, recording_id, State.uploading)
            db.execute(
                "UPDATE recordings SET attempts = attempts + 1 WHERE id = ?", (recording_id,)
            )
        return self.get(recording_id)

    def set_session(
        self, recording_id: int, session_id: uuid.UUID, match_id: uuid.UUID, part_size: int
    ) -> None:
        """Remember the server's session; parts confirmed for another session are forgotten."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT session_id FROM recordings WHERE id = ?", (recording_id,)
            ).fetchone()
            if row is None:
                raise KeyError(recording_id)
            if row[0] is not None and row[0] != str(session_id):
                db.execute("DELETE FROM parts WHERE recording_id = ?", (recording_id,))
            db.execute(
                "UPDATE recordings SET session_id = ?, match_id = ?, part_size = ?, "
                "updated_at = ? WHERE id = ?",
                (str(session_id), str(match_id), part_size, time.time(), recording_id),
            )

    def confirm_parts(
        self, recording_id: int, side: FileSide, parts: list[tuple[int, int]]
    ) -> None:
        """Record parts ``(number, size)`` of ``side`` as stored on the server."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO parts (recording_id, file, number, size, confirmed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(recording_id, side, number, size, now) for number, size in parts],
            )

    def complete(self, recording_id: int, workflow_id: str | None) -> Recording:
        """``uploading`` → ``completed``."""
        with self._transaction() as db:
            self._move(db, recording_id, State.completed, workflow_id=workflow_id, last_error=None)
        return self.get(recording_id)

    def fail(self, recording_id: int, error: str) -> Recording:
        """``uploading`` → ``failed`` for good (the server refused the pair); files are kept."""
        with self._transaction() as db:
            self._move(db, recording_id, State.failed, last_error=error)
        return self.get(recording_id)

    def retry_later(self, recording_id: int, error: str, delay_s: float) -> Recording:
        """``uploading`` → ``queued`` with the next try ``delay_s`` from now."""
        with self._transaction() as db:
            self._move(
                db,
                recording_id,
                State.queued,
                last_error=error,
                next_attempt_at=time.time() + delay_s,
            )
        return self.get(recording_id)

    def requeue(self, recording_id: int) -> Recording:
        """``failed`` → ``queued`` (an operator's decision), due at once."""
        with self._transaction() as db:
            self._move(db, recording_id, State.queued, next_attempt_at=0.0, attempts=0)
        return self.get(recording_id)

    def mark_files_deleted(self, recording_id: int) -> None:
        """Note that the local recordings of a verified upload were deleted."""
        with self._transaction() as db:
            db.execute(
                "UPDATE recordings SET files_deleted = 1, updated_at = ? WHERE id = ?",
                (time.time(), recording_id),
            )
