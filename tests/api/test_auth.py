"""Auth end to end: register, login, refresh rotation and reuse, logout, token attacks, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlmodel import col, select

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from api.routes.auth import REGISTRATION_ACCEPTED
from api.security import AUDIENCE, AuthState, create_auth_state
from api.security.passwords import Passwords
from api.security.signing_keys import KeyRing, generate_key
from api.security.sliding_window import LoginLimiter, SlidingWindowLimiter
from polyvision.settings import Settings
from polyvision.storage.metadata.models import RefreshToken, SigningKey, User

PASSWORD = "correct horse battery"
GOOD = {"email": "ada@example.com", "password": PASSWORD}
ISSUER = "http://testserver"


@pytest_asyncio.fixture
async def auth_app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings)
    async with application.router.lifespan_context(application):
        # Replaces the lifespan's auth state: cheap Argon2id parameters keep the suite fast
        # (production uses argon2-cffi's defaults) and small limits keep the limiter tests short.
        application.state.auth = await create_auth_state(
            api_settings,
            application.state.sessions,
            passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)),
            limiter=LoginLimiter(per_account_and_address=3, per_address=5, window_s=60),
        )
        yield application


def _client(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest_asyncio.fixture
async def http(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(auth_app) as client:
        yield client


def _auth(app: FastAPI) -> AuthState:
    state: AuthState = app.state.auth
    return state


async def _register(
    http: httpx.AsyncClient, email: str = "Ada@Example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = await http.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body == REGISTRATION_ACCEPTED.model_dump()
    return body


async def _user_id(app: FastAPI, email: str = "ada@example.com") -> str:
    async with app.state.sessions() as session:
        user = (await session.exec(select(User).where(col(User.email) == email))).one()
    return str(user.id)


async def _login(http: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    response = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def _assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# --- happy path --------------------------------------------------------------------------


async def test_register_login_me_refresh_logout(auth_app: FastAPI, http: httpx.AsyncClient) -> None:
    accepted = await _register(http)
    assert "password_hash" not in accepted and "password" not in accepted
    user = {"id": await _user_id(auth_app)}

    tokens = await _login(http, "ADA@example.com ")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    me = await _me(http, tokens["access_token"])
    assert me.status_code == 200
    assert me.json() == {"id": user["id"], "email": "ada@example.com", "email_verified": False}

    refreshed = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.headers["cache-control"] == "no-store"
    pair = refreshed.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert (await _me(http, pair["access_token"])).status_code == 200

    logout = await http.post("/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert logout.status_code == 204
    again = await http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    _assert_invalid_token(again)


async def test_access_token_claims_and_header(auth_app: FastAPI, http: httpx.AsyncClient) -> None:
    await _register(http)
    user = {"id": await _user_id(auth_app)}
    token = (await _login(http))["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": _auth(auth_app).keys.current.kid, "typ": "at+jwt"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "exp", "iat", "nbf", "jti"}
    assert claims["sub"] == user["id"] and claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 900


async def test_refresh_tokens_are_stored_hashed(auth_app: FastAPI, http: httpx.AsyncClient) -> None:
    await _register(http)
    refresh_token = (await _login(http))["refresh_token"]
    async with auth_app.state.sessions() as session:
        rows = (await session.exec(select(RefreshToken))).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(refresh_token.encode()).hexdigest()]
    assert rows[0].used_at is None and rows[0].revoked_at is None


# --- registration and login errors -------------------------------------------------------


async def test_registering_a_registered_address_answers_as_a_new_one(
    auth_app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registration must not tell which addresses have accounts: not by status, body or
    # headers, nor by the work it does (both paths hash the password once).
    hashed: list[str] = []
    passwords = _auth(auth_app).passwords
    hash_password = passwords.hash

    async def counting(password: str) -> str:
        hashed.append(password)
        return await hash_password(password)

    monkeypatch.setattr(passwords, "hash", counting)
    new = await http.post("/auth/register", json={"email": "ADA@example.com", "password": PASSWORD})
    again = await http.post(
        "/auth/register", json={"email": "ada@example.com", "password": "another passphrase"}
    )
    assert new.status_code == again.status_code == 201
    assert new.json() == again.json() == REGISTRATION_ACCEPTED.model_dump()
    assert new.headers["content-type"] == again.headers["content-type"]
    assert new.headers["content-length"] == again.headers["content-length"]
    assert hashed == [PASSWORD, "another passphrase"]
    # The first registration's password still logs in; the second changed nothing.
    await _login(http)
    wrong = {"email": "ada@example.com", "password": "another passphrase"}
    assert (await http.post("/auth/login", json=wrong)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "bob@example.com", "password": "short"},
        {"email": "bob@example.com", "password": "123456789"},
        {"email": "not-an-email", "password": PASSWORD},
    ],
)
async def test_weak_password_or_bad_email_is_422(
    http: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await http.post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_wrong_password_and_unknown_email_answer_the_same(http: httpx.AsyncClient) -> None:
    await _register(http)
    wrong = await http.post("/auth/login", json={"email": "ada@example.com", "password": "x" * 12})
    unknown = await http.post(
        "/auth/login", json={"email": "eve@example.com", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert wrong.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_passwords_rehash_when_parameters_change() -> None:
    weak = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1))
    old_hash = await weak.hash(PASSWORD)
    assert old_hash.startswith("$argon2id$")
    ok, new_hash = await stronger.verify(old_hash, PASSWORD)
    assert ok and new_hash is not None and "t=2" in new_hash
    assert await stronger.verify(new_hash, PASSWORD) == (True, None)
    assert await stronger.verify(new_hash, "wrong password") == (False, None)
    assert await stronger.verify(None, PASSWORD) == (False, None)


async def test_login_is_limited_per_account_and_address(
    auth_app: FastAPI, http: httpx.AsyncClient
) -> None:
    await _register(http)
    await _register(http, "bob@example.com")
    bad = {"email": "ada@example.com", "password": "wrong password"}
    for _ in range(3):
        assert (await http.post("/auth/login", json=bad)).status_code == 401
    limited = await http.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert limited.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # The guesser's address is refused for this account; other accounts are not.
    await _login(http, "bob@example.com")


async def test_an_attackers_failures_do_not_lock_the_owner_out(auth_app: FastAPI) -> None:
    # Anyone who knows the owner's address can fail logins for it; the owner, from their own
    # address, still logs in (the probe: one lockout refused the owner from every address).
    owner_address, attacker_address = "192.0.2.10", "203.0.113.66"
    async with _client(auth_app, owner_address) as owner:
        await _register(owner)
    bad = {"email": "ada@example.com", "password": "wrong password"}
    async with _client(auth_app, attacker_address) as attacker:
        codes = [(await attacker.post("/auth/login", json=bad)).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
    async with _client(auth_app, owner_address) as owner:
        await _login(owner)


async def test_guessing_from_many_addresses_is_capped_except_from_known_ones(
    auth_app: FastAPI,
) -> None:
    now = [0.0]
    limiter = LoginLimiter(
        per_account_and_address=3, per_address=5, per_account=6, clock=lambda: now[0]
    )
    _auth(auth_app).limiter = limiter
    async with _client(auth_app, "192.0.2.10") as owner:
        await _register(owner)
        await _login(owner)  # the owner's address becomes a known one
    bad = {"email": "ada@example.com", "password": "wrong password"}
    for i in range(6):  # a botnet: two guesses from each of three addresses
        async with _client(auth_app, f"203.0.113.{i // 2}") as bot:
            assert (await bot.post("/auth/login", json=bad)).status_code == 401
    async with _client(auth_app, "203.0.113.99") as fresh_bot:
        assert (await fresh_bot.post("/auth/login", json=bad)).status_code == 429
    async with _client(auth_app, "192.0.2.10") as owner:
        await _login(owner)
    # Another address of the owner's waits out the window like any stranger.
    async with _client(auth_app, "198.51.100.4") as travelling:
        good = {"email": "ada@example.com", "password": PASSWORD}
        assert (await travelling.post("/auth/login", json=good)).status_code == 429
        now[0] += 901
        await _login(travelling)


def test_login_limiter_forgets_an_account_after_a_password_reset() -> None:
    limiter = LoginLimiter(per_account_and_address=2, per_address=10, per_account=3)
    for address in ("a", "a", "b"):
        limiter.failed("ada@example.com", address)
    assert limiter.retry_after("ada@example.com", "a") is not None
    assert limiter.retry_after("ada@example.com", "c") is not None  # the account-wide cap
    limiter.forgive("ada@example.com")
    assert limiter.retry_after("ada@example.com", "a") is None
    assert limiter.retry_after("ada@example.com", "c") is None


async def test_login_is_limited_per_address(auth_app: FastAPI, http: httpx.AsyncClient) -> None:
    await _register(http)
    for i in range(5):
        body = {"email": f"user{i}@example.com", "password": "wrong password"}
        assert (await http.post("/auth/login", json=body)).status_code == 401
    limited = await http.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    async with _client(auth_app, "198.51.100.9") as elsewhere:
        await _login(elsewhere)


def test_sliding_window_forgets_old_hits() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, 10.0, max_keys=2, clock=lambda: now[0])
    limiter.hit("a")
    now[0] = 5.0
    limiter.hit("a")
    assert limiter.retry_after("a") == 5
    now[0] = 10.5
    assert limiter.retry_after("a") is None
    limiter.hit("b")
    limiter.hit("c")  # evicts the least recently used key
    assert len(limiter._hits) == 2


# --- token attacks -----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(app: FastAPI, claims: dict[str, Any], **header: Any) -> str:
    key = _auth(app).keys.current
    headers = {"kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)


async def test_well_formed_forged_token_is_accepted_as_a_control(
    auth_app: FastAPI, http: httpx.AsyncClient
) -> None:
    await _register(http)
    user = {"id": await _user_id(auth_app)}
    assert (await _me(http, _sign(auth_app, _claims(user["id"])))).status_code == 200


async def test_missing_or_malformed_authorization(http: httpx.AsyncClient) -> None:
    missing = await http.get("/auth/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    basic = await http.get("/auth/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401
    _assert_invalid_token(await _me(http, "not.a.jwt"))


ATTACKS = [
    "alg_none",
    "hs256_with_public_key",
    "unknown_kid",
    "injected_kid",
    "no_kid",
    "embedded_jwk",
    "jku_header",
    "expired",
    "not_yet_valid",
    "issued_in_the_future",
    "wrong_audience",
    "audience_list",
    "wrong_issuer",
    "missing_jti",
    "missing_exp",
    "tampered_payload",
    "wrong_typ",
    "bad_subject",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_token_attack_is_refused(
    auth_app: FastAPI, http: httpx.AsyncClient, attack: str
) -> None:
    await _register(http)
    uid = await _user_id(auth_app)
    ring = _auth(auth_app).keys
    now = int(time.time())
    attacker = generate_key()
    token: str
    if attack == "alg_none":
        header = {"alg": "none", "typ": "at+jwt", "kid": ring.current.kid}
        token = f"{_segment(header)}.{_segment(_claims(uid))}."
    elif attack == "hs256_with_public_key":
        pem = ring.current.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "at+jwt", "kid": ring.current.kid}
        signing_input = f"{_segment(header)}.{_segment(_claims(uid))}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
    elif attack == "unknown_kid":
        token = jwt.encode(
            _claims(uid), attacker.private_key, "RS256", {"kid": attacker.kid, "typ": "at+jwt"}
        )
    elif attack == "injected_kid":
        token = _sign(auth_app, _claims(uid), kid="../../../../dev/null")
    elif attack == "no_kid":
        token = jwt.encode(_claims(uid), ring.current.private_key, "RS256", {"typ": "at+jwt"})
    elif attack == "embedded_jwk":
        token = jwt.encode(
            _claims(uid),
            attacker.private_key,
            "RS256",
            {"kid": ring.current.kid, "typ": "at+jwt", "jwk": attacker.jwk()},
        )
    elif attack == "jku_header":
        token = _sign(auth_app, _claims(uid), jku="https://attacker.example/jwks.json")
    elif attack == "expired":
        token = _sign(auth_app, _claims(uid, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    elif attack == "not_yet_valid":
        token = _sign(auth_app, _claims(uid, nbf=now + 3600, exp=now + 7200))
    elif attack == "issued_in_the_future":
        token = _sign(auth_app, _claims(uid, iat=now + 3600, exp=now + 7200))
    elif attack == "wrong_audience":
        token = _sign(auth_app, _claims(uid, aud="some-other-api"))
    elif attack == "audience_list":
        token = _sign(auth_app, _claims(uid, aud=[AUDIENCE, "some-other-api"]))
    elif attack == "wrong_issuer":
        token = _sign(auth_app, _claims(uid, iss="https://attacker.example"))
    elif attack == "missing_jti":
        token = _sign(auth_app, _claims(uid, jti=None))
    elif attack == "missing_exp":
        token = _sign(auth_app, _claims(uid, exp=None))
    elif attack == "tampered_payload":
        await _register(http, "mallory@example.com")
        genuine = (await _login(http, "mallory@example.com"))["access_token"]
        head, _, signature = genuine.split(".")
        tampered = _claims(uid)  # claims to be Ada, keeps Mallory's signature
        token = f"{head}.{_segment(tampered)}.{signature}"
        assert await _user_id(auth_app, "mallory@example.com") != uid
    elif attack == "wrong_typ":
        token = _sign(auth_app, _claims(uid), typ="JWT")
    elif attack == "bad_subject":
        token = _sign(auth_app, _claims(uid, sub="admin"))
    else:  # pragma: no cover
        raise AssertionError(attack)
    _assert_invalid_token(await _me(http, token))


# --- keys --------------------------------------------------------------------------------


async def test_rotation_keeps_old_tokens_valid_until_the_key_is_dropped(
    auth_app: FastAPI, http: httpx.AsyncClient
) -> None:
    await _register(http)
    ring = _auth(auth_app).keys
    old_kid = ring.current.kid
    old_token = (await _login(http))["access_token"]

    new_key = await ring.rotate()
    assert new_key.kid != old_kid
    new_token = (await _login(http))["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert (await _me(http, old_token)).status_code == 200
    assert (await _me(http, new_token)).status_code == 200

    # Once every token the old key signed has expired, the key leaves the ring; the reload
    # that an unknown kid triggers does not bring it back from the database.
    later = datetime.now(UTC) + ring.max_token_lifetime + timedelta(seconds=1)
    ring.clock = lambda: later
    assert ring.prune()
    assert [key.kid for key in ring.keys] == [new_key.kid]
    _assert_invalid_token(await _me(http, old_token))
    assert [key.kid for key in ring.keys] == [new_key.kid]
    assert (await _me(http, new_token)).status_code == 200


async def test_jwks_lists_current_and_previous_keys(
    auth_app: FastAPI, http: httpx.AsyncClient
) -> None:
    ring = _auth(auth_app).keys
    old_kid = ring.current.kid
    new_kid = (await ring.rotate()).kid
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [new_kid, old_kid]
    for key in keys:
        assert set(key) == {"kid", "kty", "n", "e", "alg", "use"}
        assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
        assert "d" not in key
    # A client that trusts the JWKS verifies our tokens with it.
    await _register(http)
    token = (await _login(http))["access_token"]
    jwk = next(k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"])
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE)["iss"] == ISSUER


async def test_key_ring_persists_and_reloads(auth_app: FastAPI, api_settings: Settings) -> None:
    sessions = auth_app.state.sessions
    lifetime = timedelta(minutes=16)
    ring = await KeyRing.load_or_create(sessions, api_settings.secret, max_token_lifetime=lifetime)
    first = ring.current.kid
    assert first == _auth(auth_app).keys.current.kid  # the lifespan's key, read back
    await ring.rotate()
    reloaded = await KeyRing.load_or_create(
        sessions, api_settings.secret, max_token_lifetime=lifetime
    )
    assert [k.kid for k in reloaded.keys] == [k.kid for k in ring.keys]
    assert reloaded.retired[0].kid == first and reloaded.retired[0].retired_at is not None
    # Expired retired keys are dropped on load, and deleted from the database on rotation.
    later = datetime.now(UTC) + lifetime + timedelta(seconds=1)
    late = await KeyRing.load_or_create(
        sessions, api_settings.secret, max_token_lifetime=lifetime, clock=lambda: later
    )
    assert [k.kid for k in late.keys] == [reloaded.current.kid]
    newest = (await late.rotate()).kid
    async with sessions() as session:
        rows = (await session.exec(select(SigningKey))).all()
    assert sorted(row.kid for row in rows) == sorted([reloaded.current.kid, newest])
    assert [row.kid for row in rows if row.is_current] == [newest]


# --- refresh rotation --------------------------------------------------------------------


async def _refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_the_old_token_is_refused(http: httpx.AsyncClient) -> None:
    await _register(http)
    first = (await _login(http))["refresh_token"]
    second_response = await _refresh(http, first)
    assert second_response.status_code == 200
    second = second_response.json()["refresh_token"]
    assert second != first
    _assert_invalid_token(await _refresh(http, first))


async def test_reused_refresh_token_revokes_its_family(http: httpx.AsyncClient) -> None:
    await _register(http)
    other_session = (await _login(http))["refresh_token"]
    first = (await _login(http))["refresh_token"]
    second = (await _refresh(http, first)).json()["refresh_token"]
    third = (await _refresh(http, second)).json()["refresh_token"]

    _assert_invalid_token(await _refresh(http, first))  # replay of a spent token
    _assert_invalid_token(await _refresh(http, third))  # the newest of the family is dead too
    # Another login (another family) is untouched.
    assert (await _refresh(http, other_session)).status_code == 200


async def test_unknown_refresh_token_is_refused(http: httpx.AsyncClient) -> None:
    _assert_invalid_token(await _refresh(http, "pvr_" + "A" * 43))
    _assert_invalid_token(await _refresh(http, "garbage"))


async def test_logout_revokes_the_family(http: httpx.AsyncClient) -> None:
    await _register(http)
    first = (await _login(http))["refresh_token"]
    second = (await _refresh(http, first)).json()["refresh_token"]
    assert (await http.post("/auth/logout", json={"refresh_token": first})).status_code == 204
    _assert_invalid_token(await _refresh(http, second))
    unknown = await http.post("/auth/logout", json={"refresh_token": "pvr_unknown"})
    assert unknown.status_code == 204
