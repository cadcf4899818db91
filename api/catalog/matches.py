"""The match listing: filters, search, sort and keyset pagination as one SELECT.

Keyset, not OFFSET: a page starts after the last row of the previous one (its sort value, then
its id to break ties), so rows added or removed meanwhile never shift a page, and a deep page
costs no more than the first. Matches without a kickoff sort last in either direction.

A search (`api.catalog.search`) joins the full-text index; its ``relevance`` sort orders by
relevance, then kickoff (newest first, none last), then id, and its cursors hold all three.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from api.catalog.cursor import RELEVANCE_SORT, PageKey
from api.catalog.search import match_search
from polyvision.storage.metadata.models import Device, Match, MatchStatus, Team

HomeTeam = aliased(Team, name="home_team")
AwayTeam = aliased(Team, name="away_team")

# The names are NULL where the outer join found nothing, whatever the static type says.
MatchRowSelect = Select[Match, str, str, str]
# The listing adds the search relevance (0 without search terms).
MatchListingSelect = Select[Match, str, str, str, int]


class MatchSort(StrEnum):
    """Sort orders of the listing; a leading ``-`` means descending."""

    kickoff_desc = "-kickoff_at"
    kickoff_asc = "kickoff_at"
    created_desc = "-created_at"
    created_asc = "created_at"
    title_asc = "title"
    title_desc = "-title"
    # Search relevance, highest first, then kickoff newest first: a search's default.
    relevance = RELEVANCE_SORT

    @property
    def descending(self) -> bool:
        return self.value.startswith("-") or self is MatchSort.relevance

    @property
    def field(self) -> str:
        """The match column sorted on (after the relevance, for `relevance`)."""
        return "kickoff_at" if self is MatchSort.relevance else self.value.removeprefix("-")


@dataclass(frozen=True)
class MatchFilters:
    """What a listing keeps; every field is optional and they combine with AND.

    Attributes:
        statuses: Any of these statuses (empty: all).
        team_id: The team plays, home or away.
        device_id: Recorded by this device.
        kickoff_from: Kickoff at or after (inclusive).
        kickoff_to: Kickoff before (exclusive), so consecutive ranges never overlap.
        terms: Search terms (`search_terms`); each must start a word of the title, the venue
            or a team's name.
    """

    statuses: tuple[MatchStatus, ...] = ()
    team_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    kickoff_from: datetime | None = None
    kickoff_to: datetime | None = None
    terms: tuple[str, ...] = ()

    def fingerprint(self, sort: MatchSort) -> str:
        """A short digest of the filters and the sort, stored in cursors."""
        described: dict[str, Any] = {
            "sort": sort.value,
            "statuses": sorted(status.value for status in self.statuses),
            "team_id": str(self.team_id) if self.team_id else None,
            "device_id": str(self.device_id) if self.device_id else None,
            "kickoff_from": self.kickoff_from.timestamp() if self.kickoff_from else None,
            "kickoff_to": self.kickoff_to.timestamp() if self.kickoff_to else None,
            "terms": list(self.terms),
        }
        text = json.dumps(described, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MatchRow:
    """A match with the names the listing shows beside its ids."""

    match: Match
    home_team_name: str | None
    away_team_name: str | None
    device_name: str | None


def match_rows(organization_id: uuid.UUID) -> MatchRowSelect:
    """The organization's matches with their teams' and device's names (outer joins)."""
    return (
        select(Match, col(HomeTeam.name), col(AwayTeam.name), col(Device.name))
        .outerjoin(HomeTeam, col(HomeTeam.id) == col(Match.home_team_id))
        .outerjoin(AwayTeam, col(AwayTeam.id) == col(Match.away_team_id))
        .outerjoin(Device, col(Device.id) == col(Match.device_id))
        .where(col(Match.organization_id) == organization_id)
    )


def _listing_rows(organization_id: uuid.UUID, relevance: ColumnElement[int]) -> MatchListingSelect:
    """`match_rows` with the relevance as a fifth column."""
    # sqlmodel's `select` is typed for at most four columns; the statement is the same.
    statement: MatchListingSelect = match_rows(organization_id).add_columns(
        relevance.label("relevance")
    )  # type: ignore[assignment]
    return statement


