"""Alembic environment for the metadata store (SQLite and PostgreSQL, async drivers).

`polyvision.storage.metadata.migrate` runs alembic commands with an open connection in
`config.attributes["connection"]`; without one (offline `--sql` mode, or a bare
`alembic_config(url)` handed to an alembic command) the URL in `config.attributes["url"]`
is used.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from polyvision.storage.metadata.engine import create_engine
from polyvision.storage.metadata.models import metadata
from polyvision.storage.metadata.search_index import include_name

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Generated migrations use plain SQLAlchemy types, so they never depend on SQLModel's
    # internals (which may change) and read the same as the hand-written ones.
    if type_ == "type" and isinstance(obj, AutoString):
        length = getattr(obj.impl, "length", None)
        return f"sa.String(length={length})" if length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        render_item=_render_item,
        # The search index (migration 0010) is no SQLModel table: never "remove" it.
        include_name=include_name,
        **kwargs,
    )


def _run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by copy-and-drop; with foreign keys on, dropping a
        # parent table would cascade-delete its children. Effective only outside a
        # transaction, which is how `migrate` hands the connection over.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    # SQLite has no ALTER for most column and constraint changes: batch mode emulates it.
    _configure(connection=connection, render_as_batch=sqlite)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left dangling foreign keys: {broken[:10]}")


async def _run_from_url() -> None:
    engine = create_engine(config.attributes["url"])
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=config.attributes["url"], literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run_with(connection)
else:
    asyncio.run(_run_from_url())
