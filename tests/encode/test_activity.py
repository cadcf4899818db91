"""The package activity: chunk MP4s from the store become a playable HLS rendition in it."""

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
