"""The stitch activities: panorama geometry once, chunks idempotent through their manifests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.stitch.activity import StitchActivities
from activities.stitch.contracts import StitchChunkInput, StitchPrepareInput
from activities.stitch.panorama import PanoramaModel
from polyvision.storage.objects import ObjectStore, open_object_store
from synth.generate import SynthConfig, generate_match


@pytest.fixture(scope="module")
def match_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stitch-activity") / "match"
    generate_match(SynthConfig(seconds=1.2, width=640, height=360, seed=4), out)
    return out


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    store = open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )
    async with store:
        yield store


async def test_prepare_then_stitch_a_chunk_twice(
    objects: ObjectStore, match_dir: Path, tmp_path: Path
) -> None:
    keys = {}
    for name in ("left.mp4", "right.mp4", "rig.json"):
        keys[name] = await objects.upload_file(f"uploads/m1/{name}", match_dir / name)
    acts = StitchActivities(objects, tmp_path / "cache")
    env = ActivityEnvironment()
    prepared = await env.run(
        acts.prepare, StitchPrepareInput("o1", "m1", 1, keys["rig.json"].key, scale=0.5)
    )
    model = PanoramaModel.from_json((await objects.get(prepared.panorama_model_key)).decode())
    assert (model.width, model.height) == (prepared.width, prepared.height)
    assert len(prepared.pitch_polygon) >= 4
    xs = [x for x, _ in prepared.pitch_polygon]
    assert min(xs) >= 0 and max(xs) <= model.width - 1
    # A retry answers from the manifest, with the same (typed) output.
    assert (
        await env.run(
            acts.prepare, StitchPrepareInput("o1", "m1", 1, keys["rig.json"].key, scale=0.5)
        )
        == prepared
    )

    chunk = StitchChunkInput(
        organization_id="o1",
        match_id="m1",
        revision=1,
        chunk=0,
        left_key=keys["left.mp4"].key,
        right_key=keys["right.mp4"].key,
        left_sha256=keys["left.mp4"].sha256 or "",
        right_sha256=keys["right.mp4"].sha256 or "",
        rig_key=keys["rig.json"].key,
        panorama_model_key=prepared.panorama_model_key,
        start_frame=5,
        end_frame=25,
        fps=25.0,
    )
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    output = await env.run(acts.stitch_chunk, chunk)
    assert output.frames == 20 and heartbeats
    local = tmp_path / "panorama.mp4"
    await objects.download_file(output.video_key, local)
    with av.open(str(local)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (model.width, model.height)
        assert sum(1 for _ in container.decode(stream)) == 20

    again = await env.run(acts.stitch_chunk, chunk)
    assert again.from_manifest and again.sha256 == output.sha256
    assert (again.video_key, again.frames, again.manifest_key) == (
        output.video_key,
        output.frames,
        "orgs/o1/matches/m1/1/stitch/chunk-00000/manifest.json",
    )
