"""Metadata store on SQLite and PostgreSQL: migrations, schema, constraints, round trips."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, delete, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.metadata import check, create_engine, current, head, session_maker, upgrade
from polyvision.storage.metadata.migrate import downgrade
from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Device,
    DeviceStatus,
    Match,
    MatchStatus,
    Membership,
    Organization,
    ProvisioningCode,
    Role,
    Team,
    Upload,
    UploadStatus,
    User,
    metadata,
)
from polyvision.storage.metadata.search_index import include_name, is_search_object

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend (sync, so the async postgres fixture can be pulled in)."""
    if request.param == "sqlite":
        # A missing directory: upgrade must create it.
        return f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'metadata.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    # `upgrade` runs its own event loop: give it a thread, as a sync caller would have.
    await asyncio.to_thread(upgrade, database_url)
    return database_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_maker(engine)


async def _run_sync(engine: AsyncEngine, fn: Callable[[Connection], Any]) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(fn)


async def _add(sessions: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    async with sessions() as session:
        session.add_all(rows)
        await session.commit()


async def _org_and_user(sessions: async_sessionmaker[AsyncSession]) -> tuple[Organization, User]:
    org = Organization(name="FC Test", slug=f"fc-{uuid.uuid4().hex[:8]}")
    user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", password_hash="argon2id$x")
    await _add(sessions, org, user)
    return org, user


# --- migrations ------------------------------------------------------------------------


async def test_upgrade_creates_all_tables_and_is_idempotent(database_url: str) -> None:
    assert await asyncio.to_thread(current, database_url) is None

    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)  # already at head: no-op

    assert await asyncio.to_thread(current, database_url) == head() == "0011"
    engine = create_engine(database_url)
    try:
        tables = await _run_sync(engine, lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert {name for name in tables if not is_search_object(name)} == set(metadata.tables) | {
        "alembic_version"
    }
    assert "match_search" in tables


async def test_downgrade_to_base_and_upgrade_again(migrated_url: str) -> None:
    await asyncio.to_thread(downgrade, migrated_url, "base")
    assert await asyncio.to_thread(current, migrated_url) is None
    await asyncio.to_thread(upgrade, migrated_url)
    assert await asyncio.to_thread(current, migrated_url) == head()


async def test_schema_matches_models(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, metadata))

    assert await _run_sync(engine, diff) == []


async def test_check_answers(engine: AsyncEngine) -> None:
    await check(engine)


def test_current_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    assert current(f"sqlite+aiosqlite:///{path}") is None
    assert not path.exists()


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        create_engine("mysql+aiomysql://root@localhost/db")


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'dir' / 'x.db'}")  # driverless URL is fine
    try:
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    finally:
        await engine.dispose()
    assert (journal, fks) == ("wal", 1)


# --- round trips -----------------------------------------------------------------------


