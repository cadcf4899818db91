"""The RSA key ring that signs access tokens, its rotation and its JWKS export.

One current key signs; keys retired by a rotation stay in the ring, for verification
only, until every token they signed has expired (``retired_at + max_token_lifetime``),
then they are dropped. The kid is the key's RFC 7638 thumbprint.

In a directory the ring is ``ring.json`` (kids and dates) plus one ``<kid>.pem`` private
key (PKCS#8, mode 0600) per key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_SIZE = 2048
RING_FILE = "ring.json"
ALGORITHM = "RS256"


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


class KeyRing:
    """A current signing key and the retired keys still accepted for verification."""

    def __init__(
        self,
        current: RingKey,
        retired: list[RingKey] | None = None,
        *,
        max_token_lifetime: timedelta,
        directory: Path | None = None,
    ) -> None:
        self.current = current
        self.retired = list(retired or [])
        self.max_token_lifetime = max_token_lifetime
        self.directory = directory

    @classmethod
    def load_or_create(cls, directory: Path, *, max_token_lifetime: timedelta) -> KeyRing:
        """Load the ring kept in ``directory``, creating a first key when there is none."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring_path = directory / RING_FILE
        if not ring_path.exists():
            ring = cls(generate_key(), max_token_lifetime=max_token_lifetime, directory=directory)
            ring.save()
            return ring
        state = json.loads(ring_path.read_text())

        def load(entry: dict[str, Any]) -> RingKey:
            kid = entry["kid"]
            pem = (directory / f"{kid}.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ValueError(f"key {kid} is not an RSA private key")
            retired = entry.get("retired_at")
            key = RingKey(
                private,
                datetime.fromisoformat(entry["created_at"]),
                datetime.fromisoformat(retired) if retired else None,
            )
            if key.kid != kid:
                raise ValueError(f"key file {kid}.pem does not match its kid")
            return key

        ring = cls(
            load(state["current"]),
            [load(entry) for entry in state.get("retired", [])],
            max_token_lifetime=max_token_lifetime,
            directory=directory,
        )
        if ring.prune():
            ring.save()
        return ring

    def save(self) -> None:
        """Write the ring to its directory (private keys 0600, ring.json replaced atomically)."""
        if self.directory is None:
            return
        for key in self.keys:
            path = self.directory / f"{key.kid}.pem"
            if path.exists():
                continue
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)

        def entry(key: RingKey) -> dict[str, Any]:
            return {
                "kid": key.kid,
                "created_at": key.created_at.isoformat(),
                "retired_at": key.retired_at.isoformat() if key.retired_at else None,
            }

        state = {"current": entry(self.current), "retired": [entry(k) for k in self.retired]}
        tmp = self.directory / f"{RING_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.directory / RING_FILE)
        kept = {f"{key.kid}.pem" for key in self.keys}
        for pem_path in self.directory.glob("*.pem"):
            if pem_path.name not in kept:
                pem_path.unlink()

    @property
    def keys(self) -> list[RingKey]:
        return [self.current, *self.retired]

    def rotate(self, now: datetime | None = None) -> RingKey:
        """Make a new key current; the old one keeps verifying until its tokens expire."""
        now = now or datetime.now(UTC)
        old = RingKey(self.current.private_key, self.current.created_at, retired_at=now)
        self.retired.insert(0, old)
        self.current = generate_key(now)
        self.prune(now)
        self.save()
        return self.current

    def prune(self, now: datetime | None = None) -> bool:
        """Drop retired keys whose every token has expired; whether any was dropped."""
        now = now or datetime.now(UTC)
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
