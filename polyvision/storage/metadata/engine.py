"""Async engines and sessions for the metadata store: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.settings import StartupError

# Driverless URLs get the async driver, so `postgresql://…` in PV_DATABASE_URL just works.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_FORMS = "sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host:5432/db"


def normalize_url(url: str | URL) -> URL:
    """Parse `url` and select the async driver when none is named.

    Raises:
        StartupError: (a ValueError) naming PV_DATABASE_URL, for a malformed URL or a backend
            other than SQLite or PostgreSQL; the message never quotes the URL, which may
            hold a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's messages may quote the URL or a piece of it (a password with an
        # unescaped / or @ reads as a port), so neither they nor the cause are kept.
        raise StartupError(
            "PV_DATABASE_URL",
            f"PV_DATABASE_URL is not a database URL; expected {_FORMS}"
            " (a / @ : ? or # in the user name or password must be percent-encoded)",
        ) from None
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.drivername not in _ASYNC_DRIVERS.values():
        raise StartupError(
            "PV_DATABASE_URL",
            f"PV_DATABASE_URL names an unsupported database {parsed.drivername!r};"
            f" expected {_FORMS}",
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory or non-SQLite database."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLite leaves foreign keys off per connection unless asked. WAL lets the API read
    # while a worker writes; busy_timeout waits on a locked database instead of failing.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for a metadata database URL.

    For SQLite the parent directory of the database file is created if missing, and every
    connection enforces foreign keys and uses WAL.

    Args:
        url: `sqlite+aiosqlite:///path` or `postgresql+asyncpg://user@host/db`
            (driverless `sqlite://` and `postgresql://` are accepted too).
        **kwargs: passed to `sqlalchemy.ext.asyncio.create_async_engine`.

    Raises:
        StartupError: naming PV_DATABASE_URL, for a URL `normalize_url` refuses or a SQLite
            file whose directory cannot be created.
    """
    parsed = normalize_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(
                "PV_DATABASE_URL",
                f"PV_DATABASE_URL: cannot create {path.parent} for the SQLite database"
                f" ({exc.strerror or exc.__class__.__name__})",
            ) from exc
    if parsed.get_backend_name() == "postgresql":
        # Connections dropped by a server restart or a proxy are replaced, not raised.
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    return engine


def session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory bound to `engine`.

    Objects stay readable after commit (`expire_on_commit=False`), which async code needs:
    a lazy refresh after commit would be implicit IO.
    """
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def check(engine: AsyncEngine) -> None:
    """Round-trip `SELECT 1` for readiness probes; bound it with `asyncio.timeout`.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused the connection or the query.
    """
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
