"""Print, as JSON, every analytics table's rows per match of one organization: the row count
and an order-independent hash of the rows without their ingestion time.

`python -m chaos.rows <analytics-url> <organization>`; a child process of the chaos suite,
because the embedded store admits one process at a time.
"""

from __future__ import annotations

import json
import sys

from polyvision.storage.analytics import open_analytics_store

SKIPPED_COLUMNS = ("ingested_at",)


def main(argv: list[str]) -> int:
    url, organization = argv
    store = open_analytics_store(url)
    try:
        tables = (
            store.query_arrow(
                "SELECT table FROM system.columns WHERE database = currentDatabase()"
                " AND name = 'organization_id' GROUP BY table ORDER BY table"
            )
            .column("table")
            .to_pylist()
        )
        result: dict[str, dict[str, list[int]]] = {}
        for table in tables:
            engine = (
                store.query_arrow(
                    "SELECT engine FROM system.tables WHERE database = currentDatabase()"
                    " AND name = {t:String}",
                    {"t": table},
                )
                .column("engine")
                .to_pylist()
            )
            if engine and engine[0] == "MaterializedView":
                continue
            columns = [
                name
                for name in store.query_arrow(
                    "SELECT name FROM system.columns WHERE database = currentDatabase()"
                    " AND table = {t:String} ORDER BY position",
                    {"t": table},
                )
                .column("name")
                .to_pylist()
                if name not in SKIPPED_COLUMNS
            ]
            listed = ", ".join(f"`{name}`" for name in columns)
            rows = store.query_arrow(
                f"SELECT match_id, toInt64(count()) AS n,"
                f" toInt64(sum(cityHash64({listed})) % 9007199254740881) AS h"
                f" FROM `{table}` WHERE organization_id = {{org:String}}"
                " GROUP BY match_id ORDER BY match_id",
                {"org": organization},
            ).to_pylist()
            result[table] = {row["match_id"]: [row["n"], row["h"]] for row in rows}
    finally:
        store.close()
    json.dump(result, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
