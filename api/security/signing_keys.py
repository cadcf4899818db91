"""The RSA key ring that signs access tokens, its rotation and its JWKS export.

One current key signs; keys retired by a rotation stay in the ring, for verification
only, until every token they signed has expired (``retired_at + max_token_lifetime``),
then they are dropped. The kid is the key's RFC 7638 thumbprint.

The ring lives in the metadata database (table ``signing_keys``), shared by every API replica
and worker process: private keys are PKCS#8 PEM, encrypted at rest with Fernet under a key
derived from the server secret. Each process keeps an in-memory copy, reloaded when it is
older than ``reload_interval_s`` and when a token names a kid it does not know (at most once
per ``unknown_kid_reload_s``), so a key made or rotated on one replica reaches the others.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.storage.metadata.models import SigningKey

log = structlog.get_logger(__name__)

KEY_SIZE = 2048
ALGORITHM = "RS256"
ENCRYPTION_LABEL = b"polyvision/signing-keys/v1"
RELOAD_INTERVAL_S = 60.0
UNKNOWN_KID_RELOAD_S = 5.0


class KeyRingError(Exception):
    """The key ring in the database cannot be used."""


class KeyRingSecretError(KeyRingError):
    """A stored private key does not decrypt with our secret."""


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of an RSA public key, base64url without padding."""
    numbers = public_key.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class RingKey:
    private_key: rsa.RSAPrivateKey
    created_at: datetime
    retired_at: datetime | None = None
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", thumbprint(self.private_key.public_key()))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }


