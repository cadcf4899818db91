"""The object-store interface shared by every backend: dataclasses, errors and the ABC.

Backends implement the abstract methods; the conveniences built on top of them (`get`,
`read_stream`, `exists`, `upload_file`, `download_file`) live here so every backend streams and
verifies the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

KiB = 1024
MiB = 1024 * KiB

# Reads are handed out in chunks of this size: large enough to amortise a thread hop or an
# HTTP read, small enough that a 4K recording is never held in memory.
DEFAULT_CHUNK_SIZE = 1 * MiB
# Streamed writes to S3 buffer one part at a time; 8 MiB parts allow objects of ~78 GiB within
# S3's 10,000-part limit, enough for a full match recording.
DEFAULT_PART_SIZE = 8 * MiB
# S3 refuses multipart parts smaller than this, except the last; the file backend enforces the
# same rule so code developed against it behaves the same in production.
MIN_PART_SIZE = 5 * MiB
# S3's largest part; the file backend refuses bigger parts so both behave the same.
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PART_NUMBER = 10_000

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object.

    Attributes:
        key: the object key.
        size: size in bytes.
        sha256: hex sha256 of the whole object when the store recorded one (always after `put`,
            `put_stream` and `upload_file`; after multipart when it was declared or, on the file
            backend, computed). Listings leave it `None`; use `stat` to get it.
        content_type: the media type; `None` in listings.
        modified: last modification time (timezone-aware, UTC).
    """

    key: str
    size: int
    sha256: str | None
    content_type: str | None
    modified: datetime


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One uploaded part of a multipart upload, as `complete_multipart` needs it back.

    Attributes:
        number: part number, 1 to 10,000.
        etag: the backend's identifier of the part's content.
        size: size in bytes.
        sha256: hex sha256 of the part; `None` when S3 was not given one (a part uploaded
            through a presigned URL without a checksum header).
    """

    number: int
    etag: str
    size: int
    sha256: str | None


class ObjectStoreError(Exception):
    """Base class of object-store failures other than invalid keys."""


class InvalidObjectKey(ValueError):
    """An object key or prefix is unsafe or not portable (see `keys.validate_key`)."""


class ObjectNotFound(ObjectStoreError, LookupError):
    """The object does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key!r}")
        self.key = key


class UploadNotFound(ObjectStoreError, LookupError):
    """The multipart upload does not exist (never created, completed or aborted)."""

    def __init__(self, key: str, upload_id: str) -> None:
        super().__init__(f"multipart upload {upload_id!r} for {key!r} not found")
        self.key = key
        self.upload_id = upload_id


class ChecksumMismatch(ObjectStoreError, ValueError):
    """Data did not match the sha256 it was declared with; nothing was stored."""


class InvalidPart(ObjectStoreError, ValueError):
    """A multipart part is invalid: bad number, unknown etag, wrong order or too small."""


def guess_content_type(key: str, content_type: str | None) -> str:
    """The given content type, else one guessed from the key's extension, else octet-stream.

    Both backends store the result explicitly so `stat` answers the same everywhere.
    """
    if content_type:
        return content_type
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def check_sha256_hex(value: str) -> str:
    """Return `value` lower-cased if it is a hex sha256 digest.

    Raises:
        ValueError: not 64 hex digits.
    """
    lowered = value.lower()
    if len(lowered) != 64 or any(ch not in "0123456789abcdef" for ch in lowered):
        raise ValueError(f"not a hex sha256 digest: {value!r}")
    return lowered


def check_part_number(number: int) -> None:
    """Raise `InvalidPart` unless `number` is a valid multipart part number."""
    if not 1 <= number <= MAX_PART_NUMBER:
        raise InvalidPart(f"part number must be between 1 and {MAX_PART_NUMBER}, not {number}")


