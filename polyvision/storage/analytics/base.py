"""The analytics store interface shared by the chDB and ClickHouse backends.

Both backends run the same SQL: statements name tables without a database (each store runs
against its configured database), and values travel as ClickHouse server-side parameters
(`{name:Type}` placeholders), never spliced into the text.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self, TypeAlias

import numpy as np
import pyarrow as pa
import structlog

from polyvision.fencing import ensure_current_attempt_sync

#: Column data accepted by inserts: a pyarrow Table or a mapping of column name to 1-D array.
ColumnData: TypeAlias = "pa.Table | Mapping[str, np.ndarray[Any, Any]]"

#: Query parameters: values for the `{name:Type}` placeholders of a statement.
Parameters: TypeAlias = Mapping[str, Any]

#: Tables written per (match, revision, chunk) slice; `delete_match` clears all of them.
SLICE_TABLES: tuple[str, ...] = (
    "detections",
    "track_points",
    "player_stats",
    "ball_points",
    "team_possession",
)

#: Tables written per (match, revision) as a whole: the analyze stage's match-wide figures
#: (migration 0005). `replace_revision` rewrites them; `delete_match` clears them.
REVISION_TABLES: tuple[str, ...] = (
    "match_player_figures",
    "match_team_minutes",
    "match_events",
    "match_player_cells",
)

#: Targets of materialized views, by source table. A DELETE on the source does not reach them,
#: so whoever deletes source rows deletes the targets' rows of the same scope too.
DERIVED_TABLES: dict[str, tuple[str, ...]] = {
    "match_player_cells": ("match_player_heatmaps", "match_team_heatmaps"),
    "match_events": ("match_event_minutes",),
}

#: Columns that `replace_slice` fills from its arguments.
SLICE_KEY_COLUMNS: tuple[str, ...] = ("organization_id", "match_id", "revision", "chunk")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class AnalyticsError(Exception):
    """Base class of the analytics store's own errors."""


class AnalyticsQueryError(AnalyticsError):
    """A statement failed in the engine (bad SQL, unknown table, type mismatch, ...)."""


class AnalyticsUnavailableError(AnalyticsError):
    """The engine cannot be reached or opened (readiness failure)."""


def check_identifier(name: str) -> str:
    """Return `name` if it is a plain SQL identifier, else raise ValueError.

    Table and column names cannot be bound as parameters in an INSERT, so every name that is
    put into SQL text passes through here first.
    """
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def to_arrow(data: ColumnData) -> pa.Table:
    """Convert column data to a pyarrow Table without copying numeric numpy arrays.

    Args:
        data: a pyarrow Table (returned as is) or a mapping of column name to 1-D array.

    Returns:
        The data as a pyarrow Table.

    Raises:
        ValueError: when arrays are not 1-D or differ in length, or a name is not an identifier.
    """
    if isinstance(data, pa.Table):
        for name in data.column_names:
            check_identifier(name)
        return data
    columns: dict[str, pa.Array] = {}
    length: int | None = None
    for name, values in data.items():
        check_identifier(name)
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"column {name!r} must be 1-D, got shape {array.shape}")
        if length is not None and len(array) != length:
            raise ValueError(f"column {name!r} has {len(array)} rows, expected {length}")
        length = len(array)
        columns[name] = pa.array(array)
    return pa.table(columns)


def constant_column(value: str | int, length: int) -> pa.Array:
    """A column repeating `value`, cheap to build and to ship.

    Strings become a one-entry dictionary array (4 bytes a row, read by ClickHouse straight
    into `LowCardinality(String)`), integers a plain UInt32 array.
    """
    if isinstance(value, str):
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], pa.string())
        )
    return pa.array(np.full(length, value, dtype=np.uint32))


log = structlog.get_logger(__name__)

REPLACE_SLICE_TRIES = 3
"""How many times `AnalyticsStore.replace_slice` writes a slice before it gives up."""


