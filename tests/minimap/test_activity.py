"""The minimap activity: one video per chunk, as long as it, keyframes every GOP, manifest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.analyze.rows import track_points_table
from activities.minimap.activity import MinimapActivities
from activities.minimap.contracts import MINIMAP_SIZE, MinimapInput
from activities.minimap.draw import PitchFrame
from polyvision.artifacts import ChunkSpan
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.objects import ObjectStore, open_object_store

FPS = 25.0
CHUNKS = [ChunkSpan(0, 0, 25), ChunkSpan(1, 25, 20)]


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[AnalyticsStore]:
    with open_analytics_store(f"chdb://{tmp_path / 'analytics'}") as store:
        apply_migrations(store)
        yield store


def _player_x(frame: int) -> float:
    return 10.0 + 2.0 * frame  # runs 2 m a frame along y = 20


def _write_points(analytics: AnalyticsStore) -> None:
    for chunk in CHUNKS:
        frames = np.arange(chunk.first_frame, chunk.first_frame + chunk.frames)
        analytics.replace_slice(
            "track_points",
            "o1",
            "m1",
            1,
            chunk.chunk,
            track_points_table(
                frames,
                np.ones(len(frames)),
                np.zeros(len(frames), np.int8),
                [_player_x(int(f)) for f in frames],
                np.full(len(frames), 20.0),
                np.zeros(len(frames)),
            ),
        )


def _decode(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="bgr24") for f in frames], [
        i for i, f in enumerate(frames) if f.key_frame
    ]


async def test_every_chunk_is_drawn_and_the_dot_follows_the_player(
    objects: ObjectStore, analytics: AnalyticsStore, tmp_path: Path
) -> None:
    _write_points(analytics)
    acts = MinimapActivities(objects, analytics)
    request = MinimapInput("o1", "m1", 1, CHUNKS, FPS, home_kit_colour="#ff0000", gop_frames=10)
    output = await ActivityEnvironment().run(acts.render, request)
    assert output.chunk_keys == [
        "orgs/o1/matches/m1/1/minimap/chunk-00000.mp4",
        "orgs/o1/matches/m1/1/minimap/chunk-00001.mp4",
    ]
    pitch = PitchFrame.fit(MINIMAP_SIZE)
    for chunk, key in zip(CHUNKS, output.chunk_keys, strict=True):
        local = tmp_path / key.rsplit("/", 1)[1]
        await objects.download_file(key, local)
        images, keyframes = _decode(local)
        assert len(images) == chunk.frames
        assert images[0].shape == (MINIMAP_SIZE[1], MINIMAP_SIZE[0], 3)
        assert keyframes == list(range(0, chunk.frames, 10))
        for offset in (0, chunk.frames - 1):
            u, v = pitch.to_pixels([_player_x(chunk.first_frame + offset), 20.0])[0]
            blue, green, red = images[offset][round(v), round(u)].astype(int)
            assert red > 180 and green < 90 and blue < 90  # the home kit's red dot

    again = await ActivityEnvironment().run(acts.render, request)
    assert again.from_manifest and again.chunk_keys == output.chunk_keys


async def test_a_match_without_points_draws_the_empty_pitch(
    objects: ObjectStore, analytics: AnalyticsStore
) -> None:
    acts = MinimapActivities(objects, analytics)
    output = await ActivityEnvironment().run(
        acts.render, MinimapInput("o1", "m2", 1, CHUNKS[:1], FPS)
    )
    assert len(output.chunk_keys) == 1 and await objects.exists(output.chunk_keys[0])