class ObjectReader:
    """An opened object: its `info` and its content as an async iterator of chunks.

    Opening already checked that the object exists, so a server can send headers (size, type)
    before streaming. Iterate once; always `aclose()` (or use `async with`).
    """

    def __init__(
        self,
        info: ObjectInfo,
        chunks: AsyncGenerator[bytes, None],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._close = close
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        """Release the underlying file or connection; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._chunks.aclose()
        finally:
            await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ObjectStore(ABC):
    """Objects (recordings, panoramas, segments, manifests) under `/`-separated keys.

    Keys are validated by every method (`InvalidObjectKey`). Missing objects raise
    `ObjectNotFound`. Large objects are always streamed: nothing here reads a whole video into
    memory except `get`, which is meant for small objects such as manifests.
    """

    # ---- single objects -------------------------------------------------------------------

    @abstractmethod
    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
    ) -> ObjectInfo:
        """Store `data` at `key`, replacing any object there, and record its sha256.

        Args:
            key: object key.
            data: the whole content.
            content_type: media type; guessed from the key's extension when omitted.
            sha256: expected hex sha256; when given and the data differs, nothing is stored.

        Raises:
            ChecksumMismatch: `sha256` was given and does not match.
        """

    @abstractmethod
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> ObjectInfo:
        """Store an object from an async stream of chunks without holding it in memory.

        The object appears at `key` only when the stream is complete and (if `sha256` was given)
        verified; a failure part-way leaves any previous object at `key` untouched.

        Args:
            key: object key.
            chunks: the content, in chunks of any size.
            content_type: media type; guessed from the key's extension when omitted.
            sha256: expected hex sha256 of the whole stream.
            part_size: S3 multipart part size (at least 5 MiB); the file backend ignores it.

        Raises:
            ChecksumMismatch: `sha256` was given and does not match.
        """

    @abstractmethod
    async def open_read(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ObjectReader:
        """Open an object for a streamed read.

        Raises:
            ObjectNotFound: no object at `key` (raised here, before any chunk is read).
        """

    @abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Size, sha256, content type and modification time of one object.

        Raises:
            ObjectNotFound: no object at `key`.
        """

    @abstractmethod
    def list_prefix(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with `prefix` (plain string prefix), in key order.

        `sha256` and `content_type` are `None` in listings (S3 does not return them); call `stat`
        for one object's full info.
        """

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete one object; deleting a missing object is not an error (as on S3)."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; return how many were deleted.

        Raises:
            InvalidObjectKey: `prefix` is empty (wiping a whole store is never what a caller
                means) or invalid.
        """

    # ---- multipart ------------------------------------------------------------------------

    @abstractmethod
    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        checksum_parts: bool = True,
    ) -> str:
        """Start a multipart upload and return its upload id.

        Args:
            key: object key.
            content_type: media type; guessed from the key's extension when omitted.
            sha256: the whole object's hex sha256 when the uploader knows it (edge boxes do); it
                is recorded so `stat` returns it. The file backend also verifies it on completion;
                on S3 it is recorded as declared and ingest verifies it while reading.
            checksum_parts: S3 only: announce that every part carries a SHA256 checksum (as
                `upload_part` sends). Pass `False` when clients upload the parts through
                `presign_part` URLs, which carry none: S3 refuses unchecksummed parts of an
                upload created with a checksum algorithm.
        """

    @abstractmethod
    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str | None = None
    ) -> PartInfo:
        """Upload one part (1 to 10,000); every part but the last must be at least 5 MiB.

        Args:
            key: object key of the upload.
            upload_id: from `create_multipart`.
            number: part number; uploading the same number again replaces the part.
            data: the part's content.
            sha256: expected hex sha256 of the part.

        Raises:
            ChecksumMismatch: `sha256` was given and does not match; the part is not stored.
            UploadNotFound: no such upload.
        """

    @abstractmethod
    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """Assemble the parts, in ascending part-number order, into the object at `key`.

        Raises:
            InvalidPart: a part is unknown, out of order, duplicated or too small.
            ChecksumMismatch: a declared sha256 does not match (file backend).
            UploadNotFound: no such upload.
        """

    @abstractmethod
    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts uploaded so far, in ascending part-number order.

        This is how an interrupted upload resumes: only the parts missing here are sent again.

        Raises:
            UploadNotFound: no such upload (never created, completed or aborted).
        """

    @abstractmethod
    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abandon an upload and free its parts; aborting a finished upload is not an error."""

    # ---- presigned URLs -------------------------------------------------------------------

    @abstractmethod
    async def presign_get(self, key: str, *, expires_in: int = 3600) -> str:
        """A URL that lets anyone holding it download the object for `expires_in` seconds."""

    @abstractmethod
    async def presign_put(
        self, key: str, *, expires_in: int = 3600, content_type: str | None = None
    ) -> str:
        """A URL that lets anyone holding it upload the object with one HTTP PUT.

        When `content_type` is given the uploader must send the same `Content-Type` header.
        """

    @abstractmethod
    async def presign_part(
        self, key: str, upload_id: str, number: int, *, expires_in: int = 3600
    ) -> str:
        """A URL that accepts one HTTP PUT of part `number` of a multipart upload.

        The body of the PUT is the part's bytes; a 2xx answer (with an `ETag` header) means the
        part is stored. Nothing is checked against the store here: an unknown upload fails at
        the PUT.

        Raises:
            InvalidPart: `number` is not a valid part number.
            ValueError: `expires_in` is not positive.
        """

    # ---- lifecycle ------------------------------------------------------------------------

    @abstractmethod
    async def check(self) -> None:
        """Raise if the store is unreachable or unusable (used by `/readyz`)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- conveniences built on the primitives ---------------------------------------------

    async def get(self, key: str) -> bytes:
        """The whole content of a small object (manifests, JSON); stream videos instead.

        Raises:
            ObjectNotFound: no object at `key`.
        """
        async with await self.open_read(key) as reader:
            return b"".join([chunk async for chunk in reader])

    async def read_stream(
        self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """Iterate over an object's content in chunks of at most `chunk_size` bytes.

        Raises:
            ObjectNotFound: no object at `key` (on the first iteration).
        """
        async with await self.open_read(key, chunk_size=chunk_size) as reader:
            async for chunk in reader:
                yield chunk

    async def exists(self, key: str) -> bool:
        """Whether an object exists at `key`."""
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def upload_file(
        self,
        key: str,
        path: str | os.PathLike[str],
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> ObjectInfo:
        """Upload a local file in chunks (multipart on S3) and record its sha256.

        Raises:
            FileNotFoundError: `path` does not exist.
            ChecksumMismatch: `sha256` was given and does not match the file.
        """
        # Open before streaming so a missing file fails before any upload starts.
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            return await self.put_stream(
                key,
                _read_file_chunks(handle, chunk_size),
                content_type=content_type,
                sha256=sha256,
                part_size=part_size,
            )
        finally:
            await asyncio.to_thread(handle.close)

    async def download_file(
        self, key: str, path: str | os.PathLike[str], *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> ObjectInfo:
        """Download an object into a local file in chunks, verifying its recorded sha256.

        The file is written next to `path` under a temporary name and renamed into place, so
        `path` never holds a partial download.

        Raises:
            ObjectNotFound: no object at `key`.
            ChecksumMismatch: the content does not match the sha256 the store recorded.
        """
        target = Path(path)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        async with await self.open_read(key, chunk_size=chunk_size) as reader:
            handle = await asyncio.to_thread(open, temp, "wb")
            try:
                try:
                    async for chunk in reader:
                        digest.update(chunk)
                        await asyncio.to_thread(handle.write, chunk)
                finally:
                    await asyncio.to_thread(handle.close)
                if reader.info.sha256 is not None and digest.hexdigest() != reader.info.sha256:
                    raise ChecksumMismatch(
                        f"downloaded {key!r} has sha256 {digest.hexdigest()}, "
                        f"store recorded {reader.info.sha256}"
                    )
                await asyncio.to_thread(os.replace, temp, target)
            except BaseException:
                await asyncio.to_thread(temp.unlink, missing_ok=True)
                raise
        return reader.info


async def _read_file_chunks(handle: BinaryIO, chunk_size: int) -> AsyncGenerator[bytes, None]:
    """Read an open binary file in chunks on a worker thread, so the event loop never blocks."""
    while chunk := await asyncio.to_thread(handle.read, chunk_size):
        yield chunk
