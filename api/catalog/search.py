"""Full-text search over a few text columns, the same for plain words on both backends.

A query is split into terms (runs of letters and digits, lower-cased); a row matches when every
term starts a word of the searched text. PostgreSQL uses its text search (``to_tsvector`` and a
prefix ``to_tsquery`` of the ``simple`` configuration: no stemming, no stop words, so "the"
and "united" mean what they say); SQLite, which has no text search without an extension, gets one
``LIKE '% term%'`` per term over the text with punctuation turned into spaces. Both split words
at the same characters for plain text, so both find the same rows.

Known difference: SQLite's ``lower`` folds ASCII letters only, so a non-ASCII capital in the
stored text ("ÉCIJA") is not found by its lower-case term there.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

MAX_TERMS = 8
"""Terms past this many are ignored: enough for any name, and bounds the statement's size."""

_TERM = re.compile(r"[^\W_]+")

# Characters PostgreSQL's parser treats as word separators in names and titles; SQLite's text
# gets them replaced by spaces so that "Barcelona-B" holds the words "barcelona" and "b" on both.
_SEPARATORS = "-.,'/()&:;_\"!?+"


def search_terms(query: str | None) -> list[str]:
    """The distinct lower-case terms of a search query, in order, at most `MAX_TERMS`."""
    if not query:
        return []
    terms: list[str] = []
    for term in _TERM.findall(query.lower()):
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def _document(columns: list[sa.ColumnExpressionArgument[str | None]]) -> ColumnElement[str]:
    # NULL columns (no venue, no team) must not make the whole text NULL.
    parts: list[ColumnElement[str]] = [
        sa.func.coalesce(column, "", type_=sa.String) for column in columns
    ]
    document = parts[0]
    for part in parts[1:]:
        document = document + " " + part
    return document


def search_condition(
    dialect: str, columns: list[sa.ColumnExpressionArgument[str | None]], terms: list[str]
) -> ColumnElement[bool]:
    """A WHERE condition: every term starts a word of the concatenated ``columns``.

    Args:
        dialect: The engine's dialect name (``postgresql`` or ``sqlite``).
        columns: The searched text columns (NULLs allowed).
        terms: From `search_terms`: letters and digits only, so they need no escaping.
    """
    if not terms:
        return sa.true()
    document = _document(columns)
    if dialect == "postgresql":
        query = " & ".join(f"{term}:*" for term in terms)
        vector = sa.func.to_tsvector(sa.literal_column("'simple'"), document)
        tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), sa.literal(query, sa.String))
        return vector.bool_op("@@")(tsquery)
    text: ColumnElement[str] = sa.func.lower(document)
    for separator in _SEPARATORS:
        text = sa.func.replace(text, separator, " ")
    padded = " " + text
    return sa.and_(*(padded.like(f"% {term}%") for term in terms))
