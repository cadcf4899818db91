"""Payload codecs: compression above a size threshold, optional AES-GCM encryption.

Both run in the client's `DataConverter` (`polyvision.temporal.client.connect`), so every
process that reads histories (workers, the API, the CLI, the codec server for the Temporal UI)
must build the same codec from the same settings. Each codec marks what it produced in the
payload's ``encoding`` metadata and decodes only payloads carrying its own mark: payloads written
before a codec was switched on (the recorded histories under ``tests/``, workflows in flight)
pass through untouched, so turning compression or encryption on needs no migration.

Order: compress first, then encrypt (ciphertext does not compress).
"""

from __future__ import annotations

import base64
import binascii
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

COMPRESSED_ENCODING = b"binary/zlib"
"""``encoding`` metadata of a payload `CompressionCodec` compressed (zlib of the whole payload)."""

ENCRYPTED_ENCODING = b"binary/encrypted"
"""``encoding`` metadata of a payload `EncryptionCodec` encrypted (AES-256-GCM)."""

KEY_ID_METADATA = "encryption-key-id"
"""Metadata naming the key that encrypted a payload, so keys can rotate."""

DEFAULT_COMPRESS_MIN_BYTES = 16 * 1024
"""Payloads smaller than this are left alone: activities exchange small references, and a small
payload readable in the UI without a codec server is worth more than a few saved bytes."""

_NONCE_BYTES = 12


class PayloadCodecError(ValueError):
    """A payload cannot be decoded: unknown key id, wrong key, or corrupt data."""


class CompressionCodec(PayloadCodec):
    """zlib-compresses payloads of at least `min_bytes` when that makes them smaller.

    zlib (the standard library) rather than zstd: every process that must decode, including a
    worker image without optional packages, can.
    """

    def __init__(self, min_bytes: int = DEFAULT_COMPRESS_MIN_BYTES, level: int = 6) -> None:
        """Args:
        min_bytes: Serialized payload size from which compression is tried.
        level: zlib level (1 fastest, 9 smallest).
        """
        if min_bytes < 0:
            raise ValueError(f"min_bytes must be >= 0, got {min_bytes}")
        self.min_bytes = min_bytes
        self.level = level

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encode_one(payload) for payload in payloads]

    def _encode_one(self, payload: Payload) -> Payload:
        raw = payload.SerializeToString()
        if len(raw) < self.min_bytes:
            return payload
        packed = zlib.compress(raw, self.level)
        if len(packed) >= len(raw):  # incompressible (already encrypted, media): keep as is
            return payload
        return Payload(metadata={"encoding": COMPRESSED_ENCODING}, data=packed)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(payload) for payload in payloads]

    @staticmethod
    def _decode_one(payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != COMPRESSED_ENCODING:
            return payload
        try:
            return Payload.FromString(zlib.decompress(payload.data))
        except zlib.error as exc:
            raise PayloadCodecError(f"corrupt compressed payload: {exc}") from None


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with a key ring: encrypts with the active key, decrypts with any known one.

    The key id travels in the payload's metadata (and is bound to the ciphertext as associated
    data), so rotating means adding a new key, making it active, and keeping the old one until
    the namespace retention has dropped every history it encrypted.
    """

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str | None = None) -> None:
        """Args:
        keys: Key id to 32-byte key.
        active_key_id: The key new payloads are encrypted with; the first of `keys` if None.

        Raises:
            ValueError: No keys, a key that is not 32 bytes, or an unknown active key id.
        """
        # Imported here: only processes that encrypt need the `cryptography` package.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise ValueError("an encryption codec needs at least one key")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} has {len(key)} bytes; AES-256 needs 32")
        self.active_key_id = active_key_id or next(iter(keys))
        if self.active_key_id not in keys:
            raise ValueError(f"active key id {self.active_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.active_key_id]
        key_id = self.active_key_id.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            out.append(
                Payload(
                    metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        from cryptography.exceptions import InvalidTag

        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise PayloadCodecError(f"payload encrypted with unknown key id {key_id!r}")
            data = payload.data
            try:
                plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], key_id.encode())
            except InvalidTag:
                raise PayloadCodecError(
                    f"payload does not decrypt with key {key_id!r} (wrong key or tampered)"
                ) from None
            out.append(Payload.FromString(plain))
        return out


class CodecChain(PayloadCodec):
    """Codecs applied in order on encode and in reverse order on decode."""

    def __init__(self, codecs: Sequence[PayloadCodec]) -> None:
        self.codecs = list(codecs)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        current = list(payloads)
        for codec in self.codecs:
            current = await codec.encode(current)
        return current

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        current = list(payloads)
        for codec in reversed(self.codecs):
            current = await codec.decode(current)
        return current


class PayloadSettings(BaseSettings):
    """``PV_PAYLOAD_*``: how payloads are encoded. Read in entry points, like `Settings`.

    Attributes:
        payload_compress_min_bytes: Compress payloads from this size on; 0 turns compression
            off (``PV_PAYLOAD_COMPRESS_MIN_BYTES``).
        payload_keys: Encryption keys as ``id:base64key[,id:base64key...]`` (32-byte keys);
            empty: no encryption (``PV_PAYLOAD_KEYS``).
        payload_key_id: The key that encrypts new payloads; the first listed if empty
            (``PV_PAYLOAD_KEY_ID``).
    """

    model_config = SettingsConfigDict(
        env_prefix="PV_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    payload_compress_min_bytes: int = DEFAULT_COMPRESS_MIN_BYTES
    payload_keys: SecretStr = SecretStr("")
    payload_key_id: str = ""


def parse_keys(spec: str) -> dict[str, bytes]:
    """Parse ``id:base64key[,id:base64key...]`` into a key ring.

    Raises:
        ValueError: A malformed entry or a repeated id (the message never holds a key).
    """
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError("PV_PAYLOAD_KEYS: each entry is id:base64key")
        if key_id in keys:
            raise ValueError(f"PV_PAYLOAD_KEYS: key id {key_id!r} appears twice")
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"PV_PAYLOAD_KEYS: key {key_id!r} is not base64") from None
    return keys


def build_codec(settings: PayloadSettings) -> PayloadCodec | None:
    """The codec the settings ask for: compression, encryption, both, or None."""
    codecs: list[PayloadCodec] = []
    if settings.payload_compress_min_bytes > 0:
        codecs.append(CompressionCodec(settings.payload_compress_min_bytes))
    keys = parse_keys(settings.payload_keys.get_secret_value())
    if keys:
        codecs.append(EncryptionCodec(keys, settings.payload_key_id or None))
    if not codecs:
        return None
    return codecs[0] if len(codecs) == 1 else CodecChain(codecs)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter with `codec` applied to every payload (None: no codec)."""
    if codec is None:
        return pydantic_data_converter
    return replace(pydantic_data_converter, payload_codec=codec)
