"""Analytics storage: one interface, chDB in process or a ClickHouse server, the same SQL.

`open_analytics_store(url)` picks the backend from `PV_ANALYTICS_URL`:

* `chdb:///abs/dir` — persistent chDB data in that directory; `chdb://:memory:` — in memory.
  Optional `?database=name` (default `polyvision`). One path per process (see `chdb_store`).
* `clickhouse://user:pass@host:8123/db` — a ClickHouse server over HTTP;
  `clickhouses://…` for HTTPS (default port 8443). The path names the database (default
  `default`); user and password are URL-decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from polyvision.settings import StartupError
from polyvision.storage.analytics.base import (
    DERIVED_TABLES,
    REVISION_TABLES,
    SLICE_TABLES,
    AnalyticsError,
    AnalyticsQueryError,
    AnalyticsStore,
    AnalyticsUnavailableError,
    ColumnData,
    Parameters,
)
from polyvision.storage.analytics.migrations import (
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
)

__all__ = [
    "DERIVED_TABLES",
    "REVISION_TABLES",
    "SLICE_TABLES",
    "AnalyticsError",
    "AnalyticsQueryError",
    "AnalyticsStore",
    "AnalyticsUnavailableError",
    "AnalyticsUrl",
    "ColumnData",
    "Migration",
    "MigrationError",
    "Parameters",
    "apply_migrations",
    "load_migrations",
    "open_analytics_store",
    "parse_analytics_url",
]


_MEMORY = ":memory:"  # chdb_store.MEMORY, without loading chDB to parse a URL
_FORMS = "chdb:///abs/dir, chdb://:memory: or clickhouse://user:pass@host:8123/db"


@dataclass(frozen=True)
class AnalyticsUrl:
    """A parsed `PV_ANALYTICS_URL` (see the module docstring).

    Attributes:
        backend: ``chdb`` (in process) or ``clickhouse`` (a server over HTTP or HTTPS).
        database: The database the store uses.
        path: chDB: the data directory, or ``:memory:``.
        host: ClickHouse: the server's name or address.
        port: ClickHouse: the HTTP(S) port.
        username: ClickHouse: the user, URL-decoded; None: the client's default.
        password: ClickHouse: the password, URL-decoded (kept out of ``repr``).
        secure: ClickHouse: HTTPS (``clickhouses://``).
    """

    backend: Literal["chdb", "clickhouse"]
    database: str
    path: str = ""
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str = field(default="", repr=False)
    secure: bool = False


def parse_analytics_url(url: str) -> AnalyticsUrl:
    """Read `url` without opening anything.

    Raises:
        StartupError: (a ValueError) naming PV_ANALYTICS_URL, for an unknown scheme or a
            malformed URL; the message never quotes the URL, which may hold a password.
    """
    scheme, _, rest = url.partition("://")
    if not rest:
        raise StartupError("PV_ANALYTICS_URL", f"PV_ANALYTICS_URL has no scheme; expected {_FORMS}")
    if scheme == "chdb":
        return _parse_chdb(rest)
    if scheme in ("clickhouse", "clickhouses"):
        return _parse_clickhouse(url, secure=scheme == "clickhouses")
    raise StartupError(
        "PV_ANALYTICS_URL",
        f"PV_ANALYTICS_URL has an unknown analytics URL scheme {_scheme_name(scheme)};"
        f" expected {_FORMS} (or clickhouses:// for HTTPS)",
    )


def _scheme_name(scheme: str) -> str:
    # A scheme is letters, digits, + - . only; anything else may be part of a secret.
    return repr(scheme) if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme) else "(malformed)"


def _parse_chdb(rest: str) -> AnalyticsUrl:
    location, _, query = rest.partition("?")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - {"database"}
    if unknown:
        raise StartupError(
            "PV_ANALYTICS_URL",
            f"PV_ANALYTICS_URL has unknown option(s) {sorted(unknown)} for chDB;"
            " known: ['database']",
        )
    location = unquote(location)
    if location not in (_MEMORY, "memory") and not location.startswith("/"):
        raise StartupError(
            "PV_ANALYTICS_URL",
            "PV_ANALYTICS_URL needs an absolute path for chDB (chdb:///abs/dir) or chdb://:memory:",
        )
    path = _MEMORY if location in (_MEMORY, "memory") else location
    return AnalyticsUrl("chdb", options.get("database", "polyvision"), path=path)


def _parse_clickhouse(url: str, *, secure: bool) -> AnalyticsUrl:
    try:
        parts = urlsplit(url)
        port = parts.port or (8443 if secure else 8123)
    except ValueError:
        # urlsplit's message quotes the port, which is a piece of the password when that
        # holds an unescaped / ? or #.
        raise StartupError(
            "PV_ANALYTICS_URL",
            "PV_ANALYTICS_URL has a malformed host or port (a / @ : ? or # in the user name"
            " or password must be percent-encoded)",
        ) from None
    if not parts.hostname:
        raise StartupError(
            "PV_ANALYTICS_URL",
            "PV_ANALYTICS_URL names no ClickHouse host: clickhouse://user:pass@host:8123/db",
        )
    return AnalyticsUrl(
        "clickhouse",
        unquote(parts.path.strip("/")) or "default",
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else "",
        secure=secure,
    )


def open_analytics_store(url: str, *, migrate: bool = False) -> AnalyticsStore:
    """Open the analytics store that `url` names.

    Args:
        url: `chdb:///abs/dir`, `chdb://:memory:`, `clickhouse://user:pass@host:port/db` or
            `clickhouses://…`; see the module docstring.
        migrate: apply pending packaged migrations before returning (entry points that own
            the schema pass True; read-only users leave it off).

    Returns:
        An open store; close it (or use it as a context manager) when done.

    Raises:
        StartupError: (a ValueError) naming PV_ANALYTICS_URL, for an unknown scheme or a
            malformed URL.
        AnalyticsUnavailableError: when the engine cannot be opened or reached.
        MigrationError: when `migrate` finds the recorded migrations inconsistent.
    """
    parsed = parse_analytics_url(url)
    store = _open_chdb(parsed) if parsed.backend == "chdb" else _open_clickhouse(parsed)
    if migrate:
        try:
            apply_migrations(store)
        except BaseException:
            store.close()
            raise
    return store


def _open_chdb(parsed: AnalyticsUrl) -> AnalyticsStore:
    from polyvision.storage.analytics.chdb_store import ChdbAnalyticsStore

    return ChdbAnalyticsStore(parsed.path, parsed.database)


def _open_clickhouse(parsed: AnalyticsUrl) -> AnalyticsStore:
    # Imported here so that a chDB-only process never loads the HTTP client stack.
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from polyvision.storage.analytics.clickhouse_store import ClickHouseAnalyticsStore

    try:
        client = clickhouse_connect.get_client(
            host=parsed.host,
            port=parsed.port,
            username=parsed.username,
            password=parsed.password,
            secure=parsed.secure,
            # The database is set after the store has made sure that it exists.
            database="default",
        )
    except ClickHouseError as error:
        # Raised by the client's first request (server version and settings).
        raise AnalyticsUnavailableError(
            f"cannot reach ClickHouse at {parsed.host}:{parsed.port}: {error}"
        ) from error
    return ClickHouseAnalyticsStore(client, parsed.database)
