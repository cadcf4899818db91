"""Analytics storage: one interface, chDB in process or a ClickHouse server, the same SQL.

`open_analytics_store(url)` picks the backend from `PV_ANALYTICS_URL`:

* `chdb:///abs/dir` — persistent chDB data in that directory; `chdb://:memory:` — in memory.
  Optional `?database=name` (default `polyvision`). One path per process (see `chdb_store`).
* `clickhouse://user:pass@host:8123/db` — a ClickHouse server over HTTP;
  `clickhouses://…` for HTTPS (default port 8443). The path names the database (default
  `default`); user and password are URL-decoded.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from polyvision.storage.analytics.base import (
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
    "SLICE_TABLES",
    "AnalyticsError",
    "AnalyticsQueryError",
    "AnalyticsStore",
    "AnalyticsUnavailableError",
    "ColumnData",
    "Migration",
    "MigrationError",
    "Parameters",
    "apply_migrations",
    "load_migrations",
    "open_analytics_store",
]


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
        ValueError: for an unknown scheme or a malformed URL.
        AnalyticsUnavailableError: when the engine cannot be opened or reached.
        MigrationError: when `migrate` finds the recorded migrations inconsistent.
    """
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ValueError(
            f"analytics URL {url!r} has no scheme://; expected chdb:// or clickhouse://"
        )
    store: AnalyticsStore
    if scheme == "chdb":
        store = _open_chdb(rest, url)
    elif scheme in ("clickhouse", "clickhouses"):
        store = _open_clickhouse(url, secure=scheme == "clickhouses")
    else:
        raise ValueError(
            f"unknown analytics URL scheme {scheme!r} in {url!r};"
            " expected chdb, clickhouse or clickhouses"
        )
    if migrate:
        try:
            apply_migrations(store)
        except BaseException:
            store.close()
            raise
    return store


def _open_chdb(rest: str, url: str) -> AnalyticsStore:
    from polyvision.storage.analytics.chdb_store import MEMORY, ChdbAnalyticsStore

    location, _, query = rest.partition("?")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - {"database"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in analytics URL {url!r}")
    location = unquote(location)
    if location not in (MEMORY, "memory") and not location.startswith("/"):
        raise ValueError(
            f"chDB analytics URL {url!r} needs an absolute path (chdb:///abs/dir) or :memory:"
        )
    path = MEMORY if location in (MEMORY, "memory") else location
    return ChdbAnalyticsStore(path, options.get("database", "polyvision"))


def _open_clickhouse(url: str, *, secure: bool) -> AnalyticsStore:
    # Imported here so that a chDB-only process never loads the HTTP client stack.
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from polyvision.storage.analytics.clickhouse_store import ClickHouseAnalyticsStore

    parts = urlsplit(url)
    try:
        port = parts.port or (8443 if secure else 8123)
    except ValueError as error:
        raise ValueError(f"bad port in analytics URL: {error}") from error
    if not parts.hostname:
        raise ValueError(
            "ClickHouse analytics URL needs a host: clickhouse://user:pass@host:8123/db"
        )
    database = unquote(parts.path.strip("/")) or "default"
    try:
        client = clickhouse_connect.get_client(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else "",
            secure=secure,
            # The database is set after the store has made sure that it exists.
            database="default",
        )
    except ClickHouseError as error:
        # Raised by the client's first request (server version and settings).
        raise AnalyticsUnavailableError(
            f"cannot reach ClickHouse at {parts.hostname}:{port}: {error}"
        ) from error
    return ClickHouseAnalyticsStore(client, database)
