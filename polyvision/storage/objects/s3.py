"""Object store on S3 or an S3-compatible server (MinIO, Ceph) through aioboto3.

Whole-object sha256: S3's own SHA256 checksums cover single PUTs and each multipart part (the
server verifies them), but a multipart object's S3 checksum is a checksum of part checksums, not
the sha256 of its bytes. So the plain sha256 is recorded as user metadata (`x-amz-meta-sha256`)
whenever it is known before the upload starts, and otherwise, for streams too large for one PUT,
as the object tag `sha256` right after completion (tags can be set later; metadata cannot
without copying the object). `stat` reads either.

Transient faults (500, 503, timeouts) are retried by botocore, request by request. What it does
not retry is handled here: an error document or a listing that breaks off is read where botocore
retries it (`_WholeAnswerSession`), an object's content that breaks off resumes with a ranged
GET, and the stray upload a retried `CreateMultipartUpload` can leave is aborted.
`Expect: 100-continue` is not sent, because aiohttp loses a request's read timeout to that
interim answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

import aioboto3
import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from botocore.endpoint import DEFAULT_TIMEOUT
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.handlers import add_expect_header

from polyvision.fencing import ensure_current_attempt
from polyvision.storage.objects.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    MIN_PART_SIZE,
    ChecksumMismatch,
    InvalidObjectKey,
    InvalidPart,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    PartInfo,
    UploadNotFound,
    check_part_number,
    check_sha256_hex,
    guess_content_type,
)
from polyvision.storage.objects.object_keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = structlog.get_logger(__name__)

SHA256_META: Final = "sha256"
SHA256_TAG: Final = "sha256"
_DELETE_BATCH: Final = 1000  # DeleteObjects accepts at most 1000 keys per request

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_BAD_PART = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_BAD_DIGEST = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
_READ_RESUMES: Final = 5  # a body that breaks off this many times running, with no byte between
# What a body read raises when the connection stalls or drops (aiobotocore wraps some of
# aiohttp's errors in botocore's, not all).
_STREAM_ERRORS: Final = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


# The S3 sub-resources this store reads with a GET whose answer is a small XML document, not an
# object's content: ListObjectsV2, GetObjectTagging, ListParts, ListMultipartUploads.
_XML_GETS: Final = frozenset({"list-type", "tagging", "uploadId", "uploads"})


def _streamed(method: str, url: str, status: int) -> bool:
    """Whether botocore hands an answer's body out as a stream (an object's content) rather
    than reading it in full itself (errors, listings, every other XML answer)."""
    if status >= 300 or method != "GET":
        return False
    return not _XML_GETS & parse_qs(urlsplit(url).query, keep_blank_values=True).keys()


class _WholeAnswerSession(AIOHTTPSession):
    """aiobotocore's aiohttp transport, reading every answer botocore would read in full itself
    before handing it over.

    aiobotocore reads such a body after its retry loop's guard: a body that stalls or breaks off
    there (a 404's error document, a listing) escaped as a raw aiohttp error and was never
    retried. Read here, inside `send`, the same failure is botocore's `ReadTimeoutError` or
    `ResponseStreamingError`, which its retries handle like any other failed try.
    """

    async def send(self, request: Any) -> Any:
        response: Any = await super().send(request)
        if not _streamed(request.method, request.url, response.status_code):
            try:
                await response.content  # cached: botocore's own read gets it from memory
            except _STREAM_ERRORS as exc:
                response.raw.close()
                if isinstance(exc, asyncio.TimeoutError):
                    raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
                raise ResponseStreamingError(error=exc) from exc
        return response


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translate(key: str, upload_id: str | None = None) -> Iterator[None]:
    """Turn botocore errors into the store's own exceptions."""
    try:
        yield
    except ClientError as exc:
        code = _error_code(exc)
        if code in _NOT_FOUND:
            raise ObjectNotFound(key) from exc
        if code == "NoSuchUpload":
            raise UploadNotFound(key, upload_id or "") from exc
        if code in _BAD_PART:
            raise InvalidPart(f"{key!r}: {exc}") from exc
        if code in _BAD_DIGEST:
            raise ChecksumMismatch(f"{key!r}: {exc}") from exc
        raise ObjectStoreError(f"S3 request for {key!r} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise ObjectStoreError(f"S3 request for {key!r} failed: {exc}") from exc


def _completed_part(part: PartInfo) -> CompletedPartTypeDef:
    entry: CompletedPartTypeDef = {"PartNumber": part.number, "ETag": part.etag}
    if part.sha256 is not None:
        entry["ChecksumSHA256"] = _b64(bytes.fromhex(part.sha256))
    return entry


class S3ObjectStore(ObjectStore):
    """Objects in one S3 bucket. Credentials come from the usual AWS chain (env, profile, role).

    The client is created on first use, on the running event loop, and released by `close()`.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        """Configure the store; no connection is made until the first request.

        Args:
            bucket: bucket name.
            endpoint_url: S3-compatible endpoint (MinIO, Ceph, moto); AWS when omitted.
            region: region name; the AWS default chain when omitted.
            connect_timeout: seconds to wait for a connection; botocore's 60 when omitted.
            read_timeout: seconds to wait for each read of an answer (headers or a body chunk)
                before the request counts as failed; botocore's 60 when omitted.
        """
        if not bucket:
            raise ValueError("S3 object store needs a bucket name")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value}")
        self.bucket = bucket
        self._endpoint_url = endpoint_url
        self._region = region
        self._config = AioConfig(
            signature_version="s3v4",
            # Custom endpoints rarely have wildcard DNS for virtual-hosted buckets.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # botocore >= 1.36 adds CRC checksums to every request by default, which several
            # S3-compatible servers reject; this store sends SHA256 explicitly where it wants one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"},
            http_session_cls=_WholeAnswerSession,
            connect_timeout=DEFAULT_TIMEOUT if connect_timeout is None else connect_timeout,
            read_timeout=DEFAULT_TIMEOUT if read_timeout is None else read_timeout,
        )
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, endpoint_url={self._endpoint_url!r})"

    async def _s3(self) -> S3Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    session = aioboto3.Session()
                    client: S3Client = await stack.enter_async_context(
                        session.client(
                            "s3",
                            endpoint_url=self._endpoint_url,
                            region_name=self._region,
                            config=self._config,
                        )
                    )
                    # botocore asks for a "100 Continue" before every body it sends (PUT,
                    # POST). When that interim answer arrives after aiohttp has started the
                    # read timeout, aiohttp drops the timeout, and the request then waits for
                    # its real answer with none: a stalled S3 would hang it for good. Sending
                    # the body at once costs a wasted upload only when S3 refuses it.
                    client.meta.events.unregister("before-call.s3", add_expect_header)
                    self._stack, self._client = stack, client
        return self._client

    # ---- helpers --------------------------------------------------------------------------

    async def _sha256_of(self, key: str, metadata: dict[str, str]) -> str | None:
        if SHA256_META in metadata:
            return metadata[SHA256_META]
        s3 = await self._s3()
        with _translate(key):
            tagging = await s3.get_object_tagging(Bucket=self.bucket, Key=key)
        for tag in tagging.get("TagSet", []):
            if tag.get("Key") == SHA256_TAG:
                return tag.get("Value")
        return None

    @staticmethod
    def _check_parts(parts: Sequence[PartInfo]) -> None:
        if not parts:
            raise InvalidPart("a multipart upload needs at least one part")
        previous = 0
        for index, part in enumerate(parts):
            check_part_number(part.number)
            if part.number <= previous:
                raise InvalidPart("parts must be listed in strictly ascending part-number order")
            previous = part.number
            # Checked here too so both backends fail the same way, before any request.
            if index < len(parts) - 1 and part.size < MIN_PART_SIZE:
                raise InvalidPart(
                    f"part {part.number} is {part.size} bytes; all parts but the last need "
                    f"at least {MIN_PART_SIZE}"
                )

    async def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytes, digest: bytes
    ) -> PartInfo:
        s3 = await self._s3()
        with _translate(key, upload_id):
            response = await s3.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumSHA256=_b64(digest),
            )
        return PartInfo(number=number, etag=response["ETag"], size=len(data), sha256=digest.hex())

    async def _complete(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        s3 = await self._s3()
        with _translate(key, upload_id):
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [_completed_part(part) for part in parts]},
            )

    # ---- single objects -------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
    ) -> ObjectInfo:
        await ensure_current_attempt()
        validate_key(key)
        digest = hashlib.sha256(data).digest()
        if sha256 is not None and check_sha256_hex(sha256) != digest.hex():
            raise ChecksumMismatch(f"{key!r}: data has sha256 {digest.hex()}, expected {sha256}")
        content_type = guess_content_type(key, content_type)
        s3 = await self._s3()
        with _translate(key):
            await s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={SHA256_META: digest.hex()},
                # S3 verifies the body against this, catching corruption in transit.
                ChecksumSHA256=_b64(digest),
            )
        # PutObject does not return Last-Modified; the local clock is close enough here.
        return ObjectInfo(key, len(data), digest.hex(), content_type, datetime.now(UTC))

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> ObjectInfo:
        await ensure_current_attempt()
        validate_key(key)
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}, not {part_size}")
        expected = check_sha256_hex(sha256) if sha256 is not None else None
        content_type = guess_content_type(key, content_type)
        whole = hashlib.sha256()
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[PartInfo] = []
        try:
            async for chunk in chunks:
                whole.update(chunk)
                buffer += chunk
                # Only one part is ever buffered: memory stays at about part_size.
                while len(buffer) >= part_size:
                    if upload_id is None:
                        upload_id = await self.create_multipart(
                            key, content_type=content_type, sha256=expected
                        )
                    part = bytes(buffer[:part_size])
                    del buffer[:part_size]
                    parts.append(
                        await self._upload_part(
                            key, upload_id, len(parts) + 1, part, hashlib.sha256(part).digest()
                        )
                    )
            if upload_id is None:
                # Small enough for one PUT, which also records the sha256 as metadata.
                return await self.put(
                    key, bytes(buffer), content_type=content_type, sha256=expected
                )
            if buffer:
                last = bytes(buffer)
                parts.append(
                    await self._upload_part(
                        key, upload_id, len(parts) + 1, last, hashlib.sha256(last).digest()
                    )
                )
            if expected is not None and whole.hexdigest() != expected:
                raise ChecksumMismatch(
                    f"{key!r}: stream has sha256 {whole.hexdigest()}, expected {expected}"
                )
            await self._complete(key, upload_id, parts)
        except BaseException:
            if upload_id is not None:
                # Without an abort the parts would be billed until a lifecycle rule cleans up.
                await self.abort_multipart(key, upload_id)
            raise
        if expected is None:
            s3 = await self._s3()
            with _translate(key):
                await s3.put_object_tagging(
                    Bucket=self.bucket,
                    Key=key,
                    Tagging={"TagSet": [{"Key": SHA256_TAG, "Value": whole.hexdigest()}]},
                )
        return await self.stat(key)

    async def open_read(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ObjectReader:
        validate_key(key)
        s3 = await self._s3()
        with _translate(key):
            response = await s3.get_object(Bucket=self.bucket, Key=key)
        # botocore retries a request until its answer's headers arrive, never a body that
        # breaks off later (a stalled or dropped connection): the read resumes from where it
        # stopped with a ranged GET, pinned to the same object by its ETag.
        current = {"body": response["Body"]}
        try:
            info = ObjectInfo(
                key=key,
                size=response["ContentLength"],
                sha256=await self._sha256_of(key, response.get("Metadata", {})),
                content_type=response.get("ContentType"),
                modified=response["LastModified"].astimezone(UTC),
            )
        except BaseException:
            await current["body"].__aexit__(None, None, None)
            raise
        etag = response["ETag"]

        async def chunks() -> AsyncGenerator[bytes, None]:
            offset = 0
            failures = 0
            while True:
                try:
                    async for chunk in current["body"].iter_chunks(chunk_size):
                        offset += len(chunk)
                        failures = 0
                        yield chunk
                    return
                except _STREAM_ERRORS as exc:
                    failures += 1
                    if failures > _READ_RESUMES or offset >= info.size:
                        raise ObjectStoreError(
                            f"S3 read of {key!r} broke off at byte {offset}: {exc!r}"
                        ) from exc
                await current["body"].__aexit__(None, None, None)
                with _translate(key):
                    resumed = await s3.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={offset}-", IfMatch=etag
                    )
                current["body"] = resumed["Body"]

        async def close() -> None:
            await current["body"].__aexit__(None, None, None)

        return ObjectReader(info, chunks(), close)

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        s3 = await self._s3()
        with _translate(key):
            response = await s3.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            sha256=await self._sha256_of(key, response.get("Metadata", {})),
            content_type=response.get("ContentType"),
            modified=response["LastModified"].astimezone(UTC),
        )

    async def list_prefix(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        with _translate(prefix):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=item["Size"],
                        sha256=None,
                        content_type=None,
                        modified=item["LastModified"].astimezone(UTC),
                    )

    async def delete(self, key: str) -> None:
        await ensure_current_attempt()
        validate_key(key)
        s3 = await self._s3()
        with _translate(key):
            await s3.delete_object(Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        await ensure_current_attempt()
        validate_prefix(prefix)
        if not prefix:
            raise InvalidObjectKey("refusing to delete with an empty prefix (the whole store)")
        s3 = await self._s3()
        batch: list[str] = []
        deleted = 0

        async def flush() -> None:
            nonlocal deleted
            with _translate(prefix):
                response = await s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            if errors := response.get("Errors"):
                raise ObjectStoreError(f"deleting under {prefix!r} failed for {errors[:3]}")
            deleted += len(batch)
            batch.clear()

        async for info in self.list_prefix(prefix):
            batch.append(info.key)
            if len(batch) == _DELETE_BATCH:
                await flush()
        if batch:
            await flush()
        return deleted

    # ---- multipart ------------------------------------------------------------------------

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        checksum_parts: bool = True,
    ) -> str:
        validate_key(key)
        metadata = {SHA256_META: check_sha256_hex(sha256)} if sha256 is not None else {}
        s3 = await self._s3()
        started = time.monotonic()
        with _translate(key):
            if checksum_parts:
                response = await s3.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    ContentType=guess_content_type(key, content_type),
                    Metadata=metadata,
                    ChecksumAlgorithm="SHA256",
                )
            else:
                response = await s3.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    ContentType=guess_content_type(key, content_type),
                    Metadata=metadata,
                )
        upload_id = response["UploadId"]
        if response["ResponseMetadata"].get("RetryAttempts", 0) > 0:
            await self._abort_strays(key, upload_id, time.monotonic() - started)
        return upload_id

    async def _abort_strays(self, key: str, upload_id: str, within_s: float) -> None:
        """Abort the uploads of ``key`` that earlier tries of the create that made ``upload_id``
        left behind.

        Creating an upload is not idempotent: when S3 carried out a try but its answer was lost
        (a timeout), botocore's retry creates a second upload and nobody knows the first one's
        id, so its parts would be billed until a lifecycle rule removes them. The strays are the
        other open uploads of exactly this key initiated at most ``within_s`` (plus a second of
        clock granularity) before ours, by S3's own clock. Another writer that started an upload
        of the very same key within that moment would lose it (and fail with UploadNotFound);
        none does: uploaded recordings' keys carry their upload's id, and an activity's outputs
        are written by one attempt at a time (`polyvision.fencing`). Best effort: a failure here
        is logged, not raised, since the upload itself is sound.
        """
        s3 = await self._s3()
        try:
            uploads = []
            with _translate(key):
                paginator = s3.get_paginator("list_multipart_uploads")
                async for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                    uploads += [u for u in page.get("Uploads", []) if u.get("Key") == key]
            ours = next((u for u in uploads if u.get("UploadId") == upload_id), None)
            if ours is None or "Initiated" not in ours:
                return
            since = ours["Initiated"] - timedelta(seconds=within_s + 1.0)
            for upload in uploads:
                stray = upload.get("UploadId")
                if stray and stray != upload_id and upload.get("Initiated", since) >= since:
                    await self.abort_multipart(key, stray)
        except ObjectStoreError as exc:
            log.warning("objects.stray_upload_not_aborted", key=key, error=str(exc))

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str | None = None
    ) -> PartInfo:
        validate_key(key)
        check_part_number(number)
        digest = hashlib.sha256(data).digest()
        # Checked locally too: not every S3-compatible server verifies part checksums.
        if sha256 is not None and check_sha256_hex(sha256) != digest.hex():
            raise ChecksumMismatch(
                f"{key!r} part {number}: data has sha256 {digest.hex()}, expected {sha256}"
            )
        return await self._upload_part(key, upload_id, number, data, digest)

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        await ensure_current_attempt()
        validate_key(key)
        self._check_parts(parts)
        await self._complete(key, upload_id, parts)
        return await self.stat(key)

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        validate_key(key)
        s3 = await self._s3()
        paginator = s3.get_paginator("list_parts")
        parts: list[PartInfo] = []
        with _translate(key, upload_id):
            async for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                for item in page.get("Parts", []):
                    checksum = item.get("ChecksumSHA256")
                    parts.append(
                        PartInfo(
                            number=item["PartNumber"],
                            etag=item["ETag"],
                            size=item["Size"],
                            sha256=base64.b64decode(checksum).hex() if checksum else None,
                        )
                    )
        parts.sort(key=lambda part: part.number)
        return parts

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        validate_key(key)
        s3 = await self._s3()
        try:
            with _translate(key, upload_id):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except UploadNotFound:
            pass

    # ---- presigned URLs -------------------------------------------------------------------

    async def presign_get(self, key: str, *, expires_in: int = 3600) -> str:
        validate_key(key)
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in}")
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    async def presign_put(
        self, key: str, *, expires_in: int = 3600, content_type: str | None = None
    ) -> str:
        validate_key(key)
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in}")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        s3 = await self._s3()
        return await s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)

    async def presign_part(
        self, key: str, upload_id: str, number: int, *, expires_in: int = 3600
    ) -> str:
        validate_key(key)
        check_part_number(number)
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in}")
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=expires_in,
        )

    # ---- lifecycle ------------------------------------------------------------------------

    async def check(self) -> None:
        s3 = await self._s3()
        try:
            await s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ObjectStoreError(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from exc

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
