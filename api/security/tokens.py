"""RS256 access tokens (RFC 9068 shape): issue with our current key, verify against our ring.

Verification accepts RS256 only, looks the ``kid`` up in our key ring and nowhere else
(``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are refused, never followed), and requires
``iss``, ``aud``, ``sub``, ``exp``, ``iat``, ``nbf`` and ``jti``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from api.security.signing_keys import ALGORITHM, KeyRing

TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class InvalidAccessToken(Exception):
    """The token is not one we issued, or no longer valid."""


class UnknownSigningKey(InvalidAccessToken):
    """The token names a kid not in the ring held in memory (maybe made by another replica)."""

    def __init__(self, kid: object) -> None:
        super().__init__("unknown signing key")
        self.kid = kid


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    jti: str
    expires_at: int


class AccessTokens:
    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        lifetime_s: int = 900,
        leeway_s: int = 30,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s
        self.leeway_s = leeway_s

    def issue(self, user_id: uuid.UUID, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.lifetime_s,
            "jti": secrets.token_urlsafe(16),
        }
        key = self.keys.current
        return jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": TOKEN_TYPE},
        )

    def verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken("malformed token") from exc
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise InvalidAccessToken("unexpected token type or algorithm")
        if FORBIDDEN_HEADERS & header.keys():
            raise InvalidAccessToken("unsupported token header")
        public_key = self.keys.verification_key(header.get("kid"))
        if public_key is None:
            raise UnknownSigningKey(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken(str(exc)) from exc
        # A token this service issues lives `lifetime_s`: a longer one was not issued here.
        if int(claims["exp"]) - int(claims["iat"]) > self.lifetime_s + self.leeway_s:
            raise InvalidAccessToken("token lifetime too long")
        try:
            user_id = uuid.UUID(claims["sub"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidAccessToken("malformed subject") from exc
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise InvalidAccessToken("malformed token id")
        return AccessClaims(user_id=user_id, jti=jti, expires_at=int(claims["exp"]))
