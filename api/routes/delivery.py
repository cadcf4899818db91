"""Delivery: signed playback URLs for a match's streams, and the route that serves them.

``GET /orgs/{org_id}/matches/{match_id}/playback`` checks the caller's membership once and
hands out absolute URLs of the HLS master playlist, the DASH MPD, the poster, the thumbnails'
WebVTT index and the panorama's streams, all carrying one token scoped to that revision's
``hls/`` folder (`api.security.playback`); with ``?view=NAME``, of a re-rendered view of the
revision (`api.routes.views`), scoped to that view's folder ``hls/views/NAME/``.
``GET /delivery/{token}/{key}`` then needs no user session and no database: the token alone
decides, so a CDN in front of it can fetch on the viewer's behalf. Manifests (HLS playlists,
DASH MPDs, the WebVTT index) are rewritten so every URL in them carries the token; segments
and images are streamed from the object store with ``ETag`` and single-range support.

Refusals: a bad or expired token is 403; a key outside the token's folder is 404 whether it
exists or not, so a token for one match (or organization) reveals nothing about another.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.background import BackgroundTask

from activities.encode.contracts import (
    DASH_MANIFEST,
    MASTER_PLAYLIST,
    MINIMAP_FOLDER,
    PANORAMA_FOLDER,
    POSTER,
    THUMBNAILS_VTT,
)
from api.catalog import load_match
from api.deps import DbSession, ObjectsDep, SettingsDep
from api.openapi import problem_responses
from api.problems import problem
from api.security.playback import (
    PLAYBACK_TOKEN_LIFETIME,
    ExpiredPlaybackToken,
    InvalidPlaybackToken,
    PlaybackGrant,
    PlaylistError,
    create_token,
    delivery_url,
    key_in_scope,
    playback_prefix,
    rewrite_dash_manifest,
    rewrite_playlist,
    rewrite_vtt,
    verify_token,
)
from api.security.tenancy import CanView
from polyvision.storage.objects import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
)
from workflows.types import VIEW_NAME_PATTERN

router = APIRouter(tags=["delivery"])

log = structlog.get_logger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
DASH_TYPE = "application/dash+xml"
VTT_TYPE = "text/vtt"
# What may be fetched through a token, by extension; anything else in the folder is not
# part of the published stream and answers 404 like a missing key.
CONTENT_TYPES = {
    ".m3u8": PLAYLIST_TYPE,
    ".mpd": DASH_TYPE,
    ".vtt": VTT_TYPE,
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
}
# The manifests, rewritten per token so every URL in them carries it.
_REWRITERS: dict[str, Callable[[str, str, str, str, str], str]] = {
    PLAYLIST_TYPE: rewrite_playlist,
    DASH_TYPE: rewrite_dash_manifest,
    VTT_TYPE: rewrite_vtt,
}
# Segments never change under a key (a reprocess writes a new revision folder), so caches may
# keep them, but never past the token in their URL: a cached copy must not outlive the grant.
# Playlists are rewritten per token and kept briefly.
SEGMENT_MAX_AGE_S = 31_536_000


def segment_cache_control(expires_at: int, now: float) -> str:
    """Immutable, cached at most until the token expires (and at most a year)."""
    max_age = max(0, min(SEGMENT_MAX_AGE_S, int(expires_at - now)))
    return f"public, max-age={max_age}, immutable"


PLAYLIST_CACHE_CONTROL = "public, max-age=60"
NO_STORE = {"Cache-Control": "no-store"}

_NOT_FOUND = "Not found."

_EXAMPLE_URL = (
    "https://api.example.com/delivery/MQpvcmdz...Ygo.3q2-7w/orgs/5f0c.../matches/9b1e.../1/hls/"
)
_PLAYBACK_EXAMPLE: dict[str, JsonValue] = {
    "master_url": _EXAMPLE_URL + MASTER_PLAYLIST,
    "dash_url": _EXAMPLE_URL + DASH_MANIFEST,
    "poster_url": _EXAMPLE_URL + POSTER,
    "thumbnails_url": _EXAMPLE_URL + THUMBNAILS_VTT,
    "panorama_master_url": f"{_EXAMPLE_URL}{PANORAMA_FOLDER}/{MASTER_PLAYLIST}",
    "panorama_dash_url": f"{_EXAMPLE_URL}{PANORAMA_FOLDER}/{DASH_MANIFEST}",
    "minimap_master_url": f"{_EXAMPLE_URL}{MINIMAP_FOLDER}/{MASTER_PLAYLIST}",
    "minimap_dash_url": f"{_EXAMPLE_URL}{MINIMAP_FOLDER}/{DASH_MANIFEST}",
    "expires_at": "2025-06-01T18:00:00Z",
    "revision": 1,
}


class Playback(BaseModel):
    """Where a viewer's player starts: the signed manifests of the current revision.

    Every URL carries the same token; the optional ones are null for a package that lacks
    them (a revision packaged before the ladder, or a view, which has no panorama of its own).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_PLAYBACK_EXAMPLE]})

    master_url: str = Field(description="The HLS master playlist.")
    dash_url: str | None = Field(default=None, description="The DASH MPD (same segments).")
    poster_url: str | None = Field(default=None, description="The poster image (JPEG).")
    thumbnails_url: str | None = Field(
        default=None,
        description="WebVTT index of the scrubbing thumbnails (sprite tiles, `#xywh=`).",
    )
    panorama_master_url: str | None = Field(
        default=None, description="HLS master playlist of the whole panorama, to pan and zoom."
    )
    panorama_dash_url: str | None = Field(
        default=None, description="DASH MPD of the whole panorama."
    )
    minimap_master_url: str | None = Field(
        default=None,
        description="HLS master playlist of the minimap (the match from above), in step with "
        "the virtual camera.",
    )
    minimap_dash_url: str | None = Field(default=None, description="DASH MPD of the minimap.")
    expires_at: datetime
    revision: int
    view: str | None = Field(
        default=None, description="The re-rendered view played, when one was asked for."
    )


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``first``..``last`` of an object."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