def generate_key(now: datetime | None = None) -> RingKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    return RingKey(private, now or datetime.now(UTC))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def encryption_key(secret: bytes) -> bytes:
    """The Fernet key that encrypts stored private keys: HMAC-SHA256(secret, label), base64url."""
    digest = hmac.new(secret, ENCRYPTION_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


class KeyStore:
    """The ``signing_keys`` table: encrypted private keys, which one is current, retirements."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], secret: bytes) -> None:
        self.sessions = sessions
        self._fernet = Fernet(encryption_key(secret))

    def encrypt(self, key: RingKey) -> str:
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self._fernet.encrypt(pem).decode()

    def decrypt(self, row: SigningKey) -> RingKey:
        """The key of ``row``; refuses one sealed with another secret or not matching its kid."""
        try:
            pem = self._fernet.decrypt(row.private_key.encode())
        except InvalidToken as exc:
            raise KeyRingSecretError(
                f"signing key {row.kid} does not decrypt with this server's secret: "
                "PV_SECRET_KEY must be the same on every API replica, the one the keys were "
                "stored with (after a deliberate change, delete the signing_keys rows: every "
                "access token is then refused and users sign in again)"
            ) from exc
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise KeyRingError(f"signing key {row.kid} is not an RSA private key")
        key = RingKey(private, row.created_at, row.retired_at)
        if key.kid != row.kid:
            raise KeyRingError(f"signing key {row.kid} does not match its kid")
        return key

    async def read(self) -> list[SigningKey]:
        async with self.sessions() as session:
            return list((await session.exec(select(SigningKey))).all())

    async def create_first(self, key: RingKey) -> bool:
        """Store ``key`` as the current key; False when another process stored one first."""
        try:
            async with self.sessions() as session:
                session.add(self._row(key, is_current=True))
                await session.commit()
        except IntegrityError:
            return False
        return True

    async def rotate(self, new: RingKey, now: datetime, max_token_lifetime: timedelta) -> None:
        """In one transaction: retire the current key, store ``new`` as current, and delete
        retired keys whose every token has expired."""
        for attempt in range(3):
            try:
                async with self.sessions() as session:
                    for row in (await session.exec(select(SigningKey))).all():
                        if row.is_current:
                            row.is_current = None
                            row.retired_at = now
                            session.add(row)
                        elif row.retired_at and row.retired_at + max_token_lifetime <= now:
                            await session.delete(row)
                    # The old key must stop being current before the new one is stored.
                    await session.flush()
                    session.add(self._row(new, is_current=True))
                    await session.commit()
                return
            except IntegrityError:
                # Another process rotated at the same time: retire its new key too, and retry.
                if attempt == 2:
                    raise

    def _row(self, key: RingKey, *, is_current: bool) -> SigningKey:
        return SigningKey(
            kid=key.kid,
            private_key=self.encrypt(key),
            is_current=True if is_current else None,
            created_at=key.created_at,
            retired_at=key.retired_at,
        )


class KeyRing:
    """A current signing key and the retired keys still accepted for verification."""

    def __init__(
        self,
        current: RingKey,
        retired: list[RingKey] | None = None,
        *,
        max_token_lifetime: timedelta,
        store: KeyStore | None = None,
        clock: Callable[[], datetime] = _utcnow,
        reload_interval_s: float = RELOAD_INTERVAL_S,
        unknown_kid_reload_s: float = UNKNOWN_KID_RELOAD_S,
    ) -> None:
        self.current = current
        self.retired = list(retired or [])
        self.max_token_lifetime = max_token_lifetime
        self.store = store
        self.clock = clock
        self.reload_interval_s = reload_interval_s
        self.unknown_kid_reload_s = unknown_kid_reload_s
        self._loaded_at = time.monotonic()
        self._unknown_reloaded_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def load_or_create(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        max_token_lifetime: timedelta,
        clock: Callable[[], datetime] = _utcnow,
    ) -> KeyRing:
        """Load the ring from the database, storing a first key when there is none.

        Safe when several replicas start at once: the unique ``is_current`` lets one first
        key in, and every replica then signs with that one.

        Raises:
            KeyRingSecretError: the stored keys were encrypted with another secret.
        """
        store = KeyStore(sessions, secret)
        rows = await store.read()
        if not any(row.is_current for row in rows):
            candidate = await asyncio.to_thread(generate_key, clock())
            if not await store.create_first(candidate):
                log.info("signing key created by another replica; using it")
            rows = await store.read()
        current, retired = _arrange(rows, store, {})
        if current is None:
            raise KeyRingError("the signing_keys table has no current key")
        ring = cls(
            current, retired, max_token_lifetime=max_token_lifetime, store=store, clock=clock
        )
        ring.prune()
        return ring

    async def reload(self) -> None:
        """Replace the in-memory copy with the database's ring (no-op without a store)."""
        if self.store is None:
            return
        rows = await self.store.read()
        current, retired = _arrange(rows, self.store, {key.kid: key for key in self.keys})
        if current is None:
            raise KeyRingError("the signing_keys table has no current key")
        self.current, self.retired = current, retired
        self.prune()
        self._loaded_at = time.monotonic()

    async def refresh_if_stale(self) -> None:
        """Reload when the in-memory copy is older than ``reload_interval_s``.

        A failed reload is logged and the keys in memory keep serving: they are still valid.
        """
        if self.store is None or time.monotonic() - self._loaded_at < self.reload_interval_s:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self.reload_interval_s:
                return  # another request reloaded while this one waited
            try:
                await self.reload()
            except (SQLAlchemyError, KeyRingError) as exc:
                self._loaded_at = time.monotonic()
                log.warning("signing keys not reloaded", error=str(exc))

    async def reload_for_unknown(self, kid: object) -> bool:
        """Reload, at most once per ``unknown_kid_reload_s``, for a kid not in memory.

        Returns whether ``kid`` is known afterwards.
        """
        if not isinstance(kid, str):
            return False
        async with self._lock:
            if self.verification_key(kid) is not None:
                return True  # a concurrent request's reload brought it in
            if self.store is None:
                return False
            now = time.monotonic()
            last = self._unknown_reloaded_at
            if last is not None and now - last < self.unknown_kid_reload_s:
                return False  # forged kids must not turn into a database query each
            self._unknown_reloaded_at = now
            try:
                await self.reload()
            except (SQLAlchemyError, KeyRingError) as exc:
                log.warning("signing keys not reloaded", error=str(exc))
                return False
        return self.verification_key(kid) is not None

    @property
    def keys(self) -> list[RingKey]:
        return [self.current, *self.retired]

    async def rotate(self, now: datetime | None = None) -> RingKey:
        """Make a new key current; the old one keeps verifying until its tokens expire.

        With a store, the rotation is written to the database in one transaction, and other
        replicas pick it up on their next reload.
        """
        now = now or self.clock()
        new = await asyncio.to_thread(generate_key, now)
        if self.store is not None:
            await self.store.rotate(new, now, self.max_token_lifetime)
            await self.reload()
            return new
        old = RingKey(self.current.private_key, self.current.created_at, retired_at=now)
        self.retired.insert(0, old)
        self.current = new
        self.prune(now)
        return new

    def prune(self, now: datetime | None = None) -> bool:
        """Drop retired keys whose every token has expired; whether any was dropped."""
        now = now or self.clock()
        kept = [
            key
            for key in self.retired
            if key.retired_at is None or key.retired_at + self.max_token_lifetime > now
        ]
        dropped = len(kept) != len(self.retired)
        self.retired = kept
        return dropped

    def verification_key(self, kid: object) -> rsa.RSAPublicKey | None:
        """The public key for ``kid``, only ever looked up among our own keys."""
        if not isinstance(kid, str):
            return None
        for key in self.keys:
            if key.kid == kid:
                return key.public_key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JWK Set (RFC 7517)."""
        return {"keys": [key.jwk() for key in self.keys]}


def _arrange(
    rows: list[SigningKey], store: KeyStore, known: dict[str, RingKey]
) -> tuple[RingKey | None, list[RingKey]]:
    """The current key and the retired ones (newest retirement first) of the stored ``rows``.

    Keys already in memory (``known``) are reused rather than decrypted and parsed again.
    """
    current: RingKey | None = None
    retired: list[RingKey] = []
    for row in rows:
        cached = known.get(row.kid)
        if cached is not None:
            key = RingKey(cached.private_key, row.created_at, row.retired_at)
        else:
            key = store.decrypt(row)
        if row.is_current:
            current = key
        else:
            retired.append(key)
    oldest = datetime.min.replace(tzinfo=UTC)
    retired.sort(key=lambda key: key.retired_at or oldest, reverse=True)
    return current, retired
