"""Serve the file object store's signed URLs: `GET` and `PUT /objects/{key}`.

With S3, presigned URLs point at S3 itself; with the file backend they point here, signed with
HMAC-SHA256 over (method, key, expiry) by `polyvision.storage.objects.signing`. The request
itself carries the authorisation, so these routes need no user session.

A `PUT` with `uploadId` and `partNumber` (S3's own parameter names) uploads one part of a
multipart upload, signed over (key, upload id, part number, expiry); it answers with the part's
`ETag` like S3's UploadPart. A part of an upload session must be exactly as long as the
session's declared file size implies: a longer body is refused with 413 as soon as it passes
that length (or at once by its `Content-Length`), a shorter one with 422, and neither is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.background import BackgroundTask

from api.ingest.service import expected_part_length
from api.problems import PROBLEM_MEDIA_TYPE, problem
from polyvision.settings import Settings
from polyvision.storage.objects import (
    ChecksumMismatch,
    FileObjectStore,
    InvalidObjectKey,
    InvalidPart,
    InvalidSignature,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    UploadNotFound,
    verify_object_signature,
    verify_part_signature,
)

router = APIRouter(tags=["objects"])

# Same header (and base64 encoding) S3 uses, so an uploader sends one thing to either backend.
CHECKSUM_HEADER = "x-amz-checksum-sha256"

_PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": HTTPStatus(status).phrase}
    for status in (400, 403, 404, 409)
}
_PUT_PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    **_PROBLEM_RESPONSES,
    **{
        status: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": HTTPStatus(status).phrase}
        for status in (413, 422)
    },
}


async def get_object_store(request: Request) -> ObjectStore:
    """The object store the app's lifespan put on `app.state.objects` (`async`, though it does
    no I/O, so FastAPI calls it inline rather than in its thread pool)."""
    store = request.app.state.objects
    if not isinstance(store, ObjectStore):
        raise RuntimeError("app.state.objects is not an ObjectStore; check the app's lifespan")
    return store


async def get_signing_secret(request: Request) -> bytes:
    """The HMAC secret that signs object URLs, from `app.state.settings`."""
    settings: Settings = request.app.state.settings
    return settings.secret


ObjectStoreDep = Annotated[ObjectStore, Depends(get_object_store)]
SigningSecretDep = Annotated[bytes, Depends(get_signing_secret)]


def _refusal(
    request: Request,
    key: str,
    secret: bytes,
    method: str | None,
    expires: str | None,
    sig: str | None,
) -> JSONResponse | None:
    """A 403 problem unless the query authorises this request's method on `key`."""
    if expires is None or sig is None:
        return problem(403, "missing signature: expires and sig are required")
    if method is not None and method.upper() != request.method:
        return problem(403, f"URL is signed for {method.upper()}, not {request.method}")
    try:
        expires_at = int(expires)
    except ValueError:
        return problem(403, "malformed expires")
    try:
        # The request's own method is verified, not the query's, so a GET URL cannot be
        # replayed as a PUT.
        verify_object_signature(secret, key, request.method, expires_at, sig, time.time())
    except InvalidSignature as exc:
        return problem(403, str(exc))
    return None


def _part_refusal(
    key: str,
    secret: bytes,
    upload_id: str,
    number: int,
    expires: str | None,
    sig: str | None,
) -> JSONResponse | None:
    """A 403 problem unless the query authorises this `PUT` of one part."""
    if expires is None or sig is None:
        return problem(403, "missing signature: expires and sig are required")
    try:
        expires_at = int(expires)
    except ValueError:
        return problem(403, "malformed expires")
    try:
        verify_part_signature(secret, key, upload_id, number, expires_at, sig, time.time())
    except InvalidSignature as exc:
        return problem(403, str(exc))
    return None


class PartLengthError(ValueError):
    """A part's body is not the length its upload session declared; nothing was stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _too_large(number: int, expected: int) -> PartLengthError:
    return PartLengthError(
        413, f"part {number} must be {expected} bytes; the body is longer (nothing was stored)"
    )


async def _exactly(
    chunks: AsyncIterator[bytes], number: int, expected: int
) -> AsyncIterator[bytes]:
    """``chunks``, refused (`PartLengthError`) as soon as they pass ``expected`` bytes, or at
    their end when they fall short: the store then keeps nothing of them."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > expected:
            raise _too_large(number, expected)
        yield chunk
    if size != expected:
        raise PartLengthError(
            422, f"part {number} has {size} bytes, expected {expected} (nothing was stored)"
        )


async def _with_sha256(
    chunks: AsyncIterator[bytes], number: int, expected_hex: str
) -> AsyncIterator[bytes]:
    """``chunks``, refused (`PartLengthError` 400) at their end when their sha256 is not
    ``expected_hex``: the store keeps a part only once its body ended without an error."""
    digest = hashlib.sha256()
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != expected_hex:
        raise PartLengthError(
            400, f"part {number} does not match its {CHECKSUM_HEADER} (nothing was stored)"
        )


def _checksum_hex(request: Request) -> str | None:
    """The request's `x-amz-checksum-sha256` as hex; None without one.

    Raises:
        ValueError: The header is not a base64 sha256 digest.
    """
    checksum = request.headers.get(CHECKSUM_HEADER)
    if checksum is None:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{CHECKSUM_HEADER} must be a base64 sha256 digest")
    return raw.hex()


