"""The codec server: bearer token required, decodes and encodes, lets the Temporal UI in (CORS)."""

from __future__ import annotations

import os

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from polyvision.temporal.codec import ENCRYPTED_ENCODING, EncryptionCodec
from polyvision.temporal.codec_server import create_codec_app

TOKEN = "codec-test-token"
UI = "http://127.0.0.1:8233"


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec({"k1": os.urandom(32)})


def _client(codec: EncryptionCodec) -> httpx.AsyncClient:
    app = create_codec_app(codec, token=TOKEN, cors_origins=[UI])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


def _body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


async def test_it_refuses_without_the_token(codec: EncryptionCodec) -> None:
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    async with _client(codec) as client:
        missing = await client.post("/decode", content=_body(sealed))
        wrong = await client.post(
            "/decode", content=_body(sealed), headers={"Authorization": "Bearer nope"}
        )
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "json/plain" not in missing.text


async def test_it_decodes_and_encodes_with_the_token(codec: EncryptionCodec) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"match_id":"m1"}')
    [sealed] = await codec.encode([plain])
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "polyvision"}
    async with _client(codec) as client:
        decoded = await client.post("/decode", content=_body(sealed), headers=auth)
        # The CLI's --codec-endpoint templating puts the namespace in the path.
        by_namespace = await client.post("/polyvision/decode", content=_body(sealed), headers=auth)
        encoded = await client.post("/encode", content=_body(plain), headers=auth)
        garbage = await client.post("/decode", content="{", headers=auth)
    assert decoded.status_code == 200, decoded.text
    assert list(json_format.Parse(decoded.text, Payloads()).payloads) == [plain]
    assert list(json_format.Parse(by_namespace.text, Payloads()).payloads) == [plain]
    [again] = json_format.Parse(encoded.text, Payloads()).payloads
    assert again.metadata["encoding"] == ENCRYPTED_ENCODING
    assert await codec.decode([again]) == [plain]
    assert garbage.status_code == 400


async def test_a_payload_of_another_key_is_a_clear_400(codec: EncryptionCodec) -> None:
    [sealed] = await EncryptionCodec({"k1": os.urandom(32)}).encode([Payload(data=b"1")])
    async with _client(codec) as client:
        answer = await client.post(
            "/decode", content=_body(sealed), headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 400
    assert "does not decrypt with key 'k1'" in answer.json()["error"]


async def test_the_temporal_ui_origin_passes_cors_and_others_do_not(
    codec: EncryptionCodec,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with _client(codec) as client:
        ui = await client.options("/decode", headers={"Origin": UI, **preflight})
        other = await client.options(
            "/decode", headers={"Origin": "http://evil.example", **preflight}
        )
    assert ui.status_code == 200
    assert ui.headers["access-control-allow-origin"] == UI
    assert ui.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in ui.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_an_empty_token_is_refused(codec: EncryptionCodec) -> None:
    with pytest.raises(ValueError, match="PV_CODEC_SERVER_TOKEN"):
        create_codec_app(codec, token="")
