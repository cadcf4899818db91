"""Versioned `.sql` migrations for the analytics store, recorded in `schema_migrations`.

Files are named `NNNN_name.sql` and applied in version order, each statement on its own
(ClickHouse's HTTP interface takes one statement per request). ClickHouse has no
transactional DDL, so a migration that fails halfway stays half applied and is not recorded:
write statements that can run again (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT
EXISTS`) so that the retry completes it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from polyvision.storage.analytics.base import AnalyticsError, AnalyticsStore

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

# Bookkeeping table, created before any migration. Not a migration itself: it must exist to
# know which migrations have run.
SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version
"""


class MigrationError(AnalyticsError):
    """The migration files and the database's record of them disagree."""


@dataclass(frozen=True)
class Migration:
    """One migration file.

    Attributes:
        version: the file's number, applied in increasing order.
        name: the rest of the file name, without `.sql`.
        sql: the file's text.
        checksum: sha256 of the file's bytes, recorded to detect later edits.
    """

    version: int
    name: str
    sql: str
    checksum: str

    def statements(self) -> list[str]:
        """The file's statements, comments removed."""
        return split_statements(self.sql)


def packaged_migrations() -> Traversable:
    """The folder of migrations shipped inside this package."""
    return resources.files(__package__ or "polyvision.storage.analytics") / "migrations"


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """Read the migration files of `directory` (the packaged ones by default), sorted.

    Raises:
        MigrationError: when two files share a version or a `.sql` file is misnamed.
    """
    folder = packaged_migrations() if directory is None else directory
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migration files have version {version:04d}")
        raw = entry.read_bytes()
        found[version] = Migration(
            version=version,
            name=match.group(2),
            sql=raw.decode("utf-8"),
            checksum=hashlib.sha256(raw).hexdigest(),
        )
    return [found[version] for version in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split SQL text on `;` outside quotes and comments, dropping comments and empty parts."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end == -1:
                raise MigrationError("unterminated /* comment")
            i = end + 2
            current.append(" ")
            continue
        if char in "'\"`":
            j = i + 1
            while j < n and sql[j] != char:
                j += 2 if sql[j] == "\\" else 1
            if j >= n:
                raise MigrationError(f"unterminated {char} quote")
            current.append(sql[i : j + 1])
            i = j + 1
            continue
        if char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


def applied_migrations(store: AnalyticsStore) -> dict[int, tuple[str, str]]:
    """Version → (name, checksum) of the migrations recorded in the store."""
    store.execute(SCHEMA_MIGRATIONS_DDL)
    # Aliases differ from the column names: ClickHouse would resolve `checksum` inside
    # uniqExact to the alias and reject the nested aggregate.
    table = store.query_arrow(
        "SELECT version, any(name) AS recorded_name, any(checksum) AS recorded_checksum,"
        " uniqExact(checksum) AS checksums FROM schema_migrations GROUP BY version"
    )
    rows = table.to_pylist()
    for row in rows:
        # Two processes migrating at once may both record a version; that is harmless as long
        # as they recorded the same file.
        if row["checksums"] != 1:
            raise MigrationError(f"migration {row['version']:04d} is recorded with two checksums")
    return {
        int(row["version"]): (str(row["recorded_name"]), str(row["recorded_checksum"]))
        for row in rows
    }


def apply_migrations(
    store: AnalyticsStore, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the migrations that the store has not recorded yet, in version order.

    Args:
        store: the store to migrate (its configured database).
        migrations: the migrations to apply; the packaged ones by default.

    Returns:
        The migrations applied by this call (empty when the store was up to date).

    Raises:
        MigrationError: when an applied file has changed since, when the store records a
            migration that these files do not have (newer code migrated it), or when a new
            file is numbered below an applied one.
    """
    wanted = load_migrations() if migrations is None else migrations
    applied = applied_migrations(store)
    by_version = {migration.version: migration for migration in wanted}
    for version, (name, checksum) in sorted(applied.items()):
        known = by_version.get(version)
        if known is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{name} that this code does not"
                " know: it was migrated by newer code"
            )
        if known.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{known.name}.sql changed after it was applied"
                f" (recorded sha256 {checksum[:12]}…, file {known.checksum[:12]}…);"
                " add a new migration instead of editing an applied one"
            )
    pending = [migration for migration in wanted if migration.version not in applied]
    newest_applied = max(applied, default=0)
    for migration in pending:
        if migration.version < newest_applied:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} is new but"
                f" {newest_applied:04d} is already applied; number new migrations after it"
            )
    for migration in pending:
        for statement in migration.statements():
            store.execute(statement)
        store.execute(
            "INSERT INTO schema_migrations (version, name, checksum)"
            " SELECT {version:UInt32}, {name:String}, {checksum:String}",
            {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
        )
    return pending