class RangeNotSatisfiable(ValueError):
    """A syntactically valid range that starts beyond the object's end."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for, or None to send the whole object.

    Headers we do not honour (another unit, several ranges, bad syntax) are ignored, as RFC
    9110 allows: the client then gets a plain 200 with everything.

    Raises:
        RangeNotSatisfiable: The range starts at or beyond ``size`` (or asks for 0 bytes).
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text or last_text):
        return None
    if not all(part.isascii() and part.isdigit() for part in (first_text or "0", last_text or "0")):
        return None
    if not first_text:  # suffix range: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(header)
    if last is None:
        last = size - 1
    return ByteRange(first, min(last, size - 1))


def etag_matches(header: str | None, etag: str | None) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110 says)."""
    if header is None or etag is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


@router.get(
    "/orgs/{org_id}/matches/{match_id}/playback",
    response_model=Playback,
    summary="Get a signed playback URL for a match",
    responses=problem_responses(401, 404, 409, 422),
)
async def get_playback(
    match_id: uuid.UUID,
    access: CanView,
    session: DbSession,
    objects: ObjectsDep,
    settings: SettingsDep,
    response: Response,
    view: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=VIEW_NAME_PATTERN,
            description=(
                "A re-rendered view of the match (`POST .../views`) instead of its own camera."
            ),
        ),
    ] = None,
) -> Playback:
    """The stream URLs of the match's published revision, signed for the caller.

    The HLS master playlist, and where the package has them the DASH MPD, the poster, the
    thumbnails' WebVTT index and the panorama's and the minimap's HLS and DASH manifests. The
    URLs work for `PLAYBACK_TOKEN_LIFETIME` (4 hours) for whoever holds them; every URL inside the
    manifests they lead to carries the same token. 409 until the match's rendition
    has been published. With ``view``, the master playlist of that view of the published
    revision, and a token for its folder only; 404 while the view has not finished (or was
    never asked for).
    """
    match = await load_match(session, access.organization_id, match_id)
    # The published revision keeps playing while a reprocess writes a newer one.
    revision = match.published_revision
    if revision is None:
        raise HTTPException(409, "The match has not been processed yet.")
    prefix = playback_prefix(str(match.organization_id), str(match.id), revision, view or "")
    master_key = prefix + MASTER_PLAYLIST
    # The packager writes the master playlist last, so when it exists everything it names
    # exists too; a published revision without it was cleaned up behind the catalog's back.
    if not await objects.exists(master_key):
        if view:
            raise HTTPException(404, f"The view {view!r} of this match has not been rendered.")
        raise HTTPException(409, "The match has not been processed yet.")
    # The rest of the package, where it has them (published before the master playlist).
    optional = [DASH_MANIFEST, POSTER, THUMBNAILS_VTT]
    if not view:  # the panorama is the revision's, outside a view's folder
        optional += [
            f"{folder}/{name}"
            for folder in (PANORAMA_FOLDER, MINIMAP_FOLDER)
            for name in (MASTER_PLAYLIST, DASH_MANIFEST)
        ]
    present = await asyncio.gather(*(objects.exists(prefix + name) for name in optional))
    found = {name for name, exists in zip(optional, present, strict=True) if exists}
    expires_at = int(time.time() + PLAYBACK_TOKEN_LIFETIME.total_seconds())
    token = create_token(settings.secret, prefix, str(access.user.id), expires_at)

    def url(name: str) -> str | None:
        return (
            delivery_url(settings.api_public_url, token, prefix + name) if name in found else None
        )

    # A bearer URL for this user: no cache may keep or share it.
    response.headers.update(NO_STORE)
    return Playback(
        master_url=delivery_url(settings.api_public_url, token, master_key),
        dash_url=url(DASH_MANIFEST),
        poster_url=url(POSTER),
        thumbnails_url=url(THUMBNAILS_VTT),
        panorama_master_url=url(f"{PANORAMA_FOLDER}/{MASTER_PLAYLIST}"),
        panorama_dash_url=url(f"{PANORAMA_FOLDER}/{DASH_MANIFEST}"),
        minimap_master_url=url(f"{MINIMAP_FOLDER}/{MASTER_PLAYLIST}"),
        minimap_dash_url=url(f"{MINIMAP_FOLDER}/{DASH_MANIFEST}"),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        revision=revision,
        view=view,
    )


