"""The catalog's full-text search index: objects outside the SQLModel tables.

Migration 0010 creates them per backend (a ``tsvector`` column with a GIN index on PostgreSQL,
an FTS5 table on SQLite) and triggers keep them in step with ``matches`` and ``teams``. Their
shape differs per backend, so they are not SQLModel tables: `include_name` tells Alembic's
autogenerate (and the schema comparison) to leave them alone, and the query side reads them
through the lightweight table clauses below.
"""

from __future__ import annotations

import sqlalchemy as sa

SEARCH_TABLE = "match_search"
"""One row per match: its searchable texts (SQLite) or their ``tsvector`` (PostgreSQL)."""

FTS_TABLE = "match_search_fts"
"""SQLite's FTS5 index over `SEARCH_TABLE` (and FTS5's own ``match_search_fts_*`` tables)."""


def is_search_object(name: str | None) -> bool:
    """Whether a table or index name belongs to the search index."""
    return name is not None and name.startswith(SEARCH_TABLE)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: everything but the search index's tables."""
    if type_ == "table":
        return not is_search_object(name)
    return True


# Query-side views of the objects: only the columns the search reads.
postgres_search = sa.table(
    SEARCH_TABLE,
    sa.column("match_id", sa.Uuid()),
    sa.column("document"),
)
sqlite_search = sa.table(
    SEARCH_TABLE,
    sa.column("id", sa.Integer()),
    sa.column("match_id", sa.Uuid()),
)
sqlite_fts = sa.table(FTS_TABLE, sa.column("rowid", sa.Integer()))