class AnalyticsStore(ABC):
    """Columnar analytics storage: detections, track points, the ball, per-chunk player stats
    and possession.

    The methods are synchronous, like both client libraries; call them from activity threads
    or through `asyncio.to_thread` in the API. Every implementation is safe to share between
    threads (see each backend for how).

    Subclasses implement `execute`, `query_arrow`, `insert_arrow` and `close`; everything else
    is written once here on top of them, so both backends run identical SQL.
    """

    #: Short backend name for logs and readiness reports.
    backend: ClassVar[str]

    def __init__(self, database: str) -> None:
        self.database = check_identifier(database)

    # -- primitives -----------------------------------------------------------------------

    @abstractmethod
    def execute(self, sql: str, parameters: Parameters | None = None) -> None:
        """Run one statement that returns no rows (DDL, DELETE, INSERT ... SELECT).

        Args:
            sql: a single statement; values as `{name:Type}` placeholders.
            parameters: values for the placeholders.

        Raises:
            AnalyticsQueryError: when the engine rejects the statement.
        """

    @abstractmethod
    def query_arrow(self, sql: str, parameters: Parameters | None = None) -> pa.Table:
        """Run a query and return its result as a pyarrow Table.

        Args:
            sql: a single SELECT; values as `{name:Type}` placeholders.
            parameters: values for the placeholders.

        Returns:
            The rows, with column names and types as ClickHouse's Arrow output gives them.

        Raises:
            AnalyticsQueryError: when the engine rejects the statement.
        """

    @abstractmethod
    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Insert a pyarrow Table into `table`, matching columns by name.

        Columns not given take their defaults (for instance `ingested_at`). Numeric types are
        converted by the engine (an int64 array fills a UInt32 column).

        Raises:
            AnalyticsQueryError: when the engine rejects the data.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Idempotent."""

    # -- built on the primitives ----------------------------------------------------------

    def insert(self, table: str, data: ColumnData) -> int:
        """Insert column data (numpy arrays or a pyarrow Table) into `table`.

        Args:
            table: the target table.
            data: a pyarrow Table or a mapping of column name to 1-D numpy array.

        Returns:
            The number of rows inserted.
        """
        ensure_current_attempt_sync()
        arrow = to_arrow(data)
        if arrow.num_rows:
            self.insert_arrow(check_identifier(table), arrow)
        return int(arrow.num_rows)

    def query_numpy(
        self, sql: str, parameters: Parameters | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run a query and return its columns as numpy arrays (strings as object arrays)."""
        table = self.query_arrow(sql, parameters)
        return {name: table.column(i).to_numpy() for i, name in enumerate(table.column_names)}

    def replace_slice(
        self,
        table: str,
        organization_id: str,
        match_id: str,
        revision: int,
        chunk: int,
        data: ColumnData,
    ) -> int:
        """Replace the rows of one (organization, match, revision, chunk) slice with `data`.

        Idempotent: running it again with the same data leaves exactly one copy, so a retried
        activity never duplicates rows, and other chunks are untouched.

        Mechanism: a lightweight `DELETE FROM ... WHERE <slice>` and then one INSERT. Both
        engines run a lightweight DELETE synchronously by default (`lightweight_deletes_sync`),
        and it masks only rows of parts that exist when it starts, so the INSERT that follows
        is never touched by it. The alternatives were worse: partitioning by chunk would make
        thousands of tiny partitions per match (ClickHouse wants few, large ones), and
        ReplacingMergeTree only collapses duplicates eventually, so every query would need
        FINAL. The cost of this choice is a short window in which readers see the slice
        missing, and that two attempts of the same chunk must not run at once (Temporal runs
        one attempt of an activity at a time; a timed-out zombie attempt is the remaining
        risk and is bounded by its heartbeat timeout).

        Args:
            table: one of `SLICE_TABLES`.
            organization_id: tenant id; written to every row.
            match_id: match id; written to every row.
            revision: processing revision of the match.
            chunk: chunk index within the revision.
            data: the slice's other columns (must not contain the four key columns).

        Returns:
            The number of rows inserted.
        """
        ensure_current_attempt_sync()
        if table not in SLICE_TABLES:
            raise ValueError(f"replace_slice works on {SLICE_TABLES}, not {table!r}")
        arrow = to_arrow(data)
        given_keys = set(SLICE_KEY_COLUMNS) & set(arrow.column_names)
        if given_keys:
            raise ValueError(
                f"data must not contain {sorted(given_keys)}: they come from the arguments"
            )
        rows = int(arrow.num_rows)
        keys: dict[str, str | int] = {
            "organization_id": organization_id,
            "match_id": match_id,
            "revision": revision,
            "chunk": chunk,
        }
        for position, (name, value) in enumerate(keys.items()):
            arrow = arrow.add_column(position, name, constant_column(value, rows))
        where = (
            "organization_id = {organization_id:String} AND match_id = {match_id:String}"
            " AND revision = {revision:UInt32} AND chunk = {chunk:UInt32}"
        )
        # Read back and repair: the chaos suite saw a slice left empty after a worker was
        # SIGKILLed mid-write and the retry rewrote it (the retry's INSERT left no part behind).
        # A slice is only reported written once it holds exactly the rows given.
        found = -1
        for _ in range(REPLACE_SLICE_TRIES):
            self.execute(f"DELETE FROM {table} WHERE {where}", keys)
            if rows:
                self.insert_arrow(table, arrow)
            counted = self.query_arrow(f"SELECT count() AS n FROM {table} WHERE {where}", keys)
            found = int(counted.column("n")[0].as_py())
            if found == rows:
                return rows
            log.warning("analytics.slice_mismatch", table=table, expected=rows, found=found, **keys)
        raise AnalyticsError(
            f"{table} slice {keys} holds {found} rows after writing {rows}"
            f" ({REPLACE_SLICE_TRIES} tries)"
        )

    def replace_revision(
        self,
        table: str,
        organization_id: str,
        match_id: str,
        revision: int,
        data: ColumnData,
    ) -> int:
        """Replace the rows of one (organization, match, revision) in a `REVISION_TABLES` table.

        Idempotent like `replace_slice` (the same DELETE-then-INSERT): a retried activity
        leaves one copy. The targets of the table's materialized views (`DERIVED_TABLES`) are
        cleared for the revision first; the INSERT then fills them again through the views.

        Args:
            table: one of `REVISION_TABLES`.
            organization_id: tenant id; written to every row.
            match_id: match id; written to every row.
            revision: processing revision of the match.
            data: the other columns (must not contain the three key columns).

        Returns:
            The number of rows inserted.
        """
        ensure_current_attempt_sync()
        if table not in REVISION_TABLES:
            raise ValueError(f"replace_revision works on {REVISION_TABLES}, not {table!r}")
        arrow = to_arrow(data)
        keys: dict[str, str | int] = {
            "organization_id": organization_id,
            "match_id": match_id,
            "revision": revision,
        }
        given_keys = set(keys) & set(arrow.column_names)
        if given_keys:
            raise ValueError(
                f"data must not contain {sorted(given_keys)}: they come from the arguments"
            )
        rows = int(arrow.num_rows)
        for position, (name, value) in enumerate(keys.items()):
            arrow = arrow.add_column(position, name, constant_column(value, rows))
        where = (
            "organization_id = {organization_id:String} AND match_id = {match_id:String}"
            " AND revision = {revision:UInt32}"
        )
        for target in (*DERIVED_TABLES.get(table, ()), table):
            self.execute(f"DELETE FROM {target} WHERE {where}", keys)
        if rows:
            self.insert_arrow(table, arrow)
        return rows

    def delete_match(
        self, organization_id: str, match_id: str, revision: int | None = None
    ) -> None:
        """Delete a match's rows from every slice table (cancellation and reprocessing cleanup).

        Args:
            organization_id: tenant id.
            match_id: match id.
            revision: only this revision; every revision when None.
        """
        ensure_current_attempt_sync()
        parameters: dict[str, str | int] = {
            "organization_id": organization_id,
            "match_id": match_id,
        }
        where = "organization_id = {organization_id:String} AND match_id = {match_id:String}"
        if revision is not None:
            where += " AND revision = {revision:UInt32}"
            parameters["revision"] = revision
        derived = [t for source in REVISION_TABLES for t in DERIVED_TABLES.get(source, ())]
        for table in (*SLICE_TABLES, *REVISION_TABLES, *derived):
            self.execute(f"DELETE FROM {table} WHERE {where}", parameters)

    def check(self) -> None:
        """Readiness probe: raise AnalyticsUnavailableError unless a trivial query succeeds."""
        try:
            result = self.query_arrow("SELECT 1 AS ok")
        except AnalyticsError as error:
            raise AnalyticsUnavailableError(f"{self.backend} analytics store: {error}") from error
        if result.num_rows != 1:
            raise AnalyticsUnavailableError(f"{self.backend} analytics store: bad probe result")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
