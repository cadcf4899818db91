"""Schema migrations for the metadata store, run programmatically (no alembic.ini).

`polyvision db upgrade` calls `upgrade(settings.database_url)`. To write a new migration
against a database at head::

    from alembic import command
    command.revision(alembic_config(url), message="add x", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from polyvision.storage.metadata.engine import create_engine, normalize_url, sqlite_path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

T = TypeVar("T")


def alembic_config(url: str | URL | None = None) -> Config:
    """An alembic `Config` for the packaged migrations, optionally bound to a database.

    The URL travels in `config.attributes` rather than the ini options, so passwords with
    `%` survive (the ini parser would interpolate them).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = normalize_url(url)
    return config


def head() -> str:
    """The newest revision shipped with this code."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "no migrations packaged"
    return revision


async def _on_connection(url: str | URL, fn: Callable[[Connection], T]) -> T:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(fn)
            await connection.commit()
            return result
    finally:
        await engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`; already there is a no-op.

    Creates the SQLite file (and its directory) when missing. Runs its own event loop, so
    call it from synchronous code (or `asyncio.to_thread` inside a running loop).
    """

    def run(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    asyncio.run(_on_connection(url, run))


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (`"base"` empties it)."""

    def run(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    asyncio.run(_on_connection(url, run))


def current(url: str | URL) -> str | None:
    """The revision the database at `url` is at, or None when it was never migrated."""

    path = sqlite_path(normalize_url(url))
    if path is not None and not path.exists():
        return None  # reading must not create an empty database file

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return asyncio.run(_on_connection(url, read))
