"""The whole user story on the embedded stack, through real HTTP and real processes.

An admin creates a provisioning code; ``polyvision-edge provision`` registers a fresh key;
``polyvision-edge upload`` sends a synthetic two-camera match; the completed upload starts the
match workflow, which a worker runs to the end (real activities, real detector); a viewer of
the organization then plays the stream through signed URLs — master playlist, variant
playlist, init segment and media segments — and the decoded frames are the match. A viewer of
another organization gets 404 on every one of those paths.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import av
import httpx
import pytest
from temporalio.client import Client

from api.security.playback import create_token, playback_prefix
from polyvision.storage.metadata.models import Role
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.queues import QueueRole, queue_names
from programs.worker.plan import QueuePlan
from programs.worker.registry import WorkerDeps
from programs.worker.stores import open_pipeline_stores
from synth.generate import SynthConfig, generate_match
from tests.api.factories import Factory
from tests.fixtures.live_api import LiveApi, live_settings, provision, run_edge, serving_api
from tests.fixtures.pipeline import requires_model
from tests.fixtures.temporal import TemporalTestServer, running_worker
from workflows.match import workflow_id_for
from workflows.types import MatchOutput

# Processing a 4 s match on this 2-core machine takes about a minute; the default 300 s is
# tight when other jobs share the CPU.
pytestmark = [requires_model, pytest.mark.timeout(900)]

FRAMES = 100  # 4 s at 25 fps


def _uris(playlist: str) -> list[str]:
    """Every URI of an HLS playlist: URI lines and URI="..." attributes."""
    found: list[str] = []
    for line in playlist.splitlines():
        if line.startswith("#"):
            if 'URI="' in line:
                found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line.strip():
            found.append(line.strip())
    return found


def _with_token(url: str, token: str) -> str:
    """``url`` (a /delivery/{token}/{key} URL) carrying another token."""
    parts = urlsplit(url)
    _, prefix, _old, key = parts.path.split("/", 3)
    return f"{parts.scheme}://{parts.netloc}/{prefix}/{token}/{key}"


async def test_an_edge_upload_becomes_a_stream_only_its_organization_plays(
    tmp_path: Path, temporal_server: TemporalTestServer, temporal_client: Client
) -> None:
    suffix = f"-e2e-{uuid.uuid4().hex[:8]}"
    settings = live_settings(tmp_path / "pv", temporal_server, suffix)
    await asyncio.to_thread(upgrade_stores, settings)
    recording = tmp_path / "recording"
    await asyncio.to_thread(
        generate_match, SynthConfig(seconds=4.0, width=960, height=540, seed=21), recording
    )
    names = queue_names(suffix)
    plans = [QueuePlan(role, names[role], 2) for role in (QueueRole.cpu, QueueRole.gpu)]

    async with (
        serving_api(settings) as (app, log),
        open_pipeline_stores(settings) as stores,
        running_worker(
            temporal_client, plans, deps=WorkerDeps(identity="e2e-worker", stores=stores)
        ),
        httpx.AsyncClient(base_url=settings.api_public_url, timeout=60.0) as http,
    ):
        factory = Factory(app)
        home = await factory.org(roles=(Role.admin, Role.viewer))
        elsewhere = await factory.org(roles=(Role.viewer,))
        live = LiveApi(settings.api_public_url, app, settings, log, factory, temporal_client)

        # The edge box: provision, then upload the pair with the agent's own command.
        state_dir = tmp_path / "edge"
        await provision(live, state_dir, home, name="pitch-1")
        uploaded = await run_edge(
            state_dir,
            "upload",
            str(recording / "left.mp4"),
            str(recording / "right.mp4"),
            "--rig",
            str(recording / "rig.json"),
            "--title",
            "Derby under lights",
        )
        assert uploaded.code == 0, uploaded.stderr

        viewer = home.member(Role.viewer).headers
        listed = await http.get(f"/orgs/{home.id}/matches", headers=viewer)
        assert listed.status_code == 200, listed.text
        (match,) = listed.json()["items"]
        assert match["title"] == "Derby under lights"
        match_id = match["id"]

        # The upload started the workflow; the worker runs it to the end.
        started = time.monotonic()
        handle = temporal_client.get_workflow_handle(
            workflow_id_for(match_id), result_type=MatchOutput
        )
        result = await asyncio.wait_for(handle.result(), 600)
        assert (result.frames, result.chunks) == (FRAMES, 1)
        took = time.monotonic() - started
        status = await http.get(f"/orgs/{home.id}/matches/{match_id}/processing", headers=viewer)
        assert status.status_code == 200, status.text
        assert status.json()["status"] == "completed"
        assert status.json()["ui_url"].startswith(settings.temporal_ui_url)
        detail = await http.get(f"/orgs/{home.id}/matches/{match_id}", headers=viewer)
        assert detail.json()["status"] == "ready", f"catalog after {took:.0f} s: {detail.text}"

        # The viewer plays it: playback URL, master, variant, init and segments.
        playback = await http.get(f"/orgs/{home.id}/matches/{match_id}/playback", headers=viewer)
        assert playback.status_code == 200, playback.text
        master_url = playback.json()["master_url"]
        master = await http.get(master_url)
        assert master.status_code == 200, master.text
        # The ladder's three variants, top first (I-frame playlists are tags' URI attributes).
        variant_urls = [u for u in master.text.splitlines() if u.strip() and u[0] != "#"]
        assert len(variant_urls) == 3
        variant_url = variant_urls[0]
        variant = await http.get(variant_url)
        assert variant.status_code == 200, variant.text
        media_urls = _uris(variant.text)
        assert media_urls[0].endswith("init.mp4") and len(media_urls) >= 2
        stream = io.BytesIO()
        for url in media_urls:
            part = await http.get(url)
            assert part.status_code == 200, url
            assert "immutable" in part.headers["cache-control"]
            stream.write(part.content)
        stream.seek(0)
        with av.open(stream, mode="r") as container:
            frames = [frame for frame in container.decode(video=0)]
        assert len(frames) == FRAMES
        assert (frames[0].width, frames[0].height) == (1920, 1080)

        # A viewer of another organization: 404 on every path, with or without a token of
        # their own (a valid token for their own prefix).
        intruder = elsewhere.member(Role.viewer)
        for path in (
            f"/orgs/{home.id}/matches/{match_id}",
            f"/orgs/{home.id}/matches/{match_id}/playback",
            f"/orgs/{home.id}/matches/{match_id}/processing",
            f"/orgs/{home.id}/matches/{match_id}/analytics/players",
        ):
            refused = await http.get(path, headers=intruder.headers)
            assert refused.status_code == 404, (path, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
        their_token = create_token(
            settings.secret,
            playback_prefix(str(elsewhere.id), str(uuid.uuid4()), 1),
            str(intruder.user_id),
            int(time.time()) + 600,
        )
        for url in (master_url, variant_url, media_urls[0], media_urls[1]):
            refused = await http.get(_with_token(url, their_token), headers=intruder.headers)
            assert refused.status_code == 404, (url, refused.text)
