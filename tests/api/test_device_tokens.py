"""Attacks on device tokens, each against ``GET /devices/me``: every one is a 401 problem.

The bad tokens are built by hand (JOSE compact serialization signed with PyNaCl) or with PyJWT
where it can produce them, so nothing here goes through the minting code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from nacl.signing import SigningKey

from polyvision.device_tokens import (
    ALGORITHM,
    AUDIENCE,
    CLOCK_SKEW_S,
    MAX_LIFETIME_S,
    TOKEN_TYPE,
    b64url,
    b64url_decode,
)
from polyvision.storage.metadata.models import Role
from tests.api import factories
from tests.api.factories import Factory

PROBLEM = "application/problem+json"
_DROP: Any = object()
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def encode(part: dict[str, Any]) -> str:
    return b64url(json.dumps(part, separators=(",", ":")).encode())


def header_for(kid: str, /, **changes: Any) -> dict[str, Any]:
    """A valid device token header; a change to `_DROP` removes the member."""
    header: dict[str, Any] = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}
    return _apply(header, changes)


def claims_for(device_id: str, /, now: float | None = None, **changes: Any) -> dict[str, Any]:
    """Valid claims for ``device_id``; a change to `_DROP` removes the claim."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": device_id,
        "sub": device_id,
        "aud": AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + 60,
        "jti": uuid.uuid4().hex,
    }
    return _apply(claims, changes)


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for name, value in changes.items():
        if value is _DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def sign(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    """A compact JWS with an Ed25519 signature, whatever the header claims."""
    signing_input = f"{encode(header)}.{encode(claims)}"
    signature = key.sign(signing_input.encode("ascii")).signature
    return f"{signing_input}.{b64url(signature)}"


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/devices/me", headers={"Authorization": f"Bearer {token}"})


async def assert_refused(client: httpx.AsyncClient, token: str) -> None:
    response = await me(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401
    # Whatever went wrong, the answer says nothing about which check failed.
    assert response.json()["detail"] == "The device token is invalid, expired or already used."


@pytest.fixture
async def device(factory: Factory) -> factories.TestDevice:
    org = await factory.org(roles=(Role.owner,))
    return await factory.device(org.id)


# --- positive controls -------------------------------------------------------------------


async def test_hand_built_token_is_accepted(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    kid = str(device.id)
    response = await me(client, sign(header_for(kid), claims_for(kid), device.signing_key))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == kid


@pytest.mark.parametrize(
    "offset_s",
    [
        pytest.param(CLOCK_SKEW_S - 10, id="device-clock-ahead"),
        pytest.param(-(60 + CLOCK_SKEW_S - 10), id="device-clock-behind"),
    ],
)
async def test_token_within_the_skew_is_accepted(
    client: httpx.AsyncClient, device: factories.TestDevice, offset_s: int
) -> None:
    # Ahead: iat and nbf lie in the future; behind: exp (iat + 60) is already past. Both by
    # less than the allowed skew.
    kid = str(device.id)
    claims = claims_for(kid, now=time.time() + offset_s)
    response = await me(client, sign(header_for(kid), claims, device.signing_key))
    assert response.status_code == 200, response.text


# --- algorithm and header attacks --------------------------------------------------------


async def test_alg_none(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    kid = str(device.id)
    for alg in ("none", "None", "NONE"):
        token = f"{encode(header_for(kid, alg=alg))}.{encode(claims_for(kid))}."
        await assert_refused(client, token)


async def test_hs256_with_the_public_key_as_secret(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    # The classic confusion: the verifier's "key" is public, so an attacker can MAC with it.
    kid = str(device.id)
    public_text = b64url(bytes(device.signing_key.verify_key))
    for secret in (bytes(device.signing_key.verify_key), public_text.encode()):
        signing_input = f"{encode(header_for(kid, alg='HS256'))}.{encode(claims_for(kid))}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await assert_refused(client, f"{signing_input}.{b64url(mac)}")


async def test_rs256_and_es256_headers(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    kid = str(device.id)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    headers = {"typ": TOKEN_TYPE, "kid": kid}
    # Genuine signatures by other key types...
    await assert_refused(client, jwt.encode(claims_for(kid), rsa_key, "RS256", headers=headers))
    await assert_refused(client, jwt.encode(claims_for(kid), ec_key, "ES256", headers=headers))
    # ...and the device's own Ed25519 signature under a lying header.
    for alg in ("RS256", "ES256", "Ed25519", "eddsa"):
        token = sign(header_for(kid, alg=alg), claims_for(kid), device.signing_key)
        await assert_refused(client, token)


async def test_unknown_kid(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    stranger = str(uuid.uuid4())
    kid = str(device.id)
    await assert_refused(client, sign(header_for(stranger), claims_for(kid), device.signing_key))
    # A self-consistent token for an id that is not registered.
    await assert_refused(
        client, sign(header_for(stranger), claims_for(stranger), device.signing_key)
    )


@pytest.mark.parametrize(
    "kid",
    [
        "../../etc/passwd",
        "' OR 1=1 --",
        "%s' OR '1'='1",
        "",
        None,
        12345,
        ["00000000-0000-0000-0000-000000000000"],
    ],
)
async def test_injected_kid(
    client: httpx.AsyncClient, device: factories.TestDevice, kid: Any
) -> None:
    claims = claims_for(str(device.id))
    await assert_refused(
        client, sign(header_for(str(device.id), kid=kid), claims, device.signing_key)
    )


async def test_missing_kid(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    claims = claims_for(str(device.id))
    header = header_for(str(device.id), kid=_DROP)
    await assert_refused(client, sign(header, claims, device.signing_key))


async def test_key_carrying_headers(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    # The attacker signs with their own key and offers it in the header.
    attacker = SigningKey.generate()
    kid = str(device.id)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes(attacker.verify_key))}
    for extra in (
        {"jwk": jwk},
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
    ):
        token = sign(header_for(kid, **extra), claims_for(kid), attacker)
        await assert_refused(client, token)
        # Even with the device's own valid signature the header is refused.
        token = sign(header_for(kid, **extra), claims_for(kid), device.signing_key)
        await assert_refused(client, token)


async def test_wrong_type(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    kid = str(device.id)
    for typ in ("JWT", _DROP):
        token = sign(header_for(kid, typ=typ), claims_for(kid), device.signing_key)
        await assert_refused(client, token)


async def test_signed_by_another_devices_key(
    client: httpx.AsyncClient, factory: Factory, device: factories.TestDevice
) -> None:
    other = await factory.device(device.organization_id, name="other")
    kid = str(device.id)
    await assert_refused(client, sign(header_for(kid), claims_for(kid), other.signing_key))
    await assert_refused(client, sign(header_for(kid), claims_for(kid), SigningKey.generate()))


# --- claim attacks -----------------------------------------------------------------------


async def test_expired_beyond_the_skew(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    kid = str(device.id)
    now = int(time.time())
    claims = claims_for(kid, now=now - 120, exp=now - CLOCK_SKEW_S - 10)
    await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_issued_in_the_future_beyond_the_skew(
    client: httpx.AsyncClient, device: factories.TestDevice, claim: str
) -> None:
    kid = str(device.id)
    now = int(time.time())
    future = now + CLOCK_SKEW_S + 30
    claims = claims_for(kid, now=now, exp=future + 60, **{claim: future})
    await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


async def test_lifetime_over_five_minutes(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    kid = str(device.id)
    now = int(time.time())
    for exp in (now + MAX_LIFETIME_S + 1, now + 365 * 24 * 3600):
        claims = claims_for(kid, now=now, exp=exp)
        await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


async def test_lifetime_of_five_minutes_is_accepted(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    # The boundary of the rule above, so that test fails for the right reason.
    kid = str(device.id)
    now = int(time.time())
    claims = claims_for(kid, now=now, exp=now + MAX_LIFETIME_S)
    assert (await me(client, sign(header_for(kid), claims, device.signing_key))).status_code == 200


@pytest.mark.parametrize("audience", ["another-api", "", ["another-api"], None])
async def test_wrong_audience(
    client: httpx.AsyncClient, device: factories.TestDevice, audience: Any
) -> None:
    kid = str(device.id)
    claims = claims_for(kid, aud=audience)
    await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


@pytest.mark.parametrize("claim", ["jti", "exp", "aud", "iat", "sub", "iss"])
async def test_missing_claim(
    client: httpx.AsyncClient, device: factories.TestDevice, claim: str
) -> None:
    kid = str(device.id)
    claims = claims_for(kid, **{claim: _DROP})
    await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


@pytest.mark.parametrize("jti", ["short", "x" * 65, 12345678901, None])
async def test_malformed_jti(
    client: httpx.AsyncClient, device: factories.TestDevice, jti: Any
) -> None:
    kid = str(device.id)
    claims = claims_for(kid, jti=jti)
    await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


async def test_subject_or_issuer_is_not_the_kid(
    client: httpx.AsyncClient, factory: Factory, device: factories.TestDevice
) -> None:
    # Signed by the device itself, but claiming to speak for another registered device.
    other = await factory.device(device.organization_id, name="other")
    kid = str(device.id)
    for claim in ("sub", "iss"):
        change: dict[str, Any] = {claim: str(other.id)}
        claims = claims_for(kid, **change)
        await assert_refused(client, sign(header_for(kid), claims, device.signing_key))


async def test_tampered_payload(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    kid = str(device.id)
    token = sign(header_for(kid), claims_for(kid), device.signing_key)
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    for claim, value in (("exp", claims["exp"] + 1), ("jti", "another-jti-value")):
        tampered = encode({**claims, claim: value})
        await assert_refused(client, f"{header}.{tampered}.{signature}")
    # The untouched token still works: the refusals were about the tampering.
    assert (await me(client, token)).status_code == 200


async def test_replayed_token(client: httpx.AsyncClient, device: factories.TestDevice) -> None:
    token = device.token()
    first = await me(client, token)
    assert first.status_code == 200, first.text
    await assert_refused(client, token)
    # A fresh token with a new jti is fine again.
    assert (await me(client, device.token())).status_code == 200


async def test_replay_with_respelled_signature(
    client: httpx.AsyncClient, device: factories.TestDevice
) -> None:
    # The last character of a 64-byte signature carries 4 unused bits: flipping one spells
    # the same signature differently. Whether the verifier refuses the non-canonical spelling
    # or the spent jti, a used token must not come back under another spelling.
    token = device.token()
    assert (await me(client, token)).status_code == 200
    head, payload, signature = token.split(".")
    last = BASE64URL.index(signature[-1])
    respelled = signature[:-1] + BASE64URL[last ^ 1]
    assert b64url_decode(respelled) == b64url_decode(signature)
    await assert_refused(client, f"{head}.{payload}.{respelled}")


async def test_revoked_device(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.admin,))
    device = await factory.device(org.id)
    revoked = await client.post(
        f"/orgs/{org.id}/devices/{device.id}/revoke", headers=org.member(Role.admin).headers
    )
    assert revoked.status_code == 200
    await assert_refused(client, device.token())


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "..",
        f"{encode({'alg': 'EdDSA'})}",
        b64url(b"[1,2]") + "." + b64url(b"{}") + "." + b64url(bytes(64)),
    ],
)
async def test_malformed_tokens(
    client: httpx.AsyncClient, device: factories.TestDevice, token: str
) -> None:
    await assert_refused(client, token)


async def test_user_access_token_is_not_a_device_token(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    await assert_refused(client, org.member(Role.owner).access_token)


async def test_missing_authorization(client: httpx.AsyncClient) -> None:
    response = await client.get("/devices/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_token_rules_are_the_promised_ones() -> None:
    """The limits every test above is relative to, pinned to what the protocol promises."""
    assert (MAX_LIFETIME_S, CLOCK_SKEW_S) == (300, 30)
    assert (ALGORITHM, TOKEN_TYPE, AUDIENCE) == ("EdDSA", "device+jwt", "polyvision-api")
