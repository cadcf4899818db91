"""Payload codecs: compression above a threshold, AES-GCM with key ids, pass-through of the rest."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from polyvision.temporal.codec import (
    COMPRESSED_ENCODING,
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    CodecChain,
    CompressionCodec,
    EncryptionCodec,
    PayloadCodecError,
    PayloadSettings,
    build_codec,
    data_converter,
    parse_keys,
)


@dataclass
class Big:
    keys: list[str]


def _payload(size: int) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"a" * size + b'"')


async def test_compression_round_trips_and_marks_its_encoding() -> None:
    codec = CompressionCodec(min_bytes=1024)
    original = _payload(50_000)
    [encoded] = await codec.encode([original])
    assert encoded.metadata["encoding"] == COMPRESSED_ENCODING
    assert len(encoded.data) < len(original.data) // 10
    assert await codec.decode([encoded]) == [original]


async def test_small_and_incompressible_payloads_are_left_alone() -> None:
    codec = CompressionCodec(min_bytes=1024)
    small = _payload(100)
    noise = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4096))
    assert await codec.encode([small, noise]) == [small, noise]


async def test_encryption_round_trips_with_the_key_id_in_metadata() -> None:
    keys = {"k1": os.urandom(32), "k2": os.urandom(32)}
    codec = EncryptionCodec(keys, active_key_id="k2")
    original = _payload(10)
    [encoded] = await codec.encode([original])
    assert encoded.metadata["encoding"] == ENCRYPTED_ENCODING
    assert encoded.metadata[KEY_ID_METADATA] == b"k2"
    assert b"aaaaaaaa" not in encoded.data
    assert await codec.decode([encoded]) == [original]
    # Rotation: a ring whose active key is new still reads what the old key wrote.
    rotated = EncryptionCodec({"k3": os.urandom(32), **keys}, active_key_id="k3")
    assert await rotated.decode([encoded]) == [original]


async def test_a_wrong_or_unknown_key_is_refused() -> None:
    key = os.urandom(32)
    [encoded] = await EncryptionCodec({"k1": key}).encode([_payload(10)])
    with pytest.raises(PayloadCodecError, match="does not decrypt with key 'k1'"):
        await EncryptionCodec({"k1": os.urandom(32)}).decode([encoded])
    with pytest.raises(PayloadCodecError, match="unknown key id 'k1'"):
        await EncryptionCodec({"k9": os.urandom(32)}).decode([encoded])
    # The key id is bound to the ciphertext: the same key under another id does not read it.
    forged = Payload()
    forged.CopyFrom(encoded)
    forged.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(PayloadCodecError):
        await EncryptionCodec({"k2": key}).decode([forged])


async def test_payloads_without_a_codec_marker_pass_through() -> None:
    """What recorded histories and runs from before a codec was switched on hold."""
    chain = CodecChain([CompressionCodec(1), EncryptionCodec({"k": os.urandom(32)})])
    plain = [_payload(10), _payload(100_000), Payload(metadata={"encoding": b"binary/null"})]
    assert await chain.decode(plain) == plain


async def test_the_data_converter_compresses_then_encrypts_and_reads_back() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = PayloadSettings(payload_compress_min_bytes=1024, payload_keys=f"main:{key}")
    converter = data_converter(build_codec(settings))
    value = Big(keys=[f"orgs/o/matches/m/1/detect/chunk-{i:04d}.parquet" for i in range(2000)])
    [payload] = await converter.encode([value])
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
    inner = await EncryptionCodec(parse_keys(f"main:{key}")).decode([payload])
    assert inner[0].metadata["encoding"] == COMPRESSED_ENCODING
    assert await converter.decode([payload], [Big]) == [value]
    # The plain converter's payloads (no codec) are read by the codec converter as they are.
    [plain] = await pydantic_data_converter.encode([value])
    assert await converter.decode([plain], [Big]) == [value]


def test_settings_choose_the_codec() -> None:
    assert build_codec(PayloadSettings(payload_compress_min_bytes=0)) is None
    assert isinstance(build_codec(PayloadSettings()), CompressionCodec)
    assert data_converter(None) is pydantic_data_converter
    with pytest.raises(ValueError, match="is not base64"):
        parse_keys("k1:not base64!")
    with pytest.raises(ValueError, match="needs 32"):
        EncryptionCodec({"short": b"x" * 16})
    with pytest.raises(ValueError, match="appears twice"):
        parse_keys("a:AAAA,a:AAAA")
