"""Delivery end to end: a real HLS package in the store, played through signed URLs.

The rendition is made by the project's own packaging activity from two tiny H.264 chunks
(45 frames, 160x96), exactly as the pipeline publishes it; the catalog row is written
straight to the metadata store, as the index stage would leave it.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import av
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from temporalio.testing import ActivityEnvironment

from activities.encode.activity import EncodeActivities
from activities.encode.contracts import PackageInput
from api.routes.delivery import (
    ByteRange,
    RangeNotSatisfiable,
    etag_matches,
    parse_range,
    segment_cache_control,
)
from api.security.playback import PLAYBACK_TOKEN_LIFETIME, create_token, playback_prefix
from polyvision.media.writer import VideoWriter
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from polyvision.storage.objects import ObjectStore
from tests.api import factories
from tests.api.factories import Factory

FPS = 25.0
CHUNK_FRAMES = [25, 20]
WIDTH, HEIGHT = 160, 96
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def _assert_segment_cache(value: str) -> None:
    """Immutable, and cached no longer than the 4-hour token (a minute of slack for the test)."""
    public, max_age, immutable = (part.strip() for part in value.split(","))
    assert (public, immutable) == ("public", "immutable")
    seconds = int(max_age.removeprefix("max-age="))
    assert 4 * 3600 - 60 <= seconds <= 4 * 3600


@pytest.fixture(scope="module")
def chunk_videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Chunks as the vcam stage writes them: H.264, each starting on a keyframe."""
    out = tmp_path_factory.mktemp("chunks")
    paths = []
    first = 0
    for index, frames in enumerate(CHUNK_FRAMES):
        path = out / f"chunk-{index:05d}.mp4"
        with VideoWriter(path, WIDTH, HEIGHT, FPS) as writer:
            for offset in range(frames):
                # A grey ramp: the decoded order of frames is visible in their levels.
                writer.write(np.full((HEIGHT, WIDTH, 3), (first + offset) * 5 % 256, np.uint8))
        paths.append(path)
        first += frames
    return paths


@dataclass(frozen=True)
class Published:
    """A catalog match and where its rendition is."""

    org_id: uuid.UUID
    match_id: uuid.UUID
    revision: int

    @property
    def prefix(self) -> str:
        return playback_prefix(str(self.org_id), str(self.match_id), self.revision)

    @property
    def playback_path(self) -> str:
        return f"/orgs/{self.org_id}/matches/{self.match_id}/playback"


