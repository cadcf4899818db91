"""The package activity: chunk MP4s from the store become playable HLS and DASH streams in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.encode.activity import EncodeActivities
from activities.encode.contracts import PackageInput
from polyvision.media.writer import VideoWriter
from polyvision.storage.objects import ObjectStore, open_object_store
from tests.encode.ladder_media import LadderChunks, rendition_chunks, write_ladder

FPS = 25.0
CHUNK_FRAMES = [25, 20]
HLS_PREFIX = "orgs/o1/matches/m1/1/hls/"


@pytest.fixture(scope="module")
def chunk_videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Chunks as the vcam stage writes them: H.264, each starting on a keyframe."""
    out = tmp_path_factory.mktemp("chunks")
    paths = []
    first = 0
    for index, frames in enumerate(CHUNK_FRAMES):
        path = out / f"chunk-{index:05d}.mp4"
        with VideoWriter(path, 160, 96, FPS) as writer:
            for offset in range(frames):
                writer.write(np.full((96, 160, 3), (first + offset) * 5 % 256, np.uint8))
        paths.append(path)
        first += frames
    return paths


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


async def _input(objects: ObjectStore, videos: list[Path]) -> PackageInput:
    keys = []
    for index, video in enumerate(videos):
        info = await objects.upload_file(f"orgs/o1/matches/m1/1/vcam/chunk-{index:05d}.mp4", video)
        keys.append(info.key)
    return PackageInput("o1", "m1", 1, keys)


async def test_packages_the_chunks_into_a_playable_rendition_then_answers_from_its_manifest(
    objects: ObjectStore, chunk_videos: list[Path], tmp_path: Path
) -> None:
    acts = EncodeActivities(objects)
    package_input = await _input(objects, chunk_videos)
    output = await ActivityEnvironment().run(acts.package, package_input)
    assert output.master_key == HLS_PREFIX + "master.m3u8"
    assert output.media_key == HLS_PREFIX + "media.m3u8"
    assert output.segments == 2  # one per chunk
    assert output.duration_s == pytest.approx(sum(CHUNK_FRAMES) / FPS, abs=1e-3)
    assert not output.manifest_key.startswith(HLS_PREFIX)  # not published with the stream
    assert (await objects.stat(output.media_key)).content_type == "application/vnd.apple.mpegurl"

    # Fetch what a viewer would and play it.
    local = tmp_path / "hls"
    local.mkdir()
    async for info in objects.list_prefix(HLS_PREFIX):
        await objects.download_file(info.key, local / info.key.removeprefix(HLS_PREFIX))
    assert "RESOLUTION=160x96" in (local / "master.m3u8").read_text()
    with av.open(str(local / "media.m3u8")) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(frames) == sum(CHUNK_FRAMES)
    levels = [int(np.median(f)) for f in frames]
    # Chunks in order: the grey level ramps by 5 a frame across the chunk cut (lossy, so +-3).
    assert all(abs(level - 5 * i % 256) <= 3 for i, level in enumerate(levels[:50]))

    again = await ActivityEnvironment().run(acts.package, package_input)
    assert again.from_manifest and again.segments == output.segments


async def test_other_chunk_videos_are_packaged_again(
    objects: ObjectStore, chunk_videos: list[Path]
) -> None:
    acts = EncodeActivities(objects)
    first = await ActivityEnvironment().run(acts.package, await _input(objects, chunk_videos))
    assert first.segments == 2
    one_chunk = await _input(objects, chunk_videos[:1])
    output = await ActivityEnvironment().run(acts.package, one_chunk)
    assert not output.from_manifest and output.segments == 1
    assert output.duration_s == pytest.approx(CHUNK_FRAMES[0] / FPS, abs=1e-3)
    names = sorted(
        [info.key.removeprefix(HLS_PREFIX) async for info in objects.list_prefix(HLS_PREFIX)]
    )
    assert names == ["init.mp4", "master.m3u8", "media.m3u8", "seg_00000.m4s"]  # no stale one


# --- the ladder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> LadderChunks:
    return write_ladder(tmp_path_factory.mktemp("ladder"))


async def _ladder_input(
    objects: ObjectStore, ladder: LadderChunks, *, view: str = "", panorama: bool = True
) -> PackageInput:
    """The ladder's chunks in the store where the render and stitch stages leave them."""
    keys: dict[str, list[str]] = {}
    for name, paths in ladder.renditions.items():
        keys[name] = []
        for index, path in enumerate(paths):
            key = f"orgs/o1/matches/m1/1/vcam/{name}/chunk-{index:05d}.mp4"
            keys[name].append((await objects.upload_file(key, path)).key)
    panorama_keys = []
    for index, path in enumerate(ladder.panorama if panorama else []):
        key = f"orgs/o1/matches/m1/1/stitch/chunk-{index:05d}/panorama.mp4"
        panorama_keys.append((await objects.upload_file(key, path)).key)
    return PackageInput(
        "o1",
        "m1",
        1,
        keys["360p"],
        view=view,
        chunk_renditions=rendition_chunks(ladder, keys),
        panorama_chunk_keys=panorama_keys,
    )


async def _names(objects: ObjectStore, prefix: str) -> list[str]:
    return sorted([info.key.removeprefix(prefix) async for info in objects.list_prefix(prefix)])


