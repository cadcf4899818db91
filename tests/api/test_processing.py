"""Processing routes against a real `MatchWorkflow` on the test Temporal server.

The workflow and its batch children are the real ones; the activities are the stand-ins of
`tests/workflows/standins.py` (they answer at once), except tracking, which waits on a gate so a
test can look at, reprocess or cancel a run that is still going. A run takes about a second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from activities.ingest.contracts import IngestInput, IngestOutput
from activities.stitch.contracts import StitchChunkInput, StitchChunkOutput
from api.app import create_app
from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Match, MatchStatus, Role, Upload, UploadStatus
from polyvision.temporal.queues import QueueRole, queue_names
from processing import ProcessingState, ui_link
from processing.catalog import reconciled_status
from tests.api.factories import Factory, TestOrg
from tests.fixtures.standin_workers import SHORT_MATCH, GatedActivities, standin_workers
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput, MatchOutput

# Matches whose stand-in ingest finds the recordings out of sync (match id: offset), and the
# offsets their chunks were stitched with.
OUT_OF_SYNC: dict[str, int] = {}
STITCHED_OFFSETS: dict[str, set[int]] = {}
SYNC_WARNING = (
    "left and right are 5 frames apart (the right camera started 5 frames later; correlation "
    "0.91); stitching corrects it"
)


class SyncingActivities(GatedActivities):
    """The gated stand-ins, with ingest finding `OUT_OF_SYNC` matches' recordings apart."""

    @activity.defn(name="ingest")
    async def ingest(self, input: IngestInput) -> IngestOutput:
        """Like the gated stand-in, then an `OUT_OF_SYNC` match's offset and warning."""
        output = await super().ingest(input)
        if (offset := OUT_OF_SYNC.get(input.match_id)) is not None:
            output.frame_offset, output.sync_correlation = offset, 0.91
            output.sync_warning = SYNC_WARNING
        return output

    @activity.defn(name="stitch_chunk")
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        """Note the offset the chunk was stitched with, then answer like the stand-in."""
        STITCHED_OFFSETS.setdefault(input.match_id, set()).add(input.right_frame_offset)
        return await super().stitch_chunk(input)


@pytest.fixture
def api_settings(api_settings: Settings, task_queue: str) -> Settings:
    """The shared settings with this test's own task queues (as the uploads router uses them)."""
    return api_settings.model_copy(update={"task_queue_suffix": f"-{task_queue}"})


@pytest.fixture
def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest_asyncio.fixture
async def workers(
    temporal_client: Client, api_settings: Settings, gate: asyncio.Event
) -> AsyncIterator[None]:
    """Workers on the test's cpu and gpu queues with the real workflows and gated stand-ins."""
    activities = SyncingActivities(SHORT_MATCH, gate)
    async with standin_workers(temporal_client, api_settings.task_queue_suffix, activities):
        try:
            yield
        finally:
            # A tracking activity still waiting would hold the worker's shutdown.
            gate.set()


async def _match(app: FastAPI, org: TestOrg) -> Match:
    match = Match(organization_id=org.id, title="Rovers vs Athletic")
    async with app.state.sessions() as session:
        session.add(match)
        await session.commit()
    return match


async def _start(
    app: FastAPI, temporal_client: Client, settings: Settings, match: Match
) -> WorkflowHandle[MatchWorkflow, MatchOutput]:
    """Start the match's workflow as the uploads router does, and mark the match processing."""
    workflow_id = workflow_id_for(str(match.id))
    prefix = f"orgs/{match.organization_id}/uploads/{match.id}"
    handle = await temporal_client.start_workflow(
        MatchWorkflow.run,
        MatchInput(
            organization_id=str(match.organization_id),
            match_id=str(match.id),
            left_key=f"{prefix}/left.mp4",
            right_key=f"{prefix}/right.mp4",
            rig_key=f"{prefix}/rig.json",
            task_queue_suffix=settings.task_queue_suffix,
        ),
        id=workflow_id,
        task_queue=queue_names(settings.task_queue_suffix)[QueueRole.cpu],
    )
    async with app.state.sessions() as session:
        match.workflow_id = workflow_id
        match.status = MatchStatus.processing
        session.add(match)
        await session.commit()
    return handle