def _sort_column(sort: MatchSort) -> Mapped[Any]:
    columns: dict[str, Mapped[Any]] = {
        "kickoff_at": col(Match.kickoff_at),
        "created_at": col(Match.created_at),
        "title": col(Match.title),
    }
    return columns[sort.field]


def sort_value(match: Match, sort: MatchSort) -> datetime | str | None:
    """The value of ``match`` in the sort column: what a cursor after it records."""
    value: datetime | str | None = getattr(match, sort.field)
    return value


def _filter_conditions(filters: MatchFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(col(Match.status).in_(filters.statuses))
    if filters.team_id is not None:
        conditions.append(
            sa.or_(
                col(Match.home_team_id) == filters.team_id,
                col(Match.away_team_id) == filters.team_id,
            )
        )
    if filters.device_id is not None:
        conditions.append(col(Match.device_id) == filters.device_id)
    if filters.kickoff_from is not None:
        conditions.append(col(Match.kickoff_at) >= filters.kickoff_from)
    if filters.kickoff_to is not None:
        conditions.append(col(Match.kickoff_at) < filters.kickoff_to)
    return conditions


def _after(sort: MatchSort, key: PageKey, relevance: ColumnElement[int]) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the order of `match_listing`."""
    after = _after_in_column(sort, key)
    if sort is not MatchSort.relevance:
        return after
    rank = key.rank if key.rank is not None else 0
    return sa.or_(relevance < rank, sa.and_(relevance == rank, after))


def _after_in_column(sort: MatchSort, key: PageKey) -> ColumnElement[bool]:
    """Rows after ``key`` in the sort column, then the id (ties of the relevance aside)."""
    column = _sort_column(sort)
    match_id = col(Match.id)
    id_after = match_id < key.id if sort.descending else match_id > key.id
    if key.value is None:
        # Rows without a value come last; after one of them only others of them remain.
        return sa.and_(column.is_(None), id_after)
    beyond = column < key.value if sort.descending else column > key.value
    after = sa.or_(beyond, sa.and_(column == key.value, id_after))
    if sort.field == "kickoff_at":
        after = sa.or_(after, column.is_(None))
    return after


def match_listing(
    organization_id: uuid.UUID,
    filters: MatchFilters,
    sort: MatchSort,
    *,
    after: PageKey | None,
    limit: int,
    dialect: str,
) -> MatchListingSelect:
    """One page of the organization's matches, plus one more row to tell if a next page exists.

    Each row holds the match, its teams' and device's names and its search relevance (0
    without search terms).

    Args:
        organization_id: The tenant; nothing outside it is ever selected.
        filters: What to keep.
        sort: The order; ties are broken by id in the same direction.
        after: The decoded cursor of the previous page, or None for the first page.
        limit: Rows per page; the statement selects ``limit + 1``.
        dialect: The engine's dialect name (the search differs per backend).
    """
    column = _sort_column(sort)
    ordered = column.desc() if sort.descending else column.asc()
    tie_breaker = col(Match.id).desc() if sort.descending else col(Match.id).asc()
    search = (
        match_search(dialect, sa.inspect(Match).c.id, list(filters.terms))
        if filters.terms
        else None
    )
    relevance: ColumnElement[int] = (
        search.relevance if search is not None else sa.literal(0, sa.Integer)
    )
    statement = _listing_rows(organization_id, relevance)
    conditions = _filter_conditions(filters)
    if search is not None:
        statement = statement.join(search.table, search.on)
        conditions.append(search.condition)
    if after is not None:
        conditions.append(_after(sort, after, relevance))
    if conditions:
        statement = statement.where(*conditions)
    order = [ordered.nulls_last(), tie_breaker]
    if sort is MatchSort.relevance and search is not None:
        order.insert(0, relevance.desc())
    return statement.order_by(*order).limit(limit + 1)