async def test_a_ladder_is_published_with_dash_thumbnails_poster_and_panorama(
    objects: ObjectStore, ladder: LadderChunks
) -> None:
    acts = EncodeActivities(objects)
    package_input = await _ladder_input(objects, ladder)
    output = await ActivityEnvironment().run(acts.package, package_input)
    assert output.master_key == HLS_PREFIX + "master.m3u8"
    assert output.media_key == HLS_PREFIX + "360p/media.m3u8"
    assert output.dash_key == HLS_PREFIX + "manifest.mpd"
    assert output.thumbnails_key == HLS_PREFIX + "thumbnails.vtt"
    assert output.poster_key == HLS_PREFIX + "poster.jpg"
    assert output.panorama_master_key == HLS_PREFIX + "panorama/master.m3u8"
    assert output.panorama_dash_key == HLS_PREFIX + "panorama/manifest.mpd"
    assert output.segments == 2 and output.duration_s == pytest.approx(ladder.frames / FPS)
    assert [(r.name, r.width, r.height) for r in output.renditions] == [
        (name, *ladder.sizes[name]) for name in ladder.renditions
    ]
    assert all(r.bandwidth >= r.average_bandwidth > 0 for r in output.renditions)

    rendition_files = ["iframes.m3u8", "init.mp4", "media.m3u8", "seg_00000.m4s", "seg_00001.m4s"]
    assert await _names(objects, HLS_PREFIX) == sorted(
        [
            *(f"{name}/{file}" for name in ladder.renditions for file in rendition_files),
            *(f"panorama/{file}" for file in [*rendition_files, "manifest.mpd", "master.m3u8"]),
            "manifest.mpd",
            "master.m3u8",
            "poster.jpg",
            "thumbnails.vtt",
            "thumbnails/sprite-000.jpg",
        ]
    )
    for name, content_type in [
        ("manifest.mpd", "application/dash+xml"),
        ("thumbnails.vtt", "text/vtt"),
        ("poster.jpg", "image/jpeg"),
        ("360p/seg_00000.m4s", "video/iso.segment"),
        ("panorama/master.m3u8", "application/vnd.apple.mpegurl"),
    ]:
        assert (await objects.stat(HLS_PREFIX + name)).content_type == content_type, name
    # The VTT's sprites come from the smallest rendition's frames, scaled to 160 wide.
    assert "#xywh=0,0,160,90" in (await objects.get(output.thumbnails_key)).decode()

    again = await ActivityEnvironment().run(acts.package, package_input)
    assert again.from_manifest and again.dash_key == output.dash_key

    # Without the panorama, its stale folder goes; the views' folders are never touched.
    await objects.put(HLS_PREFIX + "views/zones/master.m3u8", b"#EXTM3U\n")
    no_panorama = await _ladder_input(objects, ladder, panorama=False)
    output = await ActivityEnvironment().run(acts.package, no_panorama)
    assert not output.from_manifest and output.panorama_master_key == ""
    names = await _names(objects, HLS_PREFIX)
    assert not any(name.startswith("panorama/") for name in names)
    assert "views/zones/master.m3u8" in names


async def test_a_view_gets_the_ladder_in_its_folder_and_no_panorama(
    objects: ObjectStore, ladder: LadderChunks
) -> None:
    output = await ActivityEnvironment().run(
        EncodeActivities(objects).package, await _ladder_input(objects, ladder, view="zones")
    )
    view_prefix = HLS_PREFIX + "views/zones/"
    assert output.master_key == view_prefix + "master.m3u8"
    assert output.dash_key == view_prefix + "manifest.mpd"
    assert output.panorama_master_key == ""
    names = await _names(objects, view_prefix)
    assert {"master.m3u8", "manifest.mpd", "poster.jpg", "thumbnails.vtt"} <= set(names)
    assert not any(name.startswith("panorama/") for name in names)
    assert await _names(objects, HLS_PREFIX) == [f"views/zones/{name}" for name in names]
    assert output.manifest_key == "orgs/o1/matches/m1/1/encode/views/zones/manifest.json"


async def test_chunks_listing_other_renditions_are_refused(
    objects: ObjectStore, ladder: LadderChunks
) -> None:
    package_input = await _ladder_input(objects, ladder, panorama=False)
    package_input.chunk_renditions[1] = package_input.chunk_renditions[1][:2]
    with pytest.raises(ValueError, match="lists renditions"):
        await ActivityEnvironment().run(EncodeActivities(objects).package, package_input)


async def test_the_single_rendition_package_also_publishes_the_panorama(
    objects: ObjectStore, chunk_videos: list[Path], ladder: LadderChunks
) -> None:
    package_input = await _input(objects, chunk_videos)
    with_panorama = await _ladder_input(objects, ladder)
    package_input.panorama_chunk_keys = with_panorama.panorama_chunk_keys
    output = await ActivityEnvironment().run(EncodeActivities(objects).package, package_input)
    assert output.dash_key == "" and output.renditions == []
    assert output.panorama_master_key == HLS_PREFIX + "panorama/master.m3u8"
    names = await _names(objects, HLS_PREFIX)
    assert [n for n in names if not n.startswith("panorama/")] == [
        "init.mp4",
        "master.m3u8",
        "media.m3u8",
        "seg_00000.m4s",
        "seg_00001.m4s",
    ]