async def _wait_for_stage(handle: WorkflowHandle[MatchWorkflow, MatchOutput], stage: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if (await handle.query(MatchWorkflow.progress)).stage == stage:
                return
        except (WorkflowQueryFailedError, RPCError):
            pass  # a query can arrive before the worker's first workflow task: ask again
        assert time.monotonic() < deadline, f"never reached {stage}"
        await asyncio.sleep(0.05)


async def _wait_closed(handle: WorkflowHandle[MatchWorkflow, MatchOutput]) -> None:
    deadline = time.monotonic() + 30
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the workflow never ended"
        await asyncio.sleep(0.05)


def _url(org: TestOrg, match: Match, action: str = "") -> str:
    return f"/orgs/{org.id}/matches/{match.id}/processing{action}"


async def _catalog_status(client: httpx.AsyncClient, org: TestOrg, match: Match) -> str:
    response = await client.get(
        f"/orgs/{org.id}/matches/{match.id}", headers=org.member(Role.viewer).headers
    )
    status: str = response.json()["status"]
    return status


async def test_a_match_never_started_is_not_started(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    response = await client.get(_url(org, match), headers=org.member(Role.viewer).headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "not_started" and body["match_status"] == "created"
    assert body["progress"] is None and body["ui_url"] is None


async def test_status_shows_the_stage_progress_and_the_ui_link(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
    gate: asyncio.Event,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    handle = await _start(app, temporal_client, api_settings, match)
    await _wait_for_stage(handle, "track")

    response = await client.get(_url(org, match), headers=org.member(Role.viewer).headers)
    assert response.status_code == 200, response.text
    body = response.json()
    run_id = (await handle.describe()).run_id
    assert body["status"] == "running" and body["match_status"] == "processing"
    assert body["workflow_id"] == workflow_id_for(str(match.id)) and body["run_id"] == run_id
    assert body["ui_url"] == ui_link(api_settings, body["workflow_id"], run_id)
    assert body["started_at"] and body["closed_at"] is None
    progress = body["progress"]
    assert progress["stage"] == "track" and progress["revision"] == 1
    assert progress["failed"] is None
    assert {name: (s["done"], s["total"]) for name, s in progress["stages"].items()} == {
        "ingest": (1, 1),
        "stitch": (3, 3),
        "detect": (3, 3),
        "track": (0, 1),
    }
    ingest = progress["stages"]["ingest"]
    assert ingest["seconds"] >= 0
    assert datetime.fromisoformat(ingest["finished_at"]) >= datetime.fromisoformat(
        ingest["started_at"]
    )
    assert progress["stages"]["track"]["seconds"] is None  # still running
    assert body["warnings"] == []
    assert STITCHED_OFFSETS[str(match.id)] == {0}

    gate.set()
    await handle.result()
    done = (await client.get(_url(org, match), headers=org.member(Role.viewer).headers)).json()
    assert done["status"] == "completed" and done["closed_at"]
    assert done["progress"]["stage"] == "done"
    assert done["progress"]["stages"]["index"]["done"] == 1


async def test_an_out_of_sync_pair_is_a_warning_and_is_stitched_with_its_offset(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
    gate: asyncio.Event,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    OUT_OF_SYNC[str(match.id)] = -5
    handle = await _start(app, temporal_client, api_settings, match)
    await _wait_for_stage(handle, "track")

    body = (await client.get(_url(org, match), headers=org.member(Role.viewer).headers)).json()
    assert body["status"] == "running" and body["warnings"] == [SYNC_WARNING]
    assert STITCHED_OFFSETS[str(match.id)] == {-5}, "every chunk paired with the offset"
    gate.set()
    await handle.result()
    done = (await client.get(_url(org, match), headers=org.member(Role.viewer).headers)).json()
    assert done["status"] == "completed" and done["warnings"] == [SYNC_WARNING]


async def test_reprocess_is_validated_then_reruns_from_the_stage(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
    gate: asyncio.Event,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    handle = await _start(app, temporal_client, api_settings, match)
    await _wait_for_stage(handle, "track")
    url, admin = _url(org, match, "/reprocess"), org.member(Role.admin).headers

    unknown = await client.post(url, json={"from_stage": "colour"}, headers=admin)
    assert unknown.status_code == 422
    assert "unknown stage 'colour'" in unknown.json()["detail"]
    early = await client.post(url, json={"from_stage": "index"}, headers=admin)
    assert early.status_code == 409
    assert "has not started yet" in early.json()["detail"]
    for role in (Role.analyst, Role.viewer):
        refused = await client.post(
            url, json={"from_stage": "stitch"}, headers=org.member(role).headers
        )
        assert refused.status_code == 403

    accepted = await client.post(url, json={"from_stage": "stitch"}, headers=admin)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["detail"] == "reprocessing from stitch"
    assert body["ui_url"] == ui_link(api_settings, handle.id, body["run_id"])
    # The first request waits for tracking to end: a second one is refused meanwhile.
    pending = await client.post(url, json={"from_stage": "detect"}, headers=admin)
    assert pending.status_code == 409
    assert "already pending" in pending.json()["detail"]

    gate.set()
    await handle.result()
    history = await handle.fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled.count("stitch_prepare") == 2 and scheduled.count("track_match") == 2
    assert scheduled.count("ingest") == 1
    # Finished: processing again is a new run writing the next revision, which needs the
    # match's uploaded recording.
    no_recording = await client.post(url, json={"from_stage": "track"}, headers=admin)
    assert no_recording.status_code == 409
    assert "no uploaded recording" in no_recording.json()["detail"]
    await _completed_upload(app, match)
    again = await client.post(url, json={"from_stage": "track"}, headers=admin)
    assert again.status_code == 202, again.text
    body = again.json()
    assert (body["revision"], body["restarted_from"]) == (2, "ingest")
    assert body["run_id"] != handle.result_run_id
    assert body["match_status"] == "processing"
    rerun = temporal_client.get_workflow_handle(
        handle.id, run_id=body["run_id"], result_type=MatchOutput
    )
    assert (await rerun.result()).revision == 2


async def _completed_upload(app: FastAPI, match: Match) -> None:
    prefix = f"orgs/{match.organization_id}/uploads/{match.id}"
    upload = Upload(
        organization_id=match.organization_id,
        match_id=match.id,
        left_size=10,
        right_size=10,
        left_sha256="a" * 64,
        right_sha256="b" * 64,
        left_frames=100,
        right_frames=100,
        status=UploadStatus.completed,
        completed_at=datetime.now(UTC),
        left_key=f"{prefix}/left.mp4",
        right_key=f"{prefix}/right.mp4",
        rig_key=f"{prefix}/rig.json",
    )
    async with app.state.sessions() as session:
        session.add(upload)
        await session.commit()


async def test_cancel_stops_the_run_and_marks_the_match(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    handle = await _start(app, temporal_client, api_settings, match)
    await _wait_for_stage(handle, "track")
    url = _url(org, match, "/cancel")

    for role in (Role.analyst, Role.viewer):
        assert (await client.post(url, headers=org.member(role).headers)).status_code == 403
    accepted = await client.post(url, headers=org.member(Role.owner).headers)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["match_status"] == "cancelled"
    assert body["ui_url"] == ui_link(api_settings, handle.id, body["run_id"])
    assert await _catalog_status(client, org, match) == "cancelled"

    await _wait_closed(handle)
    status = (await client.get(_url(org, match), headers=org.member(Role.viewer).headers)).json()
    assert status["status"] == "cancelled"
    assert status["progress"]["failed"] == "cancelled"  # the workflow cleaned up
    again = await client.post(url, headers=org.member(Role.owner).headers)
    assert again.status_code == 409
    reprocess = await client.post(
        _url(org, match, "/reprocess"),
        json={"from_stage": "ingest"},
        headers=org.member(Role.owner).headers,
    )
    assert reprocess.status_code == 409


async def test_actions_on_a_match_never_started_are_conflicts(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    owner = org.member(Role.owner).headers
    cancel = await client.post(_url(org, match, "/cancel"), headers=owner)
    assert cancel.status_code == 409
    assert cancel.json()["detail"] == "Processing of this match has not started."
    reprocess = await client.post(
        _url(org, match, "/reprocess"), json={"from_stage": "ingest"}, headers=owner
    )
    assert reprocess.status_code == 409


async def test_the_catalog_follows_a_run_ended_in_temporal(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
) -> None:
    org = await factory.org()
    viewer = org.member(Role.viewer).headers
    terminated, cancelled = await _match(app, org), await _match(app, org)
    terminated_run = await _start(app, temporal_client, api_settings, terminated)
    cancelled_run = await _start(app, temporal_client, api_settings, cancelled)
    # Both held at tracking (the gate is closed) before an operator ends them.
    await _wait_for_stage(terminated_run, "track")
    await _wait_for_stage(cancelled_run, "track")
    # An operator ends both runs in the Temporal UI, not through the API.
    await terminated_run.terminate(reason="operator")
    await cancelled_run.cancel()
    await _wait_closed(cancelled_run)

    status = (await client.get(_url(org, terminated), headers=viewer)).json()
    assert status["status"] == "terminated" and status["match_status"] == "failed"
    assert status["progress"]["stage"] == "track"  # the replayed run still answers
    assert await _catalog_status(client, org, terminated) == "failed"
    status = (await client.get(_url(org, cancelled), headers=viewer)).json()
    assert status["status"] == "cancelled" and status["match_status"] == "cancelled"
    assert await _catalog_status(client, org, cancelled) == "cancelled"


def test_only_a_match_still_processing_is_reconciled() -> None:
    assert reconciled_status(MatchStatus.processing, ProcessingState.failed) == MatchStatus.failed
    assert (
        reconciled_status(MatchStatus.processing, ProcessingState.timed_out) == MatchStatus.failed
    )
    assert (
        reconciled_status(MatchStatus.processing, ProcessingState.cancelled)
        == MatchStatus.cancelled
    )
    assert reconciled_status(MatchStatus.processing, ProcessingState.running) is None
    assert reconciled_status(MatchStatus.processing, ProcessingState.completed) is None
    # The index stage already set ready; a later look at Temporal changes nothing.
    assert reconciled_status(MatchStatus.ready, ProcessingState.failed) is None


async def test_another_tenants_processing_is_404(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
) -> None:
    org, other = await factory.org(), await factory.org()
    match = await _match(app, org)
    handle = await _start(app, temporal_client, api_settings, match)
    await _wait_for_stage(handle, "track")
    stranger = other.member(Role.owner).headers
    for org_id in (org.id, other.id):
        base = f"/orgs/{org_id}/matches/{match.id}/processing"
        assert (await client.get(base, headers=stranger)).status_code == 404
        cancel = await client.post(f"{base}/cancel", headers=stranger)
        assert cancel.status_code == 404
        reprocess = await client.post(
            f"{base}/reprocess", json={"from_stage": "ingest"}, headers=stranger
        )
        assert reprocess.status_code == 404
    missing = f"/orgs/{org.id}/matches/{uuid.uuid4()}/processing"
    assert (await client.get(missing, headers=org.member(Role.owner).headers)).status_code == 404
    # Nothing happened to the run.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_temporal_down_is_503(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        factory = Factory(application)
        org = await factory.org(roles=(Role.owner,))
        match = await _match(application, org)
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            owner = org.member(Role.owner).headers
            for method, action in (("GET", ""), ("POST", "/cancel")):
                response = await http.request(method, _url(org, match, action), headers=owner)
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/problem+json"


async def test_a_failed_run_says_why(
    client: httpx.AsyncClient,
    factory: Factory,
    app: FastAPI,
    temporal_client: Client,
    api_settings: Settings,
    workers: None,
) -> None:
    org = await factory.org()
    match = await _match(app, org)
    workflow_id = workflow_id_for(str(match.id))
    handle = await temporal_client.start_workflow(
        MatchWorkflow.run,
        MatchInput(
            organization_id=str(match.organization_id),
            match_id=str(match.id),
            left_key="orgs/x/uploads/mismatched/left.mp4",
            right_key="orgs/x/uploads/mismatched/right.mp4",
            rig_key="orgs/x/uploads/mismatched/rig.json",
            task_queue_suffix=api_settings.task_queue_suffix,
        ),
        id=workflow_id,
        task_queue=queue_names(api_settings.task_queue_suffix)[QueueRole.cpu],
    )
    async with app.state.sessions() as session:
        match.workflow_id, match.status = workflow_id, MatchStatus.processing
        session.add(match)
        await session.commit()
    await _wait_closed(handle)
    body = (await client.get(_url(org, match), headers=org.member(Role.viewer).headers)).json()
    assert body["status"] == "failed"
    assert body["match_status"] == "failed"
    assert "frame counts differ: left 100, right 50" in body["failure"]
    # The progress says where and how it failed (it stayed null for a failed run).
    assert body["progress"]["failed"] == "ingest: RecordingMismatch"
    assert body["progress"]["running"] == []
