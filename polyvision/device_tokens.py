"""The device token format, shared by the edge agent (which mints) and the API (which verifies).

An edge box holds an Ed25519 key pair (PyNaCl); the API knows its public key from provisioning.
Each request carries a fresh compact JWS signed with the private key:

    header  {"alg": "EdDSA", "typ": "device+jwt", "kid": "<device id>"}
    payload {"iss": id, "sub": id, "aud": "polyvision-api", "iat", "nbf", "exp", "jti"}

Tokens live at most `MAX_LIFETIME_S` and the API remembers every ``jti`` until the token
expires, so a captured token cannot be replayed. Nothing here does I/O.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

from nacl.signing import SigningKey

TOKEN_TYPE = "device+jwt"
ALGORITHM = "EdDSA"
AUDIENCE = "polyvision-api"
MAX_LIFETIME_S = 300
"""A device token is valid for at most five minutes."""
DEFAULT_LIFETIME_S = 120
CLOCK_SKEW_S = 30
"""How far the device's clock may be ahead of or behind the API's."""


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE's encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url`.

    Raises:
        ValueError: not base64url.
    """
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (UnicodeEncodeError, ValueError) as exc:
        raise ValueError("not base64url") from exc


def public_key_text(signing_key: SigningKey) -> str:
    """The public half of ``signing_key`` as the API stores it: 32 raw bytes, base64url."""
    return b64url(bytes(signing_key.verify_key))


def mint_device_token(
    signing_key: SigningKey,
    device_id: uuid.UUID | str,
    *,
    audience: str = AUDIENCE,
    lifetime_s: int = DEFAULT_LIFETIME_S,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A fresh device token for one request.

    Args:
        signing_key: the device's private key.
        device_id: the id the API gave the device at provisioning.
        audience: the API's audience.
        lifetime_s: seconds until expiry (the API refuses more than `MAX_LIFETIME_S`).
        now: issue time (seconds since the epoch); the current time when omitted.
        jti: the token's unique id; random when omitted.
    """
    issued = int(time.time() if now is None else now)
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": str(device_id)}
    payload = {
        "iss": str(device_id),
        "sub": str(device_id),
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "jti": jti or secrets.token_urlsafe(18),
    }
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(payload, separators=(",", ":")).encode())
    )
    signature = signing_key.sign(signing_input.encode("ascii")).signature
    return signing_input + "." + b64url(signature)