_DELIVERY_RESPONSES = {
    **problem_responses(403, 404, 416),
    200: {
        "description": "A manifest (rewritten for the token), or a whole segment or image.",
        "content": {content_type: {} for content_type in sorted(set(CONTENT_TYPES.values()))},
    },
    206: {"description": "The requested byte range of a segment."},
    304: {"description": "The client's copy (If-None-Match) is current."},
}


@router.get(
    "/delivery/{token}/{key:path}",
    response_class=Response,
    summary="Fetch a playlist or segment through a playback token",
    responses=_DELIVERY_RESPONSES,
)
async def get_delivery(
    token: str, key: str, request: Request, objects: ObjectsDep, settings: SettingsDep
) -> Response:
    """Serve a playlist (rewritten so its URIs carry the token) or stream a segment.

    Segments honour a single ``Range`` (206, or 416 beyond the end) and ``If-None-Match``.
    """
    return await _deliver(token, key, request, objects, settings.secret, settings.api_public_url)


@router.head(
    "/delivery/{token}/{key:path}",
    response_class=Response,
    summary="Headers of a playlist or segment through a playback token",
    responses=_DELIVERY_RESPONSES,
)
async def head_delivery(
    token: str, key: str, request: Request, objects: ObjectsDep, settings: SettingsDep
) -> Response:
    """What ``GET`` would answer, without the body."""
    return await _deliver(token, key, request, objects, settings.secret, settings.api_public_url)


def _refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
    # An error must never be cached: a CDN holding a 404 or 403 for a URL would keep serving
    # it after the object appears or to a holder of a fresh token.
    return HTTPException(status, detail, headers={**NO_STORE, **(headers or {})})


def _grant(secret: bytes, token: str) -> PlaybackGrant:
    try:
        return verify_token(secret, token, time.time())
    except ExpiredPlaybackToken as exc:
        raise _refuse(403, "The playback token has expired; ask for a new playback URL.") from exc
    except InvalidPlaybackToken as exc:
        raise _refuse(403, "The playback token is invalid.") from exc


async def _deliver(
    token: str,
    key: str,
    request: Request,
    objects: ObjectStore,
    secret: bytes,
    base_url: str,
) -> Response:
    grant = _grant(secret, token)
    content_type = CONTENT_TYPES.get(PurePosixPath(key).suffix.lower())
    if content_type is None or not key_in_scope(grant.prefix, key):
        raise _refuse(404, _NOT_FOUND)
    if content_type in _REWRITERS:
        return await _manifest(request, objects, key, content_type, grant, token, base_url)
    return await _segment(request, objects, key, content_type, grant)


