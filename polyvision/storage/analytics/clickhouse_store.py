"""The analytics store on a ClickHouse server through clickhouse-connect (production).

clickhouse-connect's HTTP client is thread-safe for independent queries (each call is its own
HTTP request from a connection pool), so one store is shared by all activity threads. The
client carries no session, so nothing here relies on session state: the database travels with
every request as the client's `database` setting.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from polyvision.storage.analytics.base import (
    AnalyticsQueryError,
    AnalyticsStore,
    AnalyticsUnavailableError,
    Parameters,
    check_identifier,
)


class ClickHouseAnalyticsStore(AnalyticsStore):
    """Analytics store on a ClickHouse server.

    Args:
        client: a clickhouse-connect client (built by `open_analytics_store` from a URL, or
            injected by tests).
        database: the database to use, created when missing.
    """

    backend = "clickhouse"

    def __init__(self, client: Any, database: str) -> None:
        super().__init__(database)
        self._client: Any = client
        try:
            exists = self._client.command(
                "SELECT count() FROM system.databases WHERE name = {database:String}",
                parameters={"database": self.database},
                use_database=False,
            )
            # Created only when missing: `CREATE DATABASE IF NOT EXISTS` on an existing
            # database still needs the CREATE DATABASE grant, which production users lack.
            if int(exists) == 0:
                self._client.command(
                    f"CREATE DATABASE IF NOT EXISTS {self.database}", use_database=False
                )
        except OperationalError as error:
            self.close()
            raise AnalyticsUnavailableError(f"cannot reach ClickHouse: {error}") from error
        except ClickHouseError as error:
            self.close()
            raise AnalyticsQueryError(str(error)) from error
        self._client.database = self.database

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            raise AnalyticsUnavailableError("the ClickHouse analytics store is closed")
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except OperationalError as error:
            raise AnalyticsUnavailableError(f"cannot reach ClickHouse: {error}") from error
        except ClickHouseError as error:
            raise AnalyticsQueryError(str(error)) from error

    def execute(self, sql: str, parameters: Parameters | None = None) -> None:
        """See `AnalyticsStore.execute`."""
        # A dict (never None) is passed on so that clickhouse-connect always picks server-side
        # binding for `{name:Type}` placeholders, as chDB does.
        self._call("command", sql, parameters=dict(parameters or {}))

    def query_arrow(self, sql: str, parameters: Parameters | None = None) -> pa.Table:
        """See `AnalyticsStore.query_arrow`."""
        # Strings as Arrow strings (not binary), as chDB returns them.
        return self._call("query_arrow", sql, parameters=dict(parameters or {}), use_strings=True)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """See `AnalyticsStore.insert_arrow`: sent as Arrow IPC, columns by name."""
        self._call("insert_arrow", check_identifier(table), data)

    def close(self) -> None:
        """See `AnalyticsStore.close`."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        return f"ClickHouseAnalyticsStore(database={self.database!r})"
