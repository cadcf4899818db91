"""The retention activity's light contracts: what crosses the Temporal boundary, nothing heavy.

The fields are recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class ExpireMatchesInput:
    """Input of `expire_matches`.

    Attributes:
        now: The instant retention is judged at (the workflow's time, so a retried attempt
            judges the same matches).
        limit: At most this many matches per call; the workflow calls again while ``more``.
    """

    now: datetime
    limit: int = 100


@dataclass
class ExpiredMatch:
    """One match this call expired.

    Attributes:
        organization_id: Its organization.
        match_id: The match.
        objects_deleted: Objects removed from the object store.
    """

    organization_id: str
    match_id: str
    objects_deleted: int


@dataclass
class ExpireMatchesOutput:
    """What one call did.

    Attributes:
        expired: The matches expired, oldest first.
        more: Further matches past retention were left for the next call (``limit`` reached).
    """

    expired: list[ExpiredMatch] = field(default_factory=list)
    more: bool = False