async def _manifest(
    request: Request,
    objects: ObjectStore,
    key: str,
    content_type: str,
    grant: PlaybackGrant,
    token: str,
    base_url: str,
) -> Response:
    try:
        data = await objects.get(key)
    except ObjectNotFound as exc:
        raise _refuse(404, _NOT_FOUND) from exc
    rewrite = _REWRITERS[content_type]
    try:
        text = data.decode("utf-8")
        body = rewrite(text, key, grant.prefix, base_url, token).encode("utf-8")
    except (UnicodeDecodeError, PlaylistError):
        # Our packager writes only relative names inside the folder: this is a bug in what
        # was published, not something the viewer can fix.
        log.exception("manifest cannot be served", key=key)
        return problem(500, "The playlist cannot be served.", headers=NO_STORE)
    etag = f'"{hashlib.sha256(body).hexdigest()}"'
    headers = {"Cache-Control": PLAYLIST_CACHE_CONTROL, "ETag": etag}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(body))
    content = b"" if request.method == "HEAD" else body
    return Response(content, media_type=content_type, headers=headers)


async def _segment(
    request: Request, objects: ObjectStore, key: str, content_type: str, grant: PlaybackGrant
) -> Response:
    try:
        # HEAD needs the size and checksum only; GET opens the object once for both.
        reader = None if request.method == "HEAD" else await objects.open_read(key)
        info = reader.info if reader is not None else await objects.stat(key)
    except ObjectNotFound as exc:
        raise _refuse(404, _NOT_FOUND) from exc
    try:
        cache_control = segment_cache_control(grant.expires_at, time.time())
        response = await _segment_response(request, info, content_type, reader, cache_control)
    except BaseException:
        if reader is not None:
            await reader.aclose()
        raise
    if reader is not None and not isinstance(response, StreamingResponse):
        await reader.aclose()
    return response


async def _segment_response(
    request: Request,
    info: ObjectInfo,
    content_type: str,
    reader: ObjectReader | None,
    cache_control: str,
) -> Response:
    etag = f'"{info.sha256}"' if info.sha256 else None
    headers = {"Cache-Control": cache_control, "Accept-Ranges": "bytes"}
    if etag is not None:
        headers["ETag"] = etag
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    # If-Range: a client resuming with an outdated validator gets the whole new object.
    if if_range is not None and (etag is None or if_range.strip() != etag):
        range_header = None
    try:
        byte_range = parse_range(range_header, info.size)
    except RangeNotSatisfiable as exc:
        raise _refuse(
            416,
            "The requested range is not satisfiable.",
            {"Content-Range": f"bytes */{info.size}"},
        ) from exc
    status = 200
    if byte_range is None:
        byte_range = ByteRange(0, info.size - 1)
    else:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range.first}-{byte_range.last}/{info.size}"
    headers["Content-Length"] = str(max(0, byte_range.length))
    if reader is None:
        return Response(status_code=status, headers=headers, media_type=content_type)
    if byte_range.last < DEFAULT_CHUNK_SIZE:
        # Within the reader's first chunk (a segment is a few hundred kilobytes): one read,
        # answered in one piece, without the streaming machinery a StreamingResponse sets up
        # per request (a task watching for the client to go away, a background close).
        body = b"".join([chunk async for chunk in _stream_range(reader, byte_range)])
        return Response(body, status_code=status, headers=headers, media_type=content_type)
    return StreamingResponse(
        _stream_range(reader, byte_range),
        status_code=status,
        headers=headers,
        media_type=content_type,
        # Closes the object even when the client goes away before the body starts.
        background=BackgroundTask(reader.aclose),
    )


async def _stream_range(reader: ObjectReader, byte_range: ByteRange) -> AsyncIterator[bytes]:
    # The object-store interface reads from the start only, so bytes before the range are
    # read and dropped; segments are a few megabytes, and the read stops at the range's end.
    position = 0
    try:
        async for chunk in reader:
            chunk_end = position + len(chunk)
            if chunk_end > byte_range.first:
                yield chunk[max(0, byte_range.first - position) : byte_range.last + 1 - position]
            position = chunk_end
            if position > byte_range.last:
                break
    finally:
        await reader.aclose()
