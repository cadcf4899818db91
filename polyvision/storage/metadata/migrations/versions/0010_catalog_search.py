"""Indexed full-text search over matches: their titles, their teams' names and their venues.

One row per match in ``match_search``, kept in step by triggers (a match created, edited or
deleted, a team renamed or deleted) and filled here for the matches that exist:

- PostgreSQL: a ``tsvector`` of the ``simple`` configuration (no stemming, no stop words),
  weighted A for the title, B for the teams' names, C for the venue, with a GIN index;
- SQLite: the three texts in ``match_search`` and an FTS5 index over them
  (``match_search_fts``, external content, ``unicode61`` without diacritics removal, so that
  "ecija" finds "Écija" on neither backend).

The objects are not SQLModel tables (their shape differs per backend):
`polyvision.storage.metadata.search_index` names them for autogenerate to leave alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSTGRES_UP = [
    """
    CREATE TABLE match_search (
        match_id UUID NOT NULL,
        organization_id UUID NOT NULL,
        document TSVECTOR NOT NULL,
        CONSTRAINT pk_match_search PRIMARY KEY (match_id),
        CONSTRAINT fk_match_search_match_id_matches FOREIGN KEY (match_id)
            REFERENCES matches (id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_match_search_document ON match_search USING gin (document)",
    "CREATE INDEX ix_match_search_organization_id ON match_search (organization_id)",
    # The one definition of a match's document, used by every trigger and the backfill.
    """
    CREATE FUNCTION match_search_refresh(target UUID) RETURNS void
    LANGUAGE sql AS $$
        INSERT INTO match_search (match_id, organization_id, document)
        SELECT m.id, m.organization_id,
            setweight(to_tsvector('simple', coalesce(m.title, '')), 'A')
            || setweight(
                to_tsvector('simple', coalesce(h.name, '') || ' ' || coalesce(a.name, '')), 'B'
            )
            || setweight(to_tsvector('simple', coalesce(m.venue, '')), 'C')
        FROM matches m
        LEFT JOIN teams h ON h.id = m.home_team_id
        LEFT JOIN teams a ON a.id = m.away_team_id
        WHERE m.id = target
        ON CONFLICT (match_id) DO UPDATE
        SET organization_id = EXCLUDED.organization_id, document = EXCLUDED.document
    $$
    """,
    """
    CREATE FUNCTION match_search_on_match() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM match_search_refresh(NEW.id);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION match_search_on_team() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM match_search_refresh(m.id)
        FROM matches m
        WHERE m.home_team_id = NEW.id OR m.away_team_id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    # A deleted team's matches lose it through ON DELETE SET NULL: an UPDATE of the team
    # columns, which fires the match trigger. A deleted match takes its row along (cascade).
    """
    CREATE TRIGGER match_search_match
    AFTER INSERT OR UPDATE OF title, venue, home_team_id, away_team_id, organization_id
    ON matches FOR EACH ROW EXECUTE FUNCTION match_search_on_match()
    """,
    """
    CREATE TRIGGER match_search_team
    AFTER UPDATE OF name ON teams
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION match_search_on_team()
    """,
    "SELECT match_search_refresh(id) FROM matches",
]

_POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS match_search_team ON teams",
    "DROP TRIGGER IF EXISTS match_search_match ON matches",
    "DROP FUNCTION IF EXISTS match_search_on_team()",
    "DROP FUNCTION IF EXISTS match_search_on_match()",
    "DROP FUNCTION IF EXISTS match_search_refresh(UUID)",
    "DROP TABLE IF EXISTS match_search",
]

# The texts of a match's row: title, both teams' names, venue (never NULL).
_SQLITE_TEXTS = """
    SELECT m.id, m.organization_id, m.title,
        coalesce(h.name, '') || ' ' || coalesce(a.name, ''), coalesce(m.venue, '')
    FROM matches m
    LEFT JOIN teams h ON h.id = m.home_team_id
    LEFT JOIN teams a ON a.id = m.away_team_id
"""

_SQLITE_TEAMS = """(
    SELECT coalesce(h.name, '') || ' ' || coalesce(a.name, '')
    FROM matches m
    LEFT JOIN teams h ON h.id = m.home_team_id
    LEFT JOIN teams a ON a.id = m.away_team_id
    WHERE m.id = match_search.match_id
)"""

_SQLITE_UP = [
    # INTEGER PRIMARY KEY: the FTS index's rowid, stable across VACUUM and table rebuilds.
    """
    CREATE TABLE match_search (
        id INTEGER NOT NULL,
        match_id CHAR(32) NOT NULL,
        organization_id CHAR(32) NOT NULL,
        title TEXT NOT NULL,
        teams TEXT NOT NULL,
        venue TEXT NOT NULL,
        CONSTRAINT pk_match_search PRIMARY KEY (id),
        CONSTRAINT uq_match_search_match_id UNIQUE (match_id),
        CONSTRAINT fk_match_search_match_id_matches FOREIGN KEY (match_id)
            REFERENCES matches (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE VIRTUAL TABLE match_search_fts USING fts5(
        title, teams, venue,
        content='match_search', content_rowid='id',
        tokenize='unicode61 remove_diacritics 0'
    )
    """,
    # The FTS index follows match_search (the external-content pattern of the FTS5 manual).
    """
    CREATE TRIGGER match_search_fts_insert AFTER INSERT ON match_search BEGIN
        INSERT INTO match_search_fts (rowid, title, teams, venue)
        VALUES (NEW.id, NEW.title, NEW.teams, NEW.venue);
    END
    """,
    """
    CREATE TRIGGER match_search_fts_delete AFTER DELETE ON match_search BEGIN
        INSERT INTO match_search_fts (match_search_fts, rowid, title, teams, venue)
        VALUES ('delete', OLD.id, OLD.title, OLD.teams, OLD.venue);
    END
    """,
    """
    CREATE TRIGGER match_search_fts_update AFTER UPDATE ON match_search BEGIN
        INSERT INTO match_search_fts (match_search_fts, rowid, title, teams, venue)
        VALUES ('delete', OLD.id, OLD.title, OLD.teams, OLD.venue);
        INSERT INTO match_search_fts (rowid, title, teams, venue)
        VALUES (NEW.id, NEW.title, NEW.teams, NEW.venue);
    END
    """,
    # match_search follows matches and teams. A deleted team's matches lose it through
    # ON DELETE SET NULL, which fires the update trigger; a deleted match takes its row along
    # (cascade, which fires the FTS delete trigger).
    f"""
    CREATE TRIGGER match_search_match_insert AFTER INSERT ON matches BEGIN
        INSERT INTO match_search (match_id, organization_id, title, teams, venue)
        {_SQLITE_TEXTS} WHERE m.id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER match_search_match_update
    AFTER UPDATE OF title, venue, home_team_id, away_team_id, organization_id ON matches BEGIN
        DELETE FROM match_search WHERE match_id = OLD.id;
        INSERT INTO match_search (match_id, organization_id, title, teams, venue)
        {_SQLITE_TEXTS} WHERE m.id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER match_search_team_rename AFTER UPDATE OF name ON teams
    WHEN OLD.name IS NOT NEW.name BEGIN
        UPDATE match_search SET teams = {_SQLITE_TEAMS}
        WHERE match_id IN (
            SELECT id FROM matches WHERE home_team_id = NEW.id OR away_team_id = NEW.id
        );
    END
    """,
    f"INSERT INTO match_search (match_id, organization_id, title, teams, venue) {_SQLITE_TEXTS}",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS match_search_team_rename",
    "DROP TRIGGER IF EXISTS match_search_match_update",
    "DROP TRIGGER IF EXISTS match_search_match_insert",
    "DROP TRIGGER IF EXISTS match_search_fts_update",
    "DROP TRIGGER IF EXISTS match_search_fts_delete",
    "DROP TRIGGER IF EXISTS match_search_fts_insert",
    "DROP TABLE IF EXISTS match_search_fts",
    "DROP TABLE IF EXISTS match_search",
]


def _run(statements: Sequence[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _run(_POSTGRES_UP if postgres else _SQLITE_UP)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _run(_POSTGRES_DOWN if postgres else _SQLITE_DOWN)
