"""The retention activity against real stores: a file object store, chDB and SQLite.

Exactly the expired match's objects, analytics rows (in every table that has a ``match_id``,
so a table added later without being deleted fails here) and catalog assets go; another
organization's match, a fresh match and one still processing keep everything; a second run
changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.testing import ActivityEnvironment

from activities.retention.activity import RetentionActivities
from activities.retention.contracts import ExpireMatchesInput
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Match,
    MatchStatus,
    Organization,
    Upload,
)
from polyvision.storage.objects import ObjectStore

NOW = datetime.now(UTC)


def match_tables(analytics: AnalyticsStore) -> list[str]:
    """Every stored table of the analytics database with a ``match_id`` column."""
    table = analytics.query_arrow(
        "SELECT t.name AS name FROM system.tables AS t"
        " INNER JOIN system.columns AS c ON c.database = t.database AND c.table = t.name"
        " WHERE t.database = currentDatabase() AND c.name = 'match_id'"
        " AND t.engine LIKE '%MergeTree%' ORDER BY t.name"
    )
    return [str(name) for name in table.column("name").to_pylist()]


def _has_column(analytics: AnalyticsStore, table: str, column: str) -> bool:
    result = analytics.query_arrow(
        "SELECT count() AS n FROM system.columns WHERE database = currentDatabase()"
        " AND table = {t:String} AND name = {c:String}",
        {"t": table, "c": column},
    )
    return bool(result.column("n")[0].as_py())


def rows_of(analytics: AnalyticsStore, match_id: str) -> dict[str, int]:
    """Rows of ``match_id`` per table, tables without any left out."""
    counts = {}
    for table in match_tables(analytics):
        result = analytics.query_arrow(
            f"SELECT count() AS n FROM {table} WHERE match_id = {{m:String}}", {"m": match_id}
        )
        n = int(result.column("n")[0].as_py())
        if n:
            counts[table] = n
    return counts


@dataclass
class Seeded:
    organization_id: str
    match_id: str
    upload_id: str

    @property
    def keys(self) -> list[str]:
        org, match, upload = self.organization_id, self.match_id, self.upload_id
        return [
            f"orgs/{org}/matches/{match}/1/hls/master.m3u8",
            f"orgs/{org}/matches/{match}/2/analyze/heatmaps.json",
            f"orgs/{org}/uploads/{upload}/left.mp4",
            f"orgs/{org}/uploads/{upload}/right.mp4",
        ]


async def _organization(sessions: async_sessionmaker[AsyncSession], retention_days: int) -> str:
    org = Organization(name="FC", slug=f"fc-{uuid.uuid4().hex[:8]}", retention_days=retention_days)
    async with sessions() as session:
        session.add(org)
        await session.commit()
    return str(org.id)


async def _seed(
    sessions: async_sessionmaker[AsyncSession],
    objects: ObjectStore,
    analytics: AnalyticsStore,
    organization_id: str,
    days_old: float,
    status: MatchStatus = MatchStatus.ready,
) -> Seeded:
    org = uuid.UUID(organization_id)
    match = Match(
        organization_id=org,
        title="Derby",
        status=status,
        revision=2,
        published_revision=2,
        created_at=NOW - timedelta(days=days_old),
    )
    upload = Upload(
        organization_id=org,
        match_id=match.id,
        left_size=1,
        right_size=1,
        left_sha256="0" * 64,
        right_sha256="0" * 64,
        left_frames=1,
        right_frames=1,
    )
    seeded = Seeded(organization_id, str(match.id), str(upload.id))
    upload.left_key, upload.right_key = seeded.keys[2], seeded.keys[3]
    async with sessions() as session:
        session.add(match)
        await session.flush()
        session.add(upload)
        session.add(
            Asset(
                organization_id=org,
                match_id=match.id,
                kind=AssetKind.hls,
                object_key=seeded.keys[0],
                size_bytes=1,
            )
        )
        await session.commit()
    for key in seeded.keys:
        await objects.put(key, b"x")
    for table in match_tables(analytics):
        # Every other column takes its default (a frame count of one, so a summing table
        # keeps the row); the views fill their targets too.
        frames = _has_column(analytics, table, "frames")
        analytics.execute(
            f"INSERT INTO {table} (organization_id, match_id, revision"
            + (", frames" if frames else "")
            + ") VALUES ({o:String}, {m:String}, {r:UInt32}"
            + (", 1" if frames else "")
            + ")",
            {"o": organization_id, "m": seeded.match_id, "r": 2},
        )
    return seeded


async def _present(objects: ObjectStore, seeded: Seeded) -> list[bool]:
    present = []
    for key in seeded.keys:
        try:
            await objects.stat(key)
            present.append(True)
        except Exception:
            present.append(False)
    return present


async def _catalog(
    sessions: async_sessionmaker[AsyncSession], seeded: Seeded
) -> tuple[MatchStatus, int | None, int]:
    match_id = uuid.UUID(seeded.match_id)
    async with sessions() as session:
        match = await session.get(Match, match_id)
        assert match is not None
        assets = (await session.exec(select(Asset).where(col(Asset.match_id) == match_id))).all()
        return match.status, match.published_revision, len(assets)


async def test_exactly_the_expired_match_loses_its_objects_rows_and_assets(
    objects: ObjectStore,
    analytics: AnalyticsStore,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    short = await _organization(sessions, retention_days=30)
    long = await _organization(sessions, retention_days=90)
    old = await _seed(sessions, objects, analytics, short, days_old=40)
    fresh = await _seed(sessions, objects, analytics, short, days_old=10)
    busy = await _seed(sessions, objects, analytics, short, 40, MatchStatus.processing)
    other = await _seed(sessions, objects, analytics, long, days_old=40)
    tables = match_tables(analytics)
    # The figure tables and the views' targets are among them, not only the chunk tables.
    assert {"detections", "match_player_figures", "match_team_heatmaps"} <= set(tables)
    assert set(rows_of(analytics, old.match_id)) == set(tables)

    acts = RetentionActivities(objects, analytics, sessions)
    output = await ActivityEnvironment().run(acts.expire_matches, ExpireMatchesInput(now=NOW))

    assert [(m.organization_id, m.match_id) for m in output.expired] == [(short, old.match_id)]
    assert output.expired[0].objects_deleted == len(old.keys)
    assert not output.more
    assert await _present(objects, old) == [False] * len(old.keys)
    assert rows_of(analytics, old.match_id) == {}
    assert await _catalog(sessions, old) == (MatchStatus.expired, None, 0)
    for kept in (fresh, busy, other):
        assert await _present(objects, kept) == [True] * len(kept.keys)
        assert set(rows_of(analytics, kept.match_id)) == set(tables)
        status, published, assets = await _catalog(sessions, kept)
        assert (published, assets) == (2, 1)
        assert status in (MatchStatus.ready, MatchStatus.processing)

    # A second run (a retry, the next day's schedule) finds nothing and changes nothing.
    again = await ActivityEnvironment().run(acts.expire_matches, ExpireMatchesInput(now=NOW))
    assert again.expired == [] and not again.more
    assert await _catalog(sessions, old) == (MatchStatus.expired, None, 0)
    for kept in (fresh, busy, other):
        assert await _present(objects, kept) == [True] * len(kept.keys)


async def test_a_limit_leaves_the_rest_for_the_next_call(
    objects: ObjectStore,
    analytics: AnalyticsStore,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = await _organization(sessions, retention_days=7)
    older = await _seed(sessions, objects, analytics, org, days_old=20)
    newer = await _seed(sessions, objects, analytics, org, days_old=10)
    acts = RetentionActivities(objects, analytics, sessions)
    env = ActivityEnvironment()

    first = await env.run(acts.expire_matches, ExpireMatchesInput(now=NOW, limit=1))
    assert [m.match_id for m in first.expired] == [older.match_id] and first.more
    second = await env.run(acts.expire_matches, ExpireMatchesInput(now=NOW, limit=1))
    assert [m.match_id for m in second.expired] == [newer.match_id] and not second.more


async def test_without_a_catalog_the_activity_fails_for_good(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    from temporalio.exceptions import ApplicationError

    acts = RetentionActivities(objects, analytics, None)
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(acts.expire_matches, ExpireMatchesInput(now=NOW))
    assert failure.value.non_retryable
