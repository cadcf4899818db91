"""Views routes against the real view workflow on the test Temporal server.

The API runs on its embedded stores; the view workflow, its rendering children and the
`view_sources` and `package_hls` activities are the real ones, reading and writing the app's
object store, where each test lays out a processed revision (`tests.workflows.view_standins`);
only the camera's planning and rendering are stand-ins (writing real objects). Rendering waits
on a gate, so a test can ask for a view that is still rendering.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client, WorkflowFailureError

from api.app import create_app
from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from processing import ui_link
from processing.views import camera_settings, view_name
from tests.api.factories import Factory, TestOrg
from tests.workflows.view_standins import (
    REVISION,
    Calls,
    CameraStandins,
    processed_revision,
    view_workers,
)
from workflows.types import ViewOutput


@pytest.fixture
def api_settings(api_settings: Settings, task_queue: str) -> Settings:
    """The shared settings with this test's own task queues (the views start on them)."""
    return api_settings.model_copy(update={"task_queue_suffix": f"-{task_queue}"})


@pytest.fixture
def gate() -> asyncio.Event:
    opened = asyncio.Event()
    opened.set()
    return opened


@pytest_asyncio.fixture
async def workers(
    temporal_client: Client, api_settings: Settings, app: FastAPI, gate: asyncio.Event
) -> AsyncIterator[None]:
    camera = CameraStandins(app.state.objects, Calls(), gate)
    async with view_workers(
        temporal_client, api_settings.task_queue_suffix, app.state.objects, camera
    ):
        try:
            yield
        finally:
            gate.set()  # a rendering still waiting would hold the worker's shutdown


async def _match(app: FastAPI, org: TestOrg, *, processed: bool = True) -> Match:
    """A catalog match; ``processed``: revision 1 published, its outputs in the app's store."""
    match = Match(
        organization_id=org.id,
        title="Rovers vs Athletic",
        status=MatchStatus.ready if processed else MatchStatus.processing,
        revision=REVISION,
        published_revision=REVISION if processed else None,
    )
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
        await session.refresh(match)
    if processed:
        await processed_revision(app.state.objects, str(org.id), str(match.id))
    return match


def _url(org_id: uuid.UUID, match: Match, tail: str = "/views") -> str:
    return f"/orgs/{org_id}/matches/{match.id}{tail}"


async def _view_done(client: Client, body: dict[str, Any]) -> ViewOutput:
    handle = client.get_workflow_handle(
        body["workflow_id"], run_id=body["run_id"], result_type=ViewOutput
    )
    return await asyncio.wait_for(handle.result(), timeout=60)


async def _listed(
    client: httpx.AsyncClient, org: TestOrg, match: Match, view: str, status: str
) -> dict[str, Any]:
    """The view's entry in the list, once it shows ``status`` (visibility lags a little)."""
    deadline = time.monotonic() + 30
    while True:
        response = await client.get(_url(org.id, match), headers=org.member(Role.viewer).headers)
        assert response.status_code == 200, response.text
        entries = {entry["view"]: entry for entry in response.json()}
        if view in entries and entries[view]["status"] == status:
            return entries[view]
        assert time.monotonic() < deadline, f"{view} never listed as {status}: {entries}"
        await asyncio.sleep(0.2)