async def test_crud_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    org, user = await _org_and_user(sessions)
    membership = Membership(user_id=user.id, organization_id=org.id, role=Role.owner)
    device = Device(organization_id=org.id, name="pitch-cam-1", public_key="k" * 43)
    home = Team(organization_id=org.id, name="Home")
    away = Team(organization_id=org.id, name="Away")
    await _add(sessions, membership, device, home, away)
    code = ProvisioningCode(
        organization_id=org.id,
        code_hash=SHA_A,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
        device_id=device.id,
    )
    match = Match(
        organization_id=org.id,
        title="Home v Away",
        home_team_id=home.id,
        away_team_id=away.id,
        venue="Ground",
        kickoff_at=datetime(2025, 5, 1, 15, 0, tzinfo=UTC),
        device_id=device.id,
    )
    await _add(sessions, code, match)
    asset = Asset(
        organization_id=org.id,
        match_id=match.id,
        kind=AssetKind.recording_left,
        object_key=f"{org.id}/{match.id}/left.mp4",
        size_bytes=12 * 2**30,  # above 2**31: needs BIGINT
        sha256=SHA_A,
    )
    upload = Upload(
        organization_id=org.id,
        match_id=match.id,
        device_id=device.id,
        left_size=5 * 2**30,
        right_size=5 * 2**30 + 1,
        left_sha256=SHA_A,
        right_sha256=SHA_B,
        left_frames=270_000,
        right_frames=270_001,
    )
    await _add(sessions, asset, upload)

    async with sessions() as session:
        got = await session.get(Match, match.id)
        assert got is not None
        assert (got.title, got.home_team_id, got.status, got.revision) == (
            "Home v Away",
            home.id,
            MatchStatus.created,
            0,
        )
        got.status = MatchStatus.ready
        got.duration_s = 5400.5
        got.workflow_id = f"match-{match.id}"
        await session.commit()

    async with sessions() as session:
        got = await session.get(Match, match.id)
        assert got is not None
        assert (got.status, got.duration_s, got.workflow_id) == (
            MatchStatus.ready,
            5400.5,
            f"match-{match.id}",
        )
        assert got.updated_at >= got.created_at
        got_asset = (await session.exec(select(Asset).where(Asset.match_id == match.id))).one()
        assert (got_asset.size_bytes, got_asset.kind) == (12 * 2**30, AssetKind.recording_left)
        got_upload = await session.get(Upload, upload.id)
        assert got_upload is not None
        assert (got_upload.status, got_upload.right_size, got_upload.right_frames) == (
            UploadStatus.created,
            5 * 2**30 + 1,
            270_001,
        )
        got_device = await session.get(Device, device.id)
        assert got_device is not None
        assert (got_device.status, got_device.revoked_at) == (DeviceStatus.active, None)
        got_code = await session.get(ProvisioningCode, code.id)
        assert got_code is not None
        assert got_code.device_id == device.id
        got_user = (await session.exec(select(User).where(User.email == user.email))).one()
        assert got_user.id == user.id

    # Deleting a match removes its assets and uploads in the database itself (ON DELETE).
    async with sessions() as session:
        await session.exec(delete(Match).where(col(Match.id) == match.id))
        await session.commit()
    async with sessions() as session:
        assert (await session.exec(select(Asset))).all() == []
        assert (await session.exec(select(Upload))).all() == []
        assert len((await session.exec(select(Team))).all()) == 2


async def test_enum_roles_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = Organization(name="Roles", slug="roles")
    users = [User(email=f"{role.value}@example.com", password_hash="h") for role in Role]
    await _add(sessions, org, *users)
    await _add(
        sessions,
        *(
            Membership(user_id=user.id, organization_id=org.id, role=role)
            for user, role in zip(users, Role, strict=True)
        ),
    )
    async with sessions() as session:
        rows = (await session.exec(select(Membership))).all()
        stored = (await session.exec(text("SELECT role FROM memberships"))).all()  # type: ignore[call-overload]
    assert sorted(m.role for m in rows) == sorted(Role)
    assert all(isinstance(m.role, Role) for m in rows)
    # The value, not the Python name, is what other readers of the table see.
    assert sorted(r[0] for r in stored) == sorted(role.value for role in Role)


async def test_timestamps_round_trip_as_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    org, _ = await _org_and_user(sessions)
    kickoff = datetime(2025, 5, 1, 17, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    match = Match(organization_id=org.id, title="tz", kickoff_at=kickoff)
    await _add(sessions, match)
    async with sessions() as session:
        got = await session.get(Match, match.id)
        assert got is not None
    assert got.kickoff_at == kickoff
    assert got.kickoff_at is not None and got.kickoff_at.utcoffset() == timedelta(0)
    assert got.kickoff_at.hour == 15
    assert got.created_at.utcoffset() == timedelta(0)


# --- constraints -----------------------------------------------------------------------


async def test_duplicate_email_is_rejected(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _add(sessions, User(email="dup@example.com", password_hash="h"))
    with pytest.raises(IntegrityError):
        await _add(sessions, User(email="dup@example.com", password_hash="h"))


async def test_duplicate_membership_is_rejected(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, user = await _org_and_user(sessions)
    await _add(sessions, Membership(user_id=user.id, organization_id=org.id, role=Role.admin))
    with pytest.raises(IntegrityError):
        await _add(sessions, Membership(user_id=user.id, organization_id=org.id, role=Role.viewer))


async def test_foreign_keys_are_enforced(sessions: async_sessionmaker[AsyncSession]) -> None:
    _, user = await _org_and_user(sessions)
    with pytest.raises(IntegrityError):
        await _add(sessions, Membership(user_id=user.id, organization_id=uuid.uuid4()))
