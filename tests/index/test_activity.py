"""The index activity: the summary, the catalog row of the right tenant marked ready, and the
published package registered as its assets."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.testing import ActivityEnvironment

from activities.index.activity import IndexActivities
from activities.index.contracts import IndexInput
from polyvision.storage.metadata import create_engine, session_maker, upgrade
from polyvision.storage.metadata.models import Asset, Match, MatchStatus, Organization
from polyvision.storage.objects import ObjectStore, open_object_store


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest_asyncio.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    await asyncio.to_thread(upgrade, url)  # upgrade runs its own event loop
    engine = create_engine(url)
    try:
        yield session_maker(engine)
    finally:
        await engine.dispose()


async def _org_with_match(
    sessions: async_sessionmaker[AsyncSession], revision: int = 0
) -> tuple[Organization, Match]:
    org = Organization(name="FC", slug=f"fc-{uuid.uuid4().hex[:8]}")
    match = Match(
        organization_id=org.id, title="Derby", status=MatchStatus.processing, revision=revision
    )
    async with sessions() as session:
        session.add(org)
        await session.flush()  # the match's foreign key needs the organization first
        session.add(match)
        await session.commit()
    return org, match


async def _match(sessions: async_sessionmaker[AsyncSession], match_id: uuid.UUID) -> Match:
    async with sessions() as session:
        match = await session.get(Match, match_id)
        assert match is not None
        return match


def _input(org: object, match: object, revision: int = 1) -> IndexInput:
    return IndexInput(
        organization_id=str(org),
        match_id=str(match),
        revision=revision,
        frames=2250,
        fps=25.0,
        chunks=9,
        detections_persons=40_000,
        detections_balls=1_800,
        tracks=31,
        total_distance_m=7_654.5,
        hls_master_key=f"orgs/{org}/matches/{match}/{revision}/hls/master.m3u8",
        heatmaps_key=f"orgs/{org}/matches/{match}/{revision}/analyze/heatmaps.json",
    )


async def test_writes_the_summary_and_marks_the_tenants_match_ready(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, match = await _org_with_match(sessions)
    other_org, _ = await _org_with_match(sessions)
    acts = IndexActivities(objects, sessions)

    # Another tenant naming this match id touches nothing (its summary lives under its prefix).
    foreign = await ActivityEnvironment().run(acts.index, _input(other_org.id, match.id))
    assert not foreign.catalog_updated
    untouched = await _match(sessions, match.id)
    assert (untouched.status, untouched.duration_s, untouched.revision) == (
        MatchStatus.processing,
        None,
        0,
    )

    output = await ActivityEnvironment().run(acts.index, _input(org.id, match.id))
    assert output.catalog_updated
    assert output.summary_key == f"orgs/{org.id}/matches/{match.id}/1/index/summary.json"
    ready = await _match(sessions, match.id)
    assert (ready.status, ready.duration_s, ready.revision) == (MatchStatus.ready, 90.0, 1)
    assert ready.published_revision == 1

    summary = json.loads(await objects.get(output.summary_key))
    assert summary["duration_s"] == 90.0
    assert (summary["frames"], summary["chunks"], summary["tracks"]) == (2250, 9, 31)
    assert (summary["detections_persons"], summary["detections_balls"]) == (40_000, 1_800)
    assert summary["total_distance_m"] == 7_654.5
    assert summary["keys"]["hls_master"].endswith("/1/hls/master.m3u8")
    assert summary["keys"]["heatmaps"].endswith("/1/analyze/heatmaps.json")
    assert summary["keys"]["summary"] == output.summary_key


async def test_the_manifest_answers_a_second_call(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, match = await _org_with_match(sessions)
    acts = IndexActivities(objects, sessions)
    index_input = _input(org.id, match.id)
    first = await ActivityEnvironment().run(acts.index, index_input)
    summary = await objects.get(first.summary_key)
    await objects.delete(first.summary_key)  # a redone call would write it again
    again = await ActivityEnvironment().run(acts.index, index_input)
    assert again == first
    assert not await objects.exists(first.summary_key)

    changed = await ActivityEnvironment().run(
        acts.index, dataclasses.replace(index_input, tracks=32)
    )
    assert changed.catalog_updated
    assert json.loads(await objects.get(changed.summary_key))["tracks"] == 32
    assert summary != await objects.get(changed.summary_key)


async def test_no_catalog_row_or_no_catalog_still_writes_the_summary(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, _ = await _org_with_match(sessions)
    missing = await ActivityEnvironment().run(
        IndexActivities(objects, sessions).index, _input(org.id, uuid.uuid4())
    )
    assert not missing.catalog_updated and await objects.exists(missing.summary_key)

    not_uuids = await ActivityEnvironment().run(
        IndexActivities(objects, sessions).index, _input("o1", "m1")
    )
    assert not not_uuids.catalog_updated and await objects.exists(not_uuids.summary_key)

    no_catalog = await ActivityEnvironment().run(
        IndexActivities(objects, None).index, _input(org.id, uuid.uuid4())
    )
    assert not no_catalog.catalog_updated and await objects.exists(no_catalog.summary_key)


async def test_an_older_revision_never_overwrites_a_newer_one(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, match = await _org_with_match(sessions, revision=3)
    output = await ActivityEnvironment().run(
        IndexActivities(objects, sessions).index, _input(org.id, match.id, revision=2)
    )
    assert not output.catalog_updated
    row = await _match(sessions, match.id)
    assert (row.status, row.revision) == (MatchStatus.processing, 3)


async def _assets(sessions: async_sessionmaker[AsyncSession], match_id: uuid.UUID) -> list[Asset]:
    async with sessions() as session:
        rows = await session.exec(
            select(Asset).where(col(Asset.match_id) == match_id).order_by(col(Asset.object_key))
        )
        return list(rows.all())


async def test_the_published_package_is_registered_as_the_matchs_assets(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, match = await _org_with_match(sessions)
    index_input = _input(org.id, match.id)
    hls = index_input.hls_master_key.removesuffix("master.m3u8")
    published = {
        "master.m3u8": ("hls", "application/vnd.apple.mpegurl"),
        "manifest.mpd": ("dash", "application/dash+xml"),
        "thumbnails.vtt": ("thumbnail", "text/vtt"),
        "thumbnails/sprite-000.jpg": ("thumbnail", "image/jpeg"),
        "thumbnails/sprite-001.jpg": ("thumbnail", "image/jpeg"),
        "poster.jpg": ("thumbnail", "image/jpeg"),
        "panorama/master.m3u8": ("panorama", "application/vnd.apple.mpegurl"),
        "panorama/manifest.mpd": ("panorama", "application/dash+xml"),
    }
    for name, (_, content_type) in published.items():
        await objects.put(hls + name, name.encode(), content_type=content_type)
    await objects.put(hls + "1080p/seg_00000.m4s", b"segment")  # named by manifests: not listed
    await objects.put(index_input.heatmaps_key, b"{}", content_type="application/json")

    # Another tenant's run registers nothing for this match.
    foreign = await ActivityEnvironment().run(
        IndexActivities(objects, sessions).index, _input(uuid.uuid4(), match.id)
    )
    assert foreign.assets == 0 and await _assets(sessions, match.id) == []

    output = await ActivityEnvironment().run(IndexActivities(objects, sessions).index, index_input)
    assert output.catalog_updated and output.assets == len(published) + 1
    rows = await _assets(sessions, match.id)
    expected = {hls + name: kind for name, (kind, _) in published.items()}
    expected[index_input.heatmaps_key] = "heatmap"
    assert {row.object_key: row.kind.value for row in rows} == expected
    for row in rows:
        data = await objects.get(row.object_key)
        assert (row.size_bytes, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert row.organization_id == org.id
    assert {r.content_type for r in rows if r.object_key.endswith(".mpd")} == {
        "application/dash+xml"
    }
    summary = json.loads(await objects.get(output.summary_key))
    assert summary["keys"]["dash_manifest"] == hls + "manifest.mpd"
    assert summary["keys"]["poster"] == hls + "poster.jpg"
    assert summary["keys"]["panorama_master"] == hls + "panorama/master.m3u8"

    # Registered again (a changed input): brought up to date, never duplicated.
    await objects.put(hls + "poster.jpg", b"a new poster", content_type="image/jpeg")
    again = await ActivityEnvironment().run(
        IndexActivities(objects, sessions).index, dataclasses.replace(index_input, tracks=5)
    )
    assert again.assets == output.assets
    rows = await _assets(sessions, match.id)
    assert len(rows) == len(expected)
    poster = next(row for row in rows if row.object_key.endswith("poster.jpg"))
    assert poster.size_bytes == len(b"a new poster")


async def test_an_older_package_registers_what_it_has(
    objects: ObjectStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org, match = await _org_with_match(sessions)
    index_input = _input(org.id, match.id)
    await objects.put(index_input.hls_master_key, b"#EXTM3U\n")
    output = await ActivityEnvironment().run(IndexActivities(objects, sessions).index, index_input)
    assert output.assets == 1
    assert [row.kind.value for row in await _assets(sessions, match.id)] == ["hls"]
    summary = json.loads(await objects.get(output.summary_key))
    assert set(summary["keys"]) == {"summary", "hls_master", "heatmaps"}