async def test_a_view_is_accepted_listed_and_played(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    body = {"mode": "zones", "params": {"smoothing_s": 2}, "causal": True}
    response = await client.post(
        _url(org.id, match), json=body, headers=org.member(Role.admin).headers
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    name = view_name(camera_settings("zones", {"smoothing_s": 2.0}, True))
    assert accepted["view"] == name and name.startswith("zones-")
    assert (accepted["mode"], accepted["params"], accepted["causal"]) == (
        "zones",
        {"smoothing_s": 2.0},
        True,
    )
    assert (accepted["revision"], accepted["status"]) == (REVISION, "running")
    assert accepted["workflow_id"] == f"match-{match.id}-view-{name}"
    assert accepted["ui_url"] == ui_link(api_settings, accepted["workflow_id"], accepted["run_id"])
    output = await _view_done(temporal_client, accepted)
    prefix = f"orgs/{org.id}/matches/{match.id}/{REVISION}/hls/views/{name}/"
    assert output.hls_master_key == prefix + "master.m3u8"

    listed = await _listed(client, org, match, name, "completed")
    assert (listed["mode"], listed["params"], listed["causal"]) == (
        "zones",
        {"smoothing_s": 2.0},
        True,
    )
    assert (listed["revision"], listed["run_id"]) == (REVISION, accepted["run_id"])
    assert listed["started_at"] and listed["closed_at"]

    viewer = org.member(Role.viewer).headers
    played = await client.get(_url(org.id, match, f"/playback?view={name}"), headers=viewer)
    assert played.status_code == 200, played.text
    playback = played.json()
    assert (playback["view"], playback["revision"]) == (name, REVISION)
    master_url = playback["master_url"]
    token = urlsplit(master_url).path.split("/")[2]
    assert master_url == f"http://testserver/delivery/{token}/{prefix}master.m3u8"
    master = await client.get(master_url)
    assert master.status_code == 200, master.text
    media_url = next(line for line in master.text.splitlines() if line.startswith("http"))
    media = await client.get(media_url)
    assert media.status_code == 200 and "#EXTINF" in media.text
    segment = next(line for line in media.text.splitlines() if line.startswith("http"))
    assert (await client.get(segment)).status_code == 200
    # The view's token reads the view's folder only, not the match's own rendition.
    own = f"http://testserver/delivery/{token}/{prefix.split('views/')[0]}master.m3u8"
    assert (await client.get(own)).status_code == 404
    # The match's own playback is as it was.
    plain = await client.get(_url(org.id, match, "/playback"), headers=viewer)
    assert plain.status_code == 200 and plain.json()["view"] is None
    assert "/hls/master.m3u8" in plain.json()["master_url"]


async def test_a_view_the_planner_refuses_is_listed_as_failed_saying_why(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    workers: None,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    body = {"mode": "zones", "params": {"unknown_knob": 1}}
    response = await client.post(
        _url(org.id, match), json=body, headers=org.member(Role.admin).headers
    )
    assert response.status_code == 202, response.text
    with pytest.raises(WorkflowFailureError):
        await _view_done(temporal_client, response.json())
    listed = await _listed(client, org, match, response.json()["view"], "failed")
    assert "unknown parameter 'unknown_knob' for mode 'zones'" in listed["failure"]
    played = await client.get(
        _url(org.id, match, f"/playback?view={listed['view']}"),
        headers=org.member(Role.viewer).headers,
    )
    assert played.status_code == 404


async def test_a_view_not_rendered_is_404_and_a_bad_name_422(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    viewer = org.member(Role.viewer).headers
    missing = await client.get(
        _url(org.id, match, "/playback?view=zones-0123456789"), headers=viewer
    )
    assert missing.status_code == 404
    assert "has not been rendered" in missing.json()["detail"]
    for bad in ("..", "Zones", "a/b", "x" * 65):
        response = await client.get(
            _url(org.id, match, "/playback"), params={"view": bad}, headers=viewer
        )
        assert response.status_code == 422, bad


async def test_unknown_modes_and_bad_parameters_are_422(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    admin = org.member(Role.admin).headers
    url = _url(org.id, match)
    unknown = await client.post(url, json={"mode": "fisheye"}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "unknown camera mode 'fisheye'" in unknown.json()["detail"]
    # JSON as Python writes it may carry NaN and Infinity: neither is a camera parameter.
    for value in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = f'{{"mode": "zones", "params": {{"smoothing_s": {value}}}}}'
        response = await client.post(
            url, content=body, headers={**admin, "content-type": "application/json"}
        )
        assert response.status_code == 422, value
    for params in ({"smoothing_s": "slow"}, {"Smoothing-S": 1.0}, {"x": True}):
        response = await client.post(url, json={"mode": "zones", "params": params}, headers=admin)
        assert response.status_code == 422, params


async def test_a_match_without_finished_processing_is_409(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match = await _match(app, org, processed=False)
    response = await client.post(
        _url(org.id, match), json={"mode": "zones"}, headers=org.member(Role.admin).headers
    )
    assert response.status_code == 409
    assert "no finished processing" in response.json()["detail"]


async def test_the_same_view_while_it_renders_is_409(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    workers: None,
    gate: asyncio.Event,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    admin = org.member(Role.admin).headers
    gate.clear()
    first = await client.post(_url(org.id, match), json={"mode": "centered"}, headers=admin)
    assert first.status_code == 202, first.text
    again = await client.post(
        _url(org.id, match), json={"mode": "centered", "params": {}}, headers=admin
    )
    assert again.status_code == 409
    assert "being rendered now" in again.json()["detail"]
    running = await _listed(client, org, match, first.json()["view"], "running")
    assert running["run_id"] == first.json()["run_id"]
    # Other settings are another view: it starts beside it.
    other = await client.post(_url(org.id, match), json={"mode": "director"}, headers=admin)
    assert other.status_code == 202 and other.json()["view"] != first.json()["view"]
    gate.set()
    await _view_done(temporal_client, first.json())
    await _view_done(temporal_client, other.json())
    # Finished, the same view may be asked for again: a new run under the same name.
    rerun = await client.post(_url(org.id, match), json={"mode": "centered"}, headers=admin)
    assert rerun.status_code == 202, rerun.text
    assert rerun.json()["view"] == first.json()["view"]
    assert rerun.json()["run_id"] != first.json()["run_id"]
    await _view_done(temporal_client, rerun.json())


async def test_views_are_for_the_match_s_members_and_operators(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org, other = await factory.org(), await factory.org()
    match = await _match(app, org)
    for role in (Role.analyst, Role.viewer):
        refused = await client.post(
            _url(org.id, match), json={"mode": "zones"}, headers=org.member(role).headers
        )
        assert refused.status_code == 403
    stranger = other.member(Role.owner).headers
    for org_id in (org.id, other.id):
        assert (await client.get(_url(org_id, match), headers=stranger)).status_code == 404
        posted = await client.post(_url(org_id, match), json={"mode": "zones"}, headers=stranger)
        assert posted.status_code == 404
        played = await client.get(
            _url(org_id, match, "/playback?view=zones-0123456789"), headers=stranger
        )
        assert played.status_code == 404
    assert (await client.get(_url(org.id, match))).status_code == 401


async def test_temporal_down_is_503(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        factory = Factory(application)
        org = await factory.org(roles=(Role.owner,))
        match = Match(
            organization_id=org.id,
            title="Final",
            status=MatchStatus.ready,
            revision=1,
            published_revision=1,
        )
        async with application.state.sessions() as session:
            session.add(match)
            await session.commit()
            await session.refresh(match)
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            owner = org.member(Role.owner).headers
            for method, body in (("GET", None), ("POST", {"mode": "zones"})):
                response = await http.request(method, _url(org.id, match), json=body, headers=owner)
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/problem+json"
