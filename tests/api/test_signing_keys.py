"""The access-token key ring shared by API replicas through the metadata database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.app import create_app
from api.security import MAX_TOKEN_LIFETIME, AuthState
from api.security.signing_keys import (
    KeyRing,
    KeyRingSecretError,
    KeyStore,
    encryption_key,
    generate_key,
)
from polyvision.settings import Settings
from polyvision.storage.metadata import create_engine, session_maker, upgrade
from polyvision.storage.metadata.models import SigningKey

PASSWORD = "correct horse battery"


def _auth(app: FastAPI) -> AuthState:
    state: AuthState = app.state.auth
    return state


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _replica_settings(settings: Settings, data_dir: Path) -> Settings:
    """Another replica: its own data directory, the same database, secret and Temporal.

    The analytics path is shared too: chDB hosts one database path per process.
    """
    return Settings(
        data_dir=data_dir,
        analytics_url=settings.analytics_url,
        temporal_address=settings.temporal_address,
        temporal_namespace=settings.temporal_namespace,
        api_public_url=settings.api_public_url,
        database_url=settings.database_url,
        secret_key=settings.secret_key,
    )


@pytest_asyncio.fixture
async def replicas(
    api_settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API apps on one database, both lifespans running, as two pods would be."""
    app_a = create_app(api_settings)
    app_b = create_app(_replica_settings(api_settings, tmp_path / "pv-b"))
    async with (
        app_a.router.lifespan_context(app_a),
        app_b.router.lifespan_context(app_b),
        _client(app_a) as a,
        _client(app_b) as b,
    ):
        yield a, b


def _ring(client: httpx.AsyncClient) -> KeyRing:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return _auth(app).keys