async def _expected_length(request: Request, key: str, upload_id: str, number: int) -> int | None:
    """The length an upload session declared for this part; None for an upload of no session."""
    sessions: async_sessionmaker[AsyncSession] | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        return None  # an app serving only the object store has no upload sessions
    # A session of its own, closed before the body streams: a part may take minutes.
    async with sessions() as db:
        return await expected_part_length(db, key, upload_id, number)


async def _put_part(
    key: str, request: Request, store: ObjectStore, upload_id: str, number: int
) -> Response:
    """Store one part; a part of an upload session must have the length its declared file
    size implies (413 when longer, 422 when shorter), checked before anything is stored."""
    if not isinstance(store, FileObjectStore):
        # Part URLs of other backends point at the backend itself, never here.
        return problem(404, "this object store does not serve part uploads")
    chunks: AsyncIterator[bytes] = request.stream()
    try:
        checksum = _checksum_hex(request)
    except ValueError as exc:
        return problem(400, str(exc))
    if checksum is not None:
        chunks = _with_sha256(chunks, number, checksum)
    expected = await _expected_length(request, key, upload_id, number)
    if expected is not None:
        if expected <= 0:
            return problem(422, f"part {number} is beyond the file's last part")
        declared_length = request.headers.get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > expected:
            refusal = _too_large(number, expected)
            return problem(refusal.status, str(refusal))
        chunks = _exactly(chunks, number, expected)
    try:
        part = await store.put_part_stream(key, upload_id, number, chunks)
    except PartLengthError as exc:
        return problem(exc.status, str(exc))
    except InvalidObjectKey as exc:
        return problem(400, str(exc))
    except UploadNotFound:
        return problem(404, f"no multipart upload {upload_id!r} for {key!r}")
    except InvalidPart as exc:
        return problem(400, str(exc))
    body = {"number": part.number, "size": part.size, "sha256": part.sha256}
    return JSONResponse(body, headers={"ETag": f'"{part.etag}"'})


async def _stream(reader: ObjectReader) -> AsyncIterator[bytes]:
    try:
        async for chunk in reader:
            yield chunk
    finally:
        await reader.aclose()


@router.get(
    "/objects/{key:path}",
    response_class=StreamingResponse,
    responses=_PROBLEM_RESPONSES,
    summary="Download an object through a signed URL",
)
async def get_object(
    key: str,
    request: Request,
    store: ObjectStoreDep,
    secret: SigningSecretDep,
    method: str | None = None,
    expires: str | None = None,
    sig: str | None = None,
) -> Response:
    """Stream the object at `key` in chunks when the signature allows it."""
    if (refused := _refusal(request, key, secret, method, expires, sig)) is not None:
        return refused
    try:
        reader = await store.open_read(key)
    except ObjectNotFound:
        return problem(404, f"no object at {key!r}")
    except InvalidObjectKey as exc:
        return problem(400, str(exc))
    info = reader.info
    headers = {"Content-Length": str(info.size)}
    if info.sha256 is not None:
        headers["ETag"] = f'"{info.sha256}"'
        digest = base64.b64encode(bytes.fromhex(info.sha256)).decode()
        headers["Repr-Digest"] = f"sha-256=:{digest}:"
    return StreamingResponse(
        _stream(reader),
        media_type=info.content_type or "application/octet-stream",
        headers=headers,
        # Closes the file even when the client disconnects before the stream starts.
        background=BackgroundTask(reader.aclose),
    )


@router.put(
    "/objects/{key:path}",
    responses=_PUT_PROBLEM_RESPONSES,
    summary="Upload an object through a signed URL",
)
async def put_object(
    key: str,
    request: Request,
    store: ObjectStoreDep,
    secret: SigningSecretDep,
    method: str | None = None,
    expires: str | None = None,
    sig: str | None = None,
    upload_id: Annotated[str | None, Query(alias="uploadId")] = None,
    part_number: Annotated[int | None, Query(alias="partNumber")] = None,
) -> Response:
    """Stream the request body into the object at `key` when the signature allows it.

    An `x-amz-checksum-sha256` header (base64 sha256, as S3 takes it) makes the upload fail with
    400 and store nothing unless the body matches. With `uploadId` and `partNumber` the body is
    one part of that multipart upload instead.
    """
    if upload_id is not None or part_number is not None:
        if upload_id is None or part_number is None:
            return problem(403, "a part URL needs both uploadId and partNumber")
        refused = _part_refusal(key, secret, upload_id, part_number, expires, sig)
        if refused is not None:
            return refused
        return await _put_part(key, request, store, upload_id, part_number)
    if (refused := _refusal(request, key, secret, method, expires, sig)) is not None:
        return refused
    try:
        expected = _checksum_hex(request)
    except ValueError as exc:
        return problem(400, str(exc))
    try:
        info = await store.put_stream(
            key,
            request.stream(),
            content_type=request.headers.get("content-type"),
            sha256=expected,
        )
    except InvalidObjectKey as exc:
        return problem(400, str(exc))
    except ChecksumMismatch as exc:
        return problem(400, str(exc))
    except ObjectStoreError as exc:
        return problem(409, str(exc))
    body = {
        "key": info.key,
        "size": info.size,
        "sha256": info.sha256,
        "content_type": info.content_type,
    }
    headers = {"ETag": f'"{info.sha256}"'} if info.sha256 else None
    return JSONResponse(body, headers=headers)
