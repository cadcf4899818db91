"""Delivery of the whole package: HLS and DASH over the same segments, thumbnails, poster and
the panorama, all through one signed, path-scoped token.

The package is made by the project's own packaging activity from real H.264 chunks in three
renditions and a panorama (`tests.encode.ladder_media`), exactly as the pipeline publishes it.
An HLS client and a DASH client then play it through the delivery route only: each resolves
its manifests (rewritten so every URL carries the token) and fetches every segment, and both
must end up with the same segment URLs and the same bytes.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.dom import minidom

import av
import cv2
import httpx
import m3u8
import numpy as np
import pytest
from fastapi import FastAPI
from mpegdash.parser import MPEGDASHParser
from temporalio.testing import ActivityEnvironment

from activities.encode.activity import EncodeActivities
from activities.encode.contracts import PackageInput
from api.security.playback import playback_prefix
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from polyvision.storage.objects import ObjectStore
from tests.api import factories
from tests.api.factories import Factory
from tests.encode.ladder_media import (
    LADDER,
    LadderChunks,
    frame_number,
    rendition_chunks,
    write_ladder,
)

BASE = "http://testserver"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> LadderChunks:
    return write_ladder(tmp_path_factory.mktemp("ladder"))


@dataclass(frozen=True)
class Published:
    org_id: uuid.UUID
    match_id: uuid.UUID

    @property
    def prefix(self) -> str:
        return playback_prefix(str(self.org_id), str(self.match_id), 1)

    @property
    def playback_path(self) -> str:
        return f"/orgs/{self.org_id}/matches/{self.match_id}/playback"


async def _publish(
    app: FastAPI, org_id: uuid.UUID, ladder: LadderChunks | None, *, view: str = ""
) -> Published:
    """A ready match whose package (ladder and panorama) the packaging activity wrote."""
    match = Match(
        title="Final",
        organization_id=org_id,
        status=MatchStatus.ready,
        revision=1,
        published_revision=1,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
        await session.refresh(match)
    published = Published(org_id, match.id)
    if ladder is not None:
        await _package(app, published, ladder, view=view)
    return published


async def _package(app: FastAPI, match: Published, ladder: LadderChunks, *, view: str = "") -> None:
    objects: ObjectStore = app.state.objects
    base = f"orgs/{match.org_id}/matches/{match.match_id}/1"
    keys: dict[str, list[str]] = {}
    for name, paths in ladder.renditions.items():
        keys[name] = [
            (await objects.upload_file(f"{base}/vcam/{name}/{i:05d}.mp4", path)).key
            for i, path in enumerate(paths)
        ]
    panorama = [
        (await objects.upload_file(f"{base}/stitch/{i:05d}.mp4", path)).key
        for i, path in enumerate(ladder.panorama)
    ]
    package = PackageInput(
        str(match.org_id),
        str(match.match_id),
        1,
        keys[LADDER[0][0]],
        view=view,
        chunk_renditions=rendition_chunks(ladder, keys),
        panorama_chunk_keys=panorama,
    )
    await ActivityEnvironment().run(EncodeActivities(objects).package, package)


async def _playback(
    client: httpx.AsyncClient, org: factories.TestOrg, match: Published, query: str = ""
) -> dict[str, str | None]:
    response = await client.get(
        match.playback_path + query, headers=org.member(Role.viewer).headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, str | None] = response.json()
    return body


def _imdecode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _token(url: str) -> str:
    return urlsplit(url).path.split("/")[2]


async def _text(client: httpx.AsyncClient, url: str, content_type: str) -> str:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.text[:300])
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["cache-control"] == "public, max-age=60"
    return response.text


# --- two clients, one set of segments ------------------------------------------------------


async def _hls_client(client: httpx.AsyncClient, master_url: str) -> dict[str, list[str]]:
    """What an HLS player fetches: per variant (by resolution), init then segments."""
    master = m3u8.loads(await _text(client, master_url, "application/vnd.apple.mpegurl"))
    assert master.version == 7 and len(master.playlists) == len(LADDER)
    fetched = {}
    for variant in master.playlists:
        width, height = variant.stream_info.resolution
        media = m3u8.loads(await _text(client, variant.uri, "application/vnd.apple.mpegurl"))
        assert media.version == 7 and media.is_endlist
        fetched[f"{width}x{height}"] = [
            media.segment_map[0].uri,
            *(segment.uri for segment in media.segments),
        ]
    # The I-frame playlists: byte ranges of the very same segment URLs.
    for iframe in master.iframe_playlists:
        width, height = iframe.iframe_stream_info.resolution
        playlist = m3u8.loads(await _text(client, iframe.uri, "application/vnd.apple.mpegurl"))
        assert playlist.is_i_frames_only
        assert [s.uri for s in playlist.segments] == fetched[f"{width}x{height}"][1:]
        assert playlist.segment_map[0].uri == fetched[f"{width}x{height}"][0]
    return fetched


async def _dash_client(client: httpx.AsyncClient, mpd_url: str) -> dict[str, list[str]]:
    """What a DASH player fetches: per Representation (by size), init then segments."""
    text = await _text(client, mpd_url, "application/dash+xml")
    mpd = MPEGDASHParser.parse(text)
    assert mpd.type == "static"
    fetched = {}
    for representation in mpd.periods[0].adaptation_sets[0].representations:
        (template,) = representation.segment_templates
        count = sum(1 + (s.r or 0) for s in template.segment_timelines[0].Ss)
        media = template.media
        assert "$Number%05d$" in media  # the template reaches the player as it was written
        urls = [
            re.sub(r"\$Number%05d\$", f"{template.start_number + i:05d}", media)
            for i in range(count)
        ]
        fetched[f"{representation.width}x{representation.height}"] = [
            template.initialization,
            *urls,
        ]
    return fetched


async def test_hls_and_dash_clients_fetch_the_same_segments(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder)
    playback = await _playback(client, org, match)
    master_url, dash_url = playback["master_url"], playback["dash_url"]
    assert master_url is not None and dash_url is not None
    token = _token(master_url)
    assert _token(dash_url) == token
    delivered = f"{BASE}/delivery/{token}/{match.prefix}"
    assert dash_url == delivered + "manifest.mpd"

    hls = await _hls_client(client, master_url)
    dash = await _dash_client(client, dash_url)
    assert hls == dash
    assert set(hls) == {f"{width}x{height}" for _, width, height in LADDER}
    objects: ObjectStore = app.state.objects
    for name, width, height in LADDER:
        urls = hls[f"{width}x{height}"]
        # Every URL carries the token and stays in the rendition's folder.
        assert all(url.startswith(f"{delivered}{name}/") for url in urls)
        stream = b""
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.content == await objects.get(
                url.removeprefix(f"{BASE}/delivery/{token}/")
            )
            stream += response.content
        with av.open(io.BytesIO(stream), mode="r", format="mp4") as container:
            frames = list(container.decode(video=0))
        assert (frames[0].width, frames[0].height) == (width, height)
        numbers = [frame_number(frame.to_ndarray(format="bgr24")) for frame in frames]
        assert numbers == list(range(ladder.frames))


async def test_every_url_in_the_mpd_carries_the_token(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder)
    dash_url = (await _playback(client, org, match))["dash_url"]
    assert dash_url is not None
    token = _token(dash_url)
    response = await client.get(dash_url)
    assert response.headers["content-type"] == "application/dash+xml"
    document = minidom.parseString(response.text)
    urls = [
        element.getAttribute(name)
        for element in document.getElementsByTagName("SegmentTemplate")
        for name in ("media", "initialization")
    ]
    assert len(urls) == 2 * len(LADDER)
    assert all(url.startswith(f"{BASE}/delivery/{token}/{match.prefix}") for url in urls)
    # Conditional requests: the rewritten body's ETag.
    again = await client.get(dash_url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    head = await client.head(dash_url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == response.headers["content-length"]


async def test_thumbnails_and_poster_are_delivered_with_the_token(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder)
    playback = await _playback(client, org, match)
    thumbnails_url, poster_url = playback["thumbnails_url"], playback["poster_url"]
    assert thumbnails_url is not None and poster_url is not None
    token = _token(thumbnails_url)

    vtt = await _text(client, thumbnails_url, "text/vtt")
    assert vtt.startswith("WEBVTT")
    cues = [line for line in vtt.splitlines() if "#xywh=" in line]
    assert cues and all(
        cue.startswith(f"{BASE}/delivery/{token}/{match.prefix}thumbnails/sprite-") for cue in cues
    )
    sprite_url, _, fragment = cues[0].partition("#xywh=")
    sprite = await client.get(sprite_url)
    assert sprite.status_code == 200 and sprite.headers["content-type"] == "image/jpeg"
    assert "immutable" in sprite.headers["cache-control"]
    image = _imdecode(sprite.content)
    x, y, w, h = (int(v) for v in fragment.split(","))
    assert frame_number(image[y : y + h, x : x + w]) == 0

    poster = await client.get(poster_url)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    image = _imdecode(poster.content)
    assert image.shape[:2] == (LADDER[0][2], LADDER[0][1])  # the top rendition's size


async def test_the_panorama_plays_through_both_protocols(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder)
    playback = await _playback(client, org, match)
    master_url, dash_url = playback["panorama_master_url"], playback["panorama_dash_url"]
    assert (
        master_url
        == f"{BASE}/delivery/{_token(master_url or '')}/{match.prefix}panorama/master.m3u8"
    )
    assert dash_url is not None
    master = m3u8.loads(await _text(client, master_url, "application/vnd.apple.mpegurl"))
    (variant,) = master.playlists
    media = m3u8.loads(await _text(client, variant.uri, "application/vnd.apple.mpegurl"))
    hls = [media.segment_map[0].uri, *(s.uri for s in media.segments)]
    mpd = MPEGDASHParser.parse(await _text(client, dash_url, "application/dash+xml"))
    (representation,) = mpd.periods[0].adaptation_sets[0].representations
    assert (representation.width, representation.height) == variant.stream_info.resolution
    (template,) = representation.segment_templates
    dash = [
        template.initialization,
        *(template.media.replace("$Number%05d$", f"{i:05d}") for i in range(len(hls) - 1)),
    ]
    assert hls == dash
    stream = b"".join([(await client.get(url)).content for url in hls])
    with av.open(io.BytesIO(stream), mode="r", format="mp4") as container:
        assert sum(1 for _ in container.decode(video=0)) == ladder.frames


async def test_a_view_gets_its_own_manifests_and_no_panorama(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder, view="zones")
    playback = await _playback(client, org, match, "?view=zones")
    view_prefix = match.prefix + "views/zones/"
    token = _token(playback["master_url"] or "")
    assert playback["dash_url"] == f"{BASE}/delivery/{token}/{view_prefix}manifest.mpd"
    assert playback["poster_url"] == f"{BASE}/delivery/{token}/{view_prefix}poster.jpg"
    assert playback["panorama_master_url"] is None and playback["panorama_dash_url"] is None
    dash = await _dash_client(client, playback["dash_url"] or "")
    assert all(
        url.startswith(f"{BASE}/delivery/{token}/{view_prefix}") for u in dash.values() for url in u
    )
    # The view's token opens the view's folder only.
    response = await client.get(f"/delivery/{token}/{match.prefix}manifest.mpd")
    assert response.status_code == 404


async def test_an_older_package_answers_without_the_new_urls(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, None)
    objects: ObjectStore = app.state.objects
    vcam = f"orgs/{org.id}/matches/{match.match_id}/1/vcam/"
    keys = [
        (await objects.upload_file(f"{vcam}chunk-{i:05d}.mp4", path)).key
        for i, path in enumerate(ladder.renditions["144p"])
    ]
    package = PackageInput(str(org.id), str(match.match_id), 1, keys)
    await ActivityEnvironment().run(EncodeActivities(objects).package, package)
    playback = await _playback(client, org, match)
    assert playback["master_url"] is not None
    assert all(
        playback[name] is None
        for name in ("dash_url", "poster_url", "thumbnails_url", "panorama_master_url")
    )


# --- refusals ------------------------------------------------------------------------------


async def test_a_published_mpd_naming_another_folder_is_not_served(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, ladder: LadderChunks
) -> None:
    org = await factory.org(roles=(Role.viewer,))
    match = await _publish(app, org.id, ladder)
    token = _token((await _playback(client, org, match))["master_url"] or "")
    objects: ObjectStore = app.state.objects
    mpd = '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>{}</Period></MPD>'
    bad = {
        "up.mpd": mpd.format("<BaseURL>../../2/hls/</BaseURL>"),
        "far.mpd": mpd.format("<BaseURL>https://elsewhere.example/</BaseURL>"),
        "broken.mpd": "<MPD><Period>",
        "far.vtt": "WEBVTT\n\n00:00.000 --> 00:01.000\nhttps://elsewhere.example/a.jpg\n",
    }
    for name, text in bad.items():
        await objects.put(match.prefix + name, text.encode())
        response = await client.get(f"/delivery/{token}/{match.prefix}{name}")
        assert response.status_code == 500, name
        assert response.headers["cache-control"] == "no-store"
        assert "elsewhere" not in response.text and "/2/hls" not in response.text
    # Only the published kinds of file are served.
    await objects.put(match.prefix + "notes.xml", b"<x/>")
    assert (await client.get(f"/delivery/{token}/{match.prefix}notes.xml")).status_code == 404
