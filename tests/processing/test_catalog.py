"""The catalog rows of processing: the organization `polyvision process` files under, the match
row it registers, and the reconciliation with a run's end. SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.metadata.models import Asset, AssetKind, Match, MatchStatus, Organization
from processing import ProcessingState
from processing.catalog import (
    LOCAL_ORGANIZATION,
    Recording,
    mark_failed,
    match_workflow_id,
    organization_for,
    reconciled_status,
    register_match,
)

Sessions = async_sessionmaker[AsyncSession]


def recordings(prefix: str, size: int = 10) -> list[Recording]:
    return [
        Recording(AssetKind.recording_left, f"{prefix}/left.mp4", size, "a" * 64, "video/mp4"),
        Recording(AssetKind.recording_right, f"{prefix}/right.mp4", size, "b" * 64, "video/mp4"),
    ]


async def test_a_slug_names_one_organization_created_once(sessions: Sessions) -> None:
    async with sessions() as session:
        first = await organization_for(session, LOCAL_ORGANIZATION)
    async with sessions() as session:
        again = await organization_for(session, "local")
        by_id = await organization_for(session, str(first.id))
        count = len((await session.exec(select(Organization))).all())
    assert (first.slug, first.name) == ("local", "local")
    assert again.id == by_id.id == first.id
    assert count == 1


async def test_an_unknown_id_or_a_bad_slug_is_refused(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(LookupError, match="no organization"):
            await organization_for(session, str(uuid.uuid4()))
        for bad in ("Not A Slug", "-edge", "x" * 65, ""):
            with pytest.raises(ValueError, match="neither an organization id nor a slug"):
                await organization_for(session, bad)
        assert (await session.exec(select(Organization))).all() == []


async def test_register_leaves_the_row_a_completed_upload_leaves(sessions: Sessions) -> None:
    match_id = uuid.uuid4()
    async with sessions() as session:
        org = await organization_for(session, "club")
        match = await register_match(
            session,
            organization_id=org.id,
            match_id=match_id,
            title="left.mp4 + right.mp4",
            revision=1,
            recordings=recordings(f"orgs/{org.id}/uploads/u1"),
        )
    assert (match.id, match.organization_id, match.title) == (
        match_id,
        org.id,
        "left.mp4 + right.mp4",
    )
    assert (match.status, match.revision, match.workflow_id) == (
        MatchStatus.processing,
        1,
        f"match-{match_id}",
    )
    assert match_workflow_id(match) == f"match-{match_id}"

    # Processed again from a new upload: the next revision, the title kept, new assets.
    async with sessions() as session:
        again = await register_match(
            session,
            organization_id=org.id,
            match_id=match_id,
            title="ignored",
            revision=2,
            recordings=recordings(f"orgs/{org.id}/uploads/u2", size=20),
        )
        assets = (await session.exec(select(Asset).where(col(Asset.match_id) == match_id))).all()
    assert (again.title, again.revision, again.status) == (
        "left.mp4 + right.mp4",
        2,
        MatchStatus.processing,
    )
    assert sorted((a.size_bytes, a.kind.value, a.sha256) for a in assets) == [
        (10, "recording_left", "a" * 64),
        (10, "recording_right", "b" * 64),
        (20, "recording_left", "a" * 64),
        (20, "recording_right", "b" * 64),
    ]
    assert {a.organization_id for a in assets} == {org.id}

    async with sessions() as session:
        other = await organization_for(session, "rivals")
        with pytest.raises(LookupError, match="another organization"):
            await register_match(
                session,
                organization_id=other.id,
                match_id=match_id,
                title="theirs",
                revision=1,
                recordings=[],
            )

    async with sessions() as session:
        await mark_failed(session, match_id)
        failed = await session.get(Match, match_id)
    assert failed is not None and failed.status is MatchStatus.failed


def test_only_a_match_still_processing_is_reconciled() -> None:
    assert reconciled_status(MatchStatus.processing, ProcessingState.failed) == MatchStatus.failed
    assert (
        reconciled_status(MatchStatus.processing, ProcessingState.terminated) == MatchStatus.failed
    )
    assert (
        reconciled_status(MatchStatus.processing, ProcessingState.cancelled)
        == MatchStatus.cancelled
    )
    assert reconciled_status(MatchStatus.processing, ProcessingState.completed) is None
    assert reconciled_status(MatchStatus.ready, ProcessingState.failed) is None


def test_a_match_without_a_recorded_workflow_gets_the_id_its_start_would_use() -> None:
    match = Match(organization_id=uuid.uuid4(), title="t")
    assert match_workflow_id(match) == f"match-{match.id}"
    match.workflow_id = "match-elsewhere"
    assert match_workflow_id(match) == "match-elsewhere"
