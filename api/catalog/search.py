"""Indexed full-text search over matches: the title, the teams' names and the venue.

A query is split into terms (runs of letters and digits, lower-cased); a match is found when
every term starts a word of its title, its home or away team's name or its venue. The words
come from the search index of migration 0010 (`polyvision.storage.metadata.search_index`),
which triggers keep in step with matches and teams:

- PostgreSQL: a ``tsvector`` of the ``simple`` configuration (no stemming, no stop words, so
  "the" and "united" mean what they say) with a GIN index, queried with prefix terms
  (``rovers:*``);
- SQLite: an FTS5 index (``unicode61`` tokenizer, diacritics kept), queried with prefix
  phrases (``"rovers"*``).

Both split words at punctuation and fold case, so plain names and titles find the same rows.

Relevance is the same whole number on both backends: per term, 3 where it starts a word of the
title, else 2 for a team's name, else 1 (the venue), summed over the terms. The listing sorts
by it, then by kickoff (newest first), then by id.

Known differences: PostgreSQL's parser keeps some tokens whole that FTS5 splits (a decimal
number "1.5", a host name "example.com": "com" finds the latter on SQLite only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableClause

from polyvision.storage.metadata.search_index import (
    FTS_TABLE,
    postgres_search,
    sqlite_fts,
    sqlite_search,
)

MAX_TERMS = 8
"""Terms past this many are ignored: enough for any name, and bounds the statement's size."""

_TERM = re.compile(r"[^\W_]+")

#: Per term, the points of the field it matches first: (PostgreSQL weight, FTS5 column).
_FIELDS = (("A", "title", 3), ("B", "teams", 2))
_OTHER_FIELD = 1  # the venue, the only field left once a term matched neither


def search_terms(query: str | None) -> list[str]:
    """The distinct lower-case terms of a search query, in order, at most `MAX_TERMS`."""
    if not query:
        return []
    terms: list[str] = []
    for term in _TERM.findall(query.lower()):
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


@dataclass(frozen=True)
class MatchSearch:
    """How a match listing uses the index for some terms.

    Attributes:
        table: The index table to join to ``matches``.
        on: The join condition.
        condition: Every term starts a word of the match's texts.
        relevance: The match's relevance (an integer; higher first).
    """

    table: TableClause
    on: ColumnElement[bool]
    condition: ColumnElement[bool]
    relevance: ColumnElement[int]


def _tsquery(text: str) -> ColumnElement[object]:
    return sa.func.to_tsquery(sa.literal_column("'simple'"), sa.literal(text, sa.String))


def _postgres(match_id: ColumnElement[object], terms: list[str]) -> MatchSearch:
    document = postgres_search.c.document

    def matches(query: str) -> ColumnElement[bool]:
        return document.bool_op("@@")(_tsquery(query))

    points = [
        sa.case(
            *((matches(f"{term}:*{weight}"), value) for weight, _, value in _FIELDS),
            else_=_OTHER_FIELD,
        )
        for term in terms
    ]
    return MatchSearch(
        table=postgres_search,
        on=postgres_search.c.match_id == match_id,
        condition=matches(" & ".join(f"{term}:*" for term in terms)),
        relevance=sum(points[1:], points[0]),
    )


def _fts_rows(query: str) -> sa.Select[tuple[int]]:
    """Row ids of the FTS index matching an FTS5 query."""
    return sa.select(sqlite_fts.c.rowid).where(
        sa.literal_column(FTS_TABLE).op("MATCH")(sa.literal(query, sa.String))
    )


def _sqlite(match_id: ColumnElement[object], terms: list[str]) -> MatchSearch:
    row = sqlite_search.c.id
    # Terms are letters and digits only: quoting them is all the escaping FTS5 needs.
    phrases = [f'"{term}"*' for term in terms]
    points = [
        sa.case(
            *((row.in_(_fts_rows(f"{column} : {phrase}")), value) for _, column, value in _FIELDS),
            else_=_OTHER_FIELD,
        )
        for phrase in phrases
    ]
    return MatchSearch(
        table=sqlite_search,
        on=sqlite_search.c.match_id == match_id,
        condition=row.in_(_fts_rows(" AND ".join(phrases))),
        relevance=sum(points[1:], points[0]),
    )


def match_search(dialect: str, match_id: ColumnElement[object], terms: list[str]) -> MatchSearch:
    """The join, condition and relevance that search matches for ``terms``.

    Args:
        dialect: The engine's dialect name (``postgresql`` or ``sqlite``).
        match_id: The ``matches.id`` column of the listing.
        terms: From `search_terms`, at least one: letters and digits only.
    """
    if not terms:
        raise ValueError("a search needs at least one term")
    if dialect == "postgresql":
        return _postgres(match_id, terms)
    return _sqlite(match_id, terms)
