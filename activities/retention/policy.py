"""Which matches are past their organization's retention: one rule for objects and analytics.

A match expires ``retention_days`` (its organization's, `Organization.retention_days`) after it
was created in the catalog (`Match.created_at`). The creation time is used rather than the
kickoff, the last update or when processing finished: it never moves (renaming a match or a
reprocess does not extend its life) and it is never later than any row the match wrote, so the
analytics tables' fixed TTL (`ingested_at` + 90 days, a backstop; retention is capped at 90
days, `MAX_RETENTION_DAYS`) can never remove a match's figures before this rule removes its
objects too.

A match still uploading or processing is left for a later run (its workflow would write outputs
for data being removed); an expired one is done. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from polyvision.storage.metadata.models import MatchStatus

#: Statuses whose match is left alone: work in flight writes to its stores.
IN_FLIGHT: frozenset[MatchStatus] = frozenset({MatchStatus.uploading, MatchStatus.processing})


@dataclass(frozen=True)
class MatchAge:
    """What the rule needs of one catalog match.

    Attributes:
        organization_id: Its organization.
        match_id: The match.
        status: Its catalog status.
        created_at: When it was created (timezone-aware).
        retention_days: Its organization's retention.
    """

    organization_id: str
    match_id: str
    status: MatchStatus
    created_at: datetime
    retention_days: int


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Matches created before this instant are past a retention of ``retention_days``."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    return now - timedelta(days=retention_days)


def is_expired(match: MatchAge, now: datetime) -> bool:
    """Whether ``match`` is past its organization's retention at ``now`` and may be expired."""
    if match.status is MatchStatus.expired or match.status in IN_FLIGHT:
        return False
    return match.created_at < cutoff(now, match.retention_days)


def expired_matches(matches: Iterable[MatchAge], now: datetime) -> list[MatchAge]:
    """The matches of ``matches`` past retention at ``now``, oldest first.

    Args:
        matches: Catalog matches of any organizations.
        now: The instant to judge at (timezone-aware).

    Returns:
        Those to expire, ordered by creation time (then id, for a stable order).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    chosen = [match for match in matches if is_expired(match, now)]
    return sorted(chosen, key=lambda match: (match.created_at, match.match_id))
