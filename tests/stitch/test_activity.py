"""The stitch activities: panorama geometry and lookup table once, chunks idempotent through their
manifests, with each chunk's seam and gains recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.stitch.activity import StitchActivities
from activities.stitch.contracts import StitchChunkInput, StitchPrepareInput
from activities.stitch.maps import StitchMaps, maps_identity
from activities.stitch.panorama import PanoramaModel
from polyvision.storage.objects import ObjectInfo, ObjectStore, open_object_store
from synth.generate import SynthConfig, generate_match

MAPS_KEY = "orgs/o1/matches/m1/1/stitch/stitch-maps.npz"
MANIFEST_KEY = "orgs/o1/matches/m1/1/stitch/chunk-00000/manifest.json"


@pytest.fixture(scope="module")
def match_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stitch-activity") / "match"
    generate_match(SynthConfig(seconds=1.2, width=640, height=360, seed=4), out)
    return out


async def _store(path: Path) -> ObjectStore:
    return open_object_store(f"file://{path}", secret=b"s" * 32, public_base_url="http://t")


@pytest_asyncio.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with await _store(tmp_path / "objects") as store:
        yield store


async def _upload(objects: ObjectStore, match_dir: Path) -> dict[str, ObjectInfo]:
    return {
        name: await objects.upload_file(f"uploads/m1/{name}", match_dir / name)
        for name in ("left.mp4", "right.mp4", "rig.json")
    }


def _chunk(keys: dict[str, ObjectInfo], model_key: str) -> StitchChunkInput:
    return StitchChunkInput(
        organization_id="o1",
        match_id="m1",
        revision=1,
        chunk=0,
        left_key=keys["left.mp4"].key,
        right_key=keys["right.mp4"].key,
        left_sha256=keys["left.mp4"].sha256 or "",
        right_sha256=keys["right.mp4"].sha256 or "",
        rig_key=keys["rig.json"].key,
        panorama_model_key=model_key,
        start_frame=5,
        end_frame=25,
        fps=25.0,
    )


async def test_prepare_then_stitch_a_chunk_twice(
    objects: ObjectStore, match_dir: Path, tmp_path: Path
) -> None:
    keys = await _upload(objects, match_dir)
    acts = StitchActivities(objects, tmp_path / "cache")
    env = ActivityEnvironment()
    prepared = await env.run(
        acts.prepare, StitchPrepareInput("o1", "m1", 1, keys["rig.json"].key, scale=0.5)
    )
    model_json = (await objects.get(prepared.panorama_model_key)).decode()
    model = PanoramaModel.from_json(model_json)
    assert (model.width, model.height) == (prepared.width, prepared.height) == (472, 138)
    assert len(prepared.pitch_polygon) >= 4
    xs = [x for x, _ in prepared.pitch_polygon]
    assert min(xs) >= 0 and max(xs) <= model.width - 1
    # The lookup table is stored once per revision, and names what it was built from.
    maps = StitchMaps.from_bytes(await objects.get(MAPS_KEY))
    assert maps.model == model
    rig_json = (await objects.get(keys["rig.json"].key)).decode()
    assert maps.identity == maps_identity(rig_json, model_json)
    # A retry answers from the manifest, with the same (typed) output.
    assert (
        await env.run(
            acts.prepare, StitchPrepareInput("o1", "m1", 1, keys["rig.json"].key, scale=0.5)
        )
        == prepared
    )

    chunk = _chunk(keys, prepared.panorama_model_key)
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

    # The chunk's seam and gains are in its manifest.
    details = json.loads(await objects.get(MANIFEST_KEY))["outputs"]["details"]
    seam = np.asarray(details["seam"])
    assert seam.shape == (model.height,)
    rows = np.flatnonzero(maps.overlap.any(axis=1))
    assert maps.overlap[rows, seam[rows]].all()
    gains = np.asarray(details["gains"])
    assert gains.shape == (2, 3) and (gains > 0.8).all() and (gains < 1.25).all()
    assert details["band_half"] >= 1 and details["figures"]["rows_outside_overlap"] == 0

    again = await env.run(acts.stitch_chunk, chunk)
    assert again.from_manifest and again.sha256 == output.sha256
    assert (again.video_key, again.frames, again.manifest_key) == (
        output.video_key,
        output.frames,
        MANIFEST_KEY,
    )


async def test_chunks_are_the_same_on_another_worker_even_without_the_stored_table(
    match_dir: Path, tmp_path: Path
) -> None:
    """Two stores, two workers; in the second the stored table is gone (built locally then):
    same video bytes, same seam and gains."""
    results = []
    for run in ("a", "b"):
        async with await _store(tmp_path / f"objects-{run}") as objects:
            keys = await _upload(objects, match_dir)
            env = ActivityEnvironment()
            prepared = await env.run(
                StitchActivities(objects, tmp_path / f"cache-{run}").prepare,
                StitchPrepareInput("o1", "m1", 1, keys["rig.json"].key, scale=0.5),
            )
            if run == "b":
                await objects.delete(MAPS_KEY)
            worker = StitchActivities(objects, tmp_path / f"cache-{run}-worker")
            output = await env.run(worker.stitch_chunk, _chunk(keys, prepared.panorama_model_key))
            details = json.loads(await objects.get(MANIFEST_KEY))["outputs"]["details"]
            results.append((output.sha256, details["seam"], details["gains"]))
    assert results[0] == results[1]
