"""The retention rule, pure: which matches are past their organization's retention."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import polyvision.storage.analytics as analytics
from activities.retention.policy import MatchAge, cutoff, expired_matches, is_expired
from polyvision.storage.metadata.models import (
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MatchStatus,
)
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.schedules import namespace_retention_covers

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _match(
    days_old: float,
    retention_days: int = 30,
    status: MatchStatus = MatchStatus.ready,
    match_id: str = "m",
) -> MatchAge:
    return MatchAge("org", match_id, status, NOW - timedelta(days=days_old), retention_days)


def test_a_match_expires_its_organizations_retention_after_it_was_created() -> None:
    assert not is_expired(_match(29.9), NOW)
    assert not is_expired(_match(30), NOW)  # exactly at the cutoff: kept one more run
    assert is_expired(_match(30.01), NOW)
    # The organization's own retention decides, not a global one.
    assert not is_expired(_match(40, retention_days=90), NOW)
    assert is_expired(_match(91, retention_days=90), NOW)


@pytest.mark.parametrize("status", [MatchStatus.ready, MatchStatus.failed, MatchStatus.cancelled])
def test_finished_matches_of_any_outcome_expire(status: MatchStatus) -> None:
    assert is_expired(_match(31, status=status), NOW)


@pytest.mark.parametrize(
    "status", [MatchStatus.uploading, MatchStatus.processing, MatchStatus.expired]
)
def test_work_in_flight_and_expired_matches_are_left_alone(status: MatchStatus) -> None:
    assert not is_expired(_match(365, status=status), NOW)


def test_expired_matches_are_chosen_oldest_first() -> None:
    matches = [
        _match(40, match_id="b"),
        _match(10, match_id="fresh"),
        _match(50, match_id="a"),
        _match(40, match_id="c", status=MatchStatus.processing),
        _match(45, retention_days=90, match_id="long"),
    ]
    assert [m.match_id for m in expired_matches(matches, NOW)] == ["a", "b"]
    assert expired_matches([], NOW) == []


def test_naive_times_and_empty_retentions_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        expired_matches([_match(40)], NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="at least 1"):
        cutoff(NOW, 0)


def test_the_namespace_keeps_histories_as_long_as_the_longest_retention() -> None:
    assert DEFAULT_RETENTION_DAYS <= MAX_RETENTION_DAYS
    config = load_namespace_config()
    assert namespace_retention_covers(config)
    assert not namespace_retention_covers(
        type(config)(config.name, timedelta(days=MAX_RETENTION_DAYS - 1), ())
    )


def test_the_analytics_ttl_is_a_backstop_no_shorter_than_the_longest_retention() -> None:
    folder = Path(analytics.__file__).parent / "migrations"
    ttls = {
        int(days)
        for path in folder.glob("*.sql")
        for days in re.findall(r"TTL ingested_at \+ INTERVAL (\d+) DAY", path.read_text())
    }
    assert ttls and min(ttls) >= MAX_RETENTION_DAYS