async def _match_row(app: FastAPI, org_id: uuid.UUID, status: MatchStatus, revision: int) -> Match:
    published = revision if status is MatchStatus.ready and revision >= 1 else None
    match = Match(
        title="Final",
        organization_id=org_id,
        status=status,
        revision=revision,
        published_revision=published,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
        await session.refresh(match)
    return match


async def _publish(
    app: FastAPI, org_id: uuid.UUID, videos: list[Path], revision: int = 1
) -> Published:
    """A ready match whose rendition the packaging activity wrote to the app's store."""
    match = await _match_row(app, org_id, MatchStatus.ready, revision)
    objects: ObjectStore = app.state.objects
    keys = []
    for index, video in enumerate(videos):
        key = f"orgs/{org_id}/matches/{match.id}/{revision}/vcam/chunk-{index:05d}.mp4"
        keys.append((await objects.upload_file(key, video)).key)
    package = PackageInput(str(org_id), str(match.id), revision, keys)
    await ActivityEnvironment().run(EncodeActivities(objects).package, package)
    return Published(org_id, match.id, revision)


async def _master_url(client: httpx.AsyncClient, org: factories.TestOrg, match: Published) -> str:
    response = await client.get(match.playback_path, headers=org.member(Role.viewer).headers)
    assert response.status_code == 200, response.text
    url: str = response.json()["master_url"]
    return url


def _token(url: str) -> str:
    return urlsplit(url).path.split("/")[2]


def _uris(playlist: str) -> list[str]:
    """Every URI of a playlist: URI lines and URI="..." attributes, in order."""
    uris: list[str] = []
    for line in playlist.splitlines():
        if line.startswith("#"):
            uris.extend(part.split('"')[1] for part in line.split("URI=")[1:])
        elif line.strip():
            uris.append(line.strip())
    return uris


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_refused(response: httpx.Response, status: int) -> None:
    # The body only if it is text: a wrongly served segment must not flood the report.
    shown = response.text[:500] if response.headers.get("content-type", "").endswith("json") else ""
    assert response.status_code == status, shown
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"


# --- the viewer's path ---------------------------------------------------------------------


async def test_a_viewer_plays_the_match_through_the_signed_urls(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, chunk_videos)
    objects: ObjectStore = app.state.objects

    response = await client.get(match.playback_path, headers=org.member(Role.viewer).headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["revision"] == 1
    expires_at = datetime.fromisoformat(body["expires_at"])
    lifetime = expires_at - datetime.now(UTC)
    assert PLAYBACK_TOKEN_LIFETIME - timedelta(minutes=1) < lifetime <= PLAYBACK_TOKEN_LIFETIME
    master_url = body["master_url"]
    token = _token(master_url)
    assert master_url == f"http://testserver/delivery/{token}/{match.prefix}master.m3u8"

    master = await client.get(master_url)
    assert master.status_code == 200
    assert master.headers["content-type"] == PLAYLIST_TYPE
    assert master.headers["cache-control"] == "public, max-age=60"
    # The URL alone picks the body: nothing varies but what the CORS layer adds for browsers.
    assert master.headers.get_list("vary") in ([], ["Origin"])
    assert "#EXT-X-STREAM-INF:" in master.text and "RESOLUTION=160x96" in master.text
    assert _uris(master.text) == [f"http://testserver/delivery/{token}/{match.prefix}media.m3u8"]

    media = await client.get(_uris(master.text)[0])
    assert media.status_code == 200
    assert media.headers["content-type"] == PLAYLIST_TYPE
    assert "#EXT-X-ENDLIST" in media.text
    uris = _uris(media.text)
    names = [uri.removeprefix(f"http://testserver/delivery/{token}/{match.prefix}") for uri in uris]
    assert names == ["init.mp4", "seg_00000.m4s", "seg_00001.m4s"]  # one segment per chunk

    stream = b""
    for uri, name in zip(uris, names, strict=True):
        segment = await client.get(uri)
        assert segment.status_code == 200
        stored = await objects.get(match.prefix + name)
        assert segment.content == stored
        assert segment.headers["content-length"] == str(len(stored))
        assert segment.headers["etag"] == f'"{hashlib.sha256(stored).hexdigest()}"'
        _assert_segment_cache(segment.headers["cache-control"])
        assert segment.headers["accept-ranges"] == "bytes"
        assert segment.headers["content-type"] == (
            "video/mp4" if name == "init.mp4" else "video/iso.segment"
        )
        stream += segment.content

    # Init + segments is one fragmented MP4: it must decode to every frame, in order.
    with av.open(io.BytesIO(stream), mode="r", format="mp4") as container:
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert len(frames) == sum(CHUNK_FRAMES)
    assert frames[0].shape == (HEIGHT, WIDTH)
    levels = [int(np.median(frame)) for frame in frames]
    assert all(abs(level - 5 * i % 256) <= 3 for i, level in enumerate(levels))


async def test_a_match_without_its_rendition_is_not_playable_yet(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    processing = await _match_row(app, org.id, MatchStatus.processing, 0)
    response = await client.get(
        f"/orgs/{org.id}/matches/{processing.id}/playback", headers=org.member(Role.viewer).headers
    )
    _assert_refused(response, 409)
    assert "not been processed" in response.json()["detail"]

    # A published revision whose rendition is gone (cleaned up) is not playable either.
    published = await _publish(app, org.id, chunk_videos, revision=1)
    await app.state.objects.delete_prefix(f"orgs/{org.id}/matches/{published.match_id}/1/hls/")
    response = await client.get(published.playback_path, headers=org.member(Role.viewer).headers)
    _assert_refused(response, 409)


async def test_a_reprocess_in_progress_keeps_the_published_revision_playing(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    published = await _publish(app, org.id, chunk_videos, revision=1)
    async with app.state.sessions() as session:
        row = await session.get(Match, published.match_id)
        assert row is not None
        row.revision, row.status = 2, MatchStatus.processing
        session.add(row)
        await session.commit()
    response = await client.get(published.playback_path, headers=org.member(Role.viewer).headers)
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == 1
    assert f"/{published.match_id}/1/hls/master.m3u8" in response.json()["master_url"]


async def test_segments_answer_single_ranges_and_conditional_requests(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, chunk_videos)
    token = _token(await _master_url(client, org, match))
    objects: ObjectStore = app.state.objects
    # Larger than the store's 1 MiB read chunks, so ranges cross chunk boundaries.
    big = np.random.default_rng(7).integers(0, 256, 2_600_000, dtype=np.uint8).tobytes()
    await objects.put(match.prefix + "seg_big.m4s", big)
    url = f"/delivery/{token}/{match.prefix}seg_big.m4s"
    size = len(big)

    for header, first, last in [
        ("bytes=0-99", 0, 99),
        ("bytes=1048570-2097160", 1_048_570, 2_097_160),  # spans three read chunks
        ("bytes=2500000-", 2_500_000, size - 1),
        ("bytes=-1000", size - 1000, size - 1),
        (f"bytes=100-{size + 50}", 100, size - 1),  # clamped to the end
    ]:
        response = await client.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert response.headers["content-length"] == str(last - first + 1)
        # Compared by length and digest: a failure must not print megabytes of noise.
        got, want = response.content, big[first : last + 1]
        assert (len(got), _sha(got)) == (len(want), _sha(want)), header
        _assert_segment_cache(response.headers["cache-control"])

    whole = await client.get(url, headers={"Range": "bytes=0-9,20-29"})  # several: ignored
    assert whole.status_code == 200 and _sha(whole.content) == _sha(big)

    beyond = await client.get(url, headers={"Range": f"bytes={size}-"})
    _assert_refused(beyond, 416)
    assert beyond.headers["content-range"] == f"bytes */{size}"

    etag = whole.headers["etag"]
    assert etag == f'"{hashlib.sha256(big).hexdigest()}"'
    not_modified = await client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    stale = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and _sha(stale.content) == _sha(big)
    fresh = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == big[:10]


async def test_head_answers_the_headers_of_get_without_a_body(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, chunk_videos)
    master_url = await _master_url(client, org, match)
    segment_url = master_url.replace("master.m3u8", "seg_00001.m4s")
    for url in (master_url, segment_url):
        got = await client.get(url)
        head = await client.head(url)
        assert head.status_code == 200 and head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers[name] == got.headers[name], name
    ranged = await client.head(segment_url, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    missing = await client.head(master_url.replace("master.m3u8", "seg_09999.m4s"))
    assert missing.status_code == 404


# --- refusals ------------------------------------------------------------------------------


async def test_the_playback_url_needs_a_signed_in_member(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org_a = await factory.org(roles=(Role.viewer,))
    org_b = await factory.org(roles=(Role.viewer,))
    match_a = await _publish(app, org_a.id, chunk_videos)
    viewer_b = org_b.member(Role.viewer).headers

    assert (await client.get(match_a.playback_path)).status_code == 401
    # Org A's path: B's viewer is no member there.
    _assert_refused(await client.get(match_a.playback_path, headers=viewer_b), 404)
    # B's own org in the path, A's match id: the match is not B's.
    response = await client.get(
        f"/orgs/{org_b.id}/matches/{match_a.match_id}/playback", headers=viewer_b
    )
    _assert_refused(response, 404)
    assert response.json()["detail"] == "Match not found."


async def test_tampered_and_expired_tokens_are_refused(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, chunk_videos)
    master_url = await _master_url(client, org, match)
    token = _token(master_url)
    payload, signature = token.split(".")
    assert (await client.get(master_url)).status_code == 200

    def flip(text: str, index: int) -> str:
        return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]

    for tampered in (f"{payload}.{flip(signature, 5)}", f"{flip(payload, 5)}.{signature}"):
        response = await client.get(master_url.replace(token, tampered))
        _assert_refused(response, 403)
        assert "invalid" in response.json()["detail"]

    expired = create_token(
        app.state.settings.secret, match.prefix, str(uuid.uuid4()), int(time.time()) - 1
    )
    for name in ("master.m3u8", "seg_00000.m4s"):
        response = await client.get(f"/delivery/{expired}/{match.prefix}{name}")
        _assert_refused(response, 403)
        assert "expired" in response.json()["detail"]


async def test_a_token_opens_its_own_match_only(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match_a = await _publish(app, org.id, chunk_videos)
    match_b = await _publish(app, org.id, chunk_videos)
    token_a = _token(await _master_url(client, org, match_a))
    for name in ("master.m3u8", "media.m3u8", "init.mp4", "seg_00000.m4s"):
        assert (await client.get(f"/delivery/{token_a}/{match_a.prefix}{name}")).status_code == 200
        # B's objects exist, and A's token still finds nothing there.
        _assert_refused(await client.get(f"/delivery/{token_a}/{match_b.prefix}{name}"), 404)
        _assert_refused(await client.head(f"/delivery/{token_a}/{match_b.prefix}{name}"), 404)


async def test_another_organizations_token_finds_nothing(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org_a = await factory.org(roles=(Role.viewer,))
    org_b = await factory.org(roles=(Role.viewer,))
    match_a = await _publish(app, org_a.id, chunk_videos)
    match_b = await _publish(app, org_b.id, chunk_videos)
    token_b = _token(await _master_url(client, org_b, match_b))
    assert (await client.get(f"/delivery/{token_b}/{match_b.prefix}master.m3u8")).status_code == 200
    for name in ("master.m3u8", "media.m3u8", "init.mp4", "seg_00000.m4s", "seg_00001.m4s"):
        response = await client.get(f"/delivery/{token_b}/{match_a.prefix}{name}")
        _assert_refused(response, 404)
        assert response.json()["detail"] == "Not found."


async def test_paths_that_climb_out_of_the_tokens_folder_are_not_found(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match_a = await _publish(app, org.id, chunk_videos)
    match_b = await _publish(app, org.id, chunk_videos)
    token = _token(await _master_url(client, org, match_a))
    objects: ObjectStore = app.state.objects
    await objects.put(match_a.prefix + "notes.json", b"{}")  # in the folder, not a stream file
    up = "../" * 5  # from .../{match_a}/1/hls/ up to orgs/{org}/
    raw_b = f"{up}matches/{match_b.match_id}/1/hls/master.m3u8"
    for path in (
        # Encoded dots reach the server as "..": the client cannot normalise them away.
        match_a.prefix + raw_b.replace("..", "%2E%2E"),
        match_a.prefix + quote(raw_b, safe=""),  # encoded slashes as well
        match_a.prefix + "x/%2E%2E/master.m3u8",  # would land back inside: still refused
        match_a.prefix + "%2E/master.m3u8",
        match_a.prefix + raw_b,  # whatever the client makes of plain dots
        match_a.prefix[:-1] + "-other/master.m3u8",
        match_a.prefix + "notes.json",
        match_a.prefix + "seg_09999.m4s",
        match_a.prefix,
    ):
        _assert_refused(await client.get(f"/delivery/{token}/{path}"), 404)


async def test_a_published_playlist_naming_another_folder_is_not_served(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, chunk_videos: list[Path]
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, chunk_videos)
    token = _token(await _master_url(client, org, match))
    objects: ObjectStore = app.state.objects
    # A broken package that would lead the player to revision 2 (which the token does not
    # cover) or to another host: refused as a server fault, never half-rewritten.
    await objects.put(match.prefix + "bad.m3u8", b"#EXTM3U\n../../2/hls/seg_00000.m4s\n")
    await objects.put(match.prefix + "far.m3u8", b"#EXTM3U\nhttps://elsewhere.example/s.m4s\n")
    for name in ("bad.m3u8", "far.m3u8"):
        response = await client.get(f"/delivery/{token}/{match.prefix}{name}")
        _assert_refused(response, 500)
        assert "elsewhere" not in response.text and "/2/hls" not in response.text


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=5-", ByteRange(5, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-500", ByteRange(0, 99)),
        ("bytes=90-500", ByteRange(90, 99)),
        ("BYTES = 1-2", ByteRange(1, 2)),
        ("bytes=5-4", None),  # invalid: ignored
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=0x1-2", None),
        ("bytes=\u0661-\u0662", None),  # non-ASCII digits
    ],
)
def test_range_headers_parse_to_one_inclusive_range_or_none(
    header: str | None, expected: ByteRange | None
) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-1", 0)]
)
def test_ranges_beyond_the_end_are_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_if_none_match_compares_weakly() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches(None, '"a"')
    assert not etag_matches('"a"', None)


def test_segments_are_never_cached_past_their_token() -> None:
    now = 1_800_000_000.0
    assert segment_cache_control(int(now) + 600, now) == "public, max-age=600, immutable"
    assert segment_cache_control(int(now) - 5, now) == "public, max-age=0, immutable"
    far = int(now) + 10 * 365 * 86400
    assert segment_cache_control(far, now) == "public, max-age=31536000, immutable"
