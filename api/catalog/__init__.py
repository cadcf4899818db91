"""The catalog's query building: match filters, full-text search and keyset pagination.

Pure functions that turn request parameters into SQLAlchemy statements (and cursors back into
keys), which the routers execute, plus the loaders that answer 404 for a team or match outside
the caller's organization. Every statement is scoped to one organization.
"""

from __future__ import annotations

from api.catalog.cursor import InvalidCursor, PageKey, decode_cursor, encode_cursor
from api.catalog.lookup import load_match, load_team, match_in_org
from api.catalog.matches import MatchFilters, MatchRow, MatchSort, match_listing, match_rows
from api.catalog.search import MatchSearch, match_search, search_terms

__all__ = [
    "InvalidCursor",
    "MatchFilters",
    "MatchRow",
    "MatchSearch",
    "MatchSort",
    "PageKey",
    "decode_cursor",
    "encode_cursor",
    "load_match",
    "load_team",
    "match_in_org",
    "match_listing",
    "match_rows",
    "match_search",
    "search_terms",
]