async def _access_token(http: httpx.AsyncClient, email: str = "ada@example.com") -> str:
    body = {"email": email, "password": PASSWORD}
    registered = await http.post("/auth/register", json=body)
    assert registered.status_code in (201, 409), registered.text  # 409: registered already
    response = await http.post("/auth/login", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _me(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def _jwks(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


def _kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_replicas_share_one_key(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    assert _ring(a).current.kid == _ring(b).current.kid
    token = await _access_token(a)
    assert await _me(b, token) == 200
    assert await _me(a, token) == 200
    assert await _jwks(a) == await _jwks(b)
    assert [key["kid"] for key in await _jwks(b)] == [_kid(token)]


async def test_a_rotation_on_one_replica_reaches_the_other(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    _ring(b).reload_interval_s = 3600  # only the unknown kid may make b reload here
    old_token = await _access_token(a)
    old_kid = _kid(old_token)
    new_kid = (await _ring(a).rotate()).kid
    new_token = await _access_token(a)
    assert _kid(new_token) == new_kid != old_kid
    assert _ring(b).current.kid == old_kid  # b has not reloaded yet

    # The unknown kid makes b reload the ring, and b then knows both keys.
    assert await _me(b, new_token) == 200
    assert await _me(b, old_token) == 200
    assert _ring(b).current.kid == new_kid
    assert [key["kid"] for key in await _jwks(b)] == [new_kid, old_kid]
    assert await _jwks(a) == await _jwks(b)

    # Until every token of the old key has expired: then b refuses it.
    later = datetime.now(UTC) + MAX_TOKEN_LIFETIME + timedelta(seconds=1)
    _ring(b).clock = lambda: later
    assert _ring(b).prune()
    assert await _me(b, old_token) == 401
    assert await _me(b, new_token) == 200


async def test_a_stale_replica_reloads_on_its_next_request(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    # Far from the interval however slow this machine is, until the test moves it.
    _ring(b).reload_interval_s = 3600
    old_kid = _ring(b).current.kid
    new_kid = (await _ring(a).rotate()).kid
    # Within the reload interval b still signs with, and publishes, what it has in memory.
    assert _kid(await _access_token(b)) == old_kid
    assert [key["kid"] for key in await _jwks(b)] == [old_kid]
    # Once its copy is older than the interval, the next request reloads it first.
    _ring(b).reload_interval_s = 0
    assert [key["kid"] for key in await _jwks(b)] == [new_kid, old_kid]
    assert _kid(await _access_token(b)) == new_kid


async def test_unknown_kid_reloads_are_rate_limited(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    # Windows far longer than this test takes on any machine, until the test moves them.
    _ring(b).reload_interval_s = 3600
    _ring(b).unknown_kid_reload_s = 3600
    user_token = await _access_token(a)
    assert await _me(b, user_token) == 200
    # A forged kid spends b's reload; a real new key right after it waits for the next window.
    attacker = generate_key()
    claims = jwt.decode(user_token, options={"verify_signature": False})
    forged = jwt.encode(
        claims, attacker.private_key, "RS256", {"kid": attacker.kid, "typ": "at+jwt"}
    )
    assert await _me(b, forged) == 401
    await _ring(a).rotate()
    new_token = await _access_token(a)
    assert await _me(b, new_token) == 401
    _ring(b).unknown_kid_reload_s = 0
    assert await _me(b, new_token) == 200
    assert await _me(b, forged) == 401  # reloading never makes a foreign key ours


async def _sessions(settings: Settings) -> tuple[Any, async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    return engine, session_maker(engine)


async def test_private_keys_are_encrypted_at_rest(api_settings: Settings) -> None:
    engine, sessions = await _sessions(api_settings)
    try:
        ring = await KeyRing.load_or_create(
            sessions, api_settings.secret, max_token_lifetime=MAX_TOKEN_LIFETIME
        )
        await ring.rotate()
        async with sessions() as session:
            rows = (await session.exec(select(SigningKey))).all()
    finally:
        await engine.dispose()
    assert sorted(row.kid for row in rows) == sorted(key.kid for key in ring.keys)
    for row in rows:
        assert "PRIVATE KEY" not in row.private_key and "-----BEGIN" not in row.private_key
        pem = Fernet(encryption_key(api_settings.secret)).decrypt(row.private_key.encode())
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")


async def test_another_secret_cannot_decrypt_the_keys(api_settings: Settings) -> None:
    engine, sessions = await _sessions(api_settings)
    try:
        await KeyRing.load_or_create(
            sessions, api_settings.secret, max_token_lifetime=MAX_TOKEN_LIFETIME
        )
        with pytest.raises(KeyRingSecretError, match="PV_SECRET_KEY must be the same"):
            await KeyRing.load_or_create(
                sessions, b"another-secret-" * 3, max_token_lifetime=MAX_TOKEN_LIFETIME
            )
    finally:
        await engine.dispose()


async def test_concurrent_first_start_ends_with_one_current_key(api_settings: Settings) -> None:
    engine, sessions = await _sessions(api_settings)
    try:
        rings = await asyncio.gather(
            *(
                KeyRing.load_or_create(
                    sessions, api_settings.secret, max_token_lifetime=MAX_TOKEN_LIFETIME
                )
                for _ in range(4)
            )
        )
        # A replica that lost the race cannot store its own first key next to the winner's.
        late = await KeyStore(sessions, api_settings.secret).create_first(generate_key())
        async with sessions() as session:
            rows = (await session.exec(select(SigningKey))).all()
    finally:
        await engine.dispose()
    assert late is False
    assert len({ring.current.kid for ring in rings}) == 1
    assert [row.kid for row in rows] == [rings[0].current.kid]
    assert rows[0].is_current is True and rows[0].retired_at is None


async def test_keys_rotate_command_prints_the_new_kid(tmp_path: Path) -> None:
    data_dir = tmp_path / "pv"
    database_url = f"sqlite+aiosqlite:///{data_dir / 'metadata.db'}"
    await asyncio.to_thread(upgrade, database_url)

    def rotate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "programs.cli", "keys", "rotate"],
            env={**os.environ, "PV_DATA_DIR": str(data_dir), "PV_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = await asyncio.to_thread(rotate)
    assert first.returncode == 0, first.stderr
    second = await asyncio.to_thread(rotate)
    assert second.returncode == 0, second.stderr
    kids = [
        completed.stdout.strip().removeprefix("new signing key ") for completed in (first, second)
    ]
    assert first.stdout == f"new signing key {kids[0]}\n"
    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as session:
            rows = (await session.exec(select(SigningKey))).all()
    finally:
        await engine.dispose()
    current = [row.kid for row in rows if row.is_current]
    assert current == [kids[1]] and kids[0] != kids[1]
    assert kids[0] in {row.kid for row in rows if row.retired_at is not None}
