"""`polyvision process` starts its match through the processing client: the deployment's
task-queue suffix, the search attributes, and a catalog row in an organization."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from polyvision.settings import Settings
from polyvision.storage.metadata.models import Asset, Match, MatchStatus, Organization
from polyvision.storage.objects import open_object_store
from polyvision.temporal.search_attributes import DEVICE_ID, MATCH_ID, ORGANIZATION_ID
from processing import MatchProcessing, ProcessingState
from programs.process import ProcessRequest, process_match, run_process, start_match
from tests.processing.conftest import started_input, wait_for_stage

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def pair(tmp_path: Path) -> ProcessRequest:
    """Three small files standing for a recording pair and its rig (the stand-ins read none)."""
    files = {"left": tmp_path / "Left.MP4", "right": tmp_path / "right.mp4"}
    for name, path in files.items():
        path.write_bytes(name.encode() * 1000)
    rig = tmp_path / "rig.json"
    rig.write_text("{}")
    return ProcessRequest(left=files["left"], right=files["right"], rig=rig, chunk_seconds=10.0)


async def test_process_starts_like_an_upload_and_registers_the_match(
    processing: MatchProcessing,
    sessions: Sessions,
    temporal_client: Client,
    settings: Settings,
    pair: ProcessRequest,
    workers: None,
    gate: asyncio.Event,
) -> None:
    gate.set()
    match_id = uuid.uuid4()
    request = ProcessRequest(
        left=pair.left, right=pair.right, rig=pair.rig, match_id=match_id, title="Rovers vs XI"
    )
    output = await process_match(processing, sessions, request, show=False)
    assert output.revision == 1

    async with sessions() as session:
        (org,) = (await session.exec(select(Organization))).all()
        match = await session.get(Match, match_id)
        assets = (await session.exec(select(Asset).where(col(Asset.match_id) == match_id))).all()
    assert org.slug == "local"
    assert match is not None
    assert (match.organization_id, match.title, match.revision, match.workflow_id) == (
        org.id,
        "Rovers vs XI",
        1,
        f"match-{match_id}",
    )
    # The stand-in index does not touch the catalog; the real one marks this row ready.
    assert match.status is MatchStatus.processing
    assert sorted(asset.kind.value for asset in assets) == ["recording_left", "recording_right"]

    workflow_id = f"match-{match_id}"
    run = await processing.describe(workflow_id)
    assert run is not None and run.state is ProcessingState.completed
    description = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert description.task_queue == f"polyvision-cpu{settings.task_queue_suffix}"
    attributes = description.typed_search_attributes
    assert attributes.get(MATCH_ID) == str(match_id)
    assert attributes.get(ORGANIZATION_ID) == str(org.id)
    assert attributes.get(DEVICE_ID) is None
    started = await started_input(temporal_client, workflow_id, run.run_id)
    # What the index stage keys the catalog update on: the row's own ids.
    assert (started.organization_id, started.match_id) == (str(org.id), str(match_id))
    assert started.task_queue_suffix == settings.task_queue_suffix
    assert started.left_key.startswith(f"orgs/{org.id}/uploads/")
    assert started.left_key.endswith("/left.mp4")  # the extension lower-cased
    async with open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    ) as objects:
        assert await objects.get(started.left_key) == b"left" * 1000
        assert await objects.get(started.rig_key) == b"{}"
    by_key = {asset.object_key: asset for asset in assets}
    assert by_key[started.left_key].size_bytes == 4000
    assert by_key[started.right_key].sha256 is not None

    # The same match again: its next revision, from a new upload of the pair.
    again = await process_match(processing, sessions, request, show=False)
    assert again.revision == 2
    async with sessions() as session:
        match = await session.get(Match, match_id)
        assets = (await session.exec(select(Asset).where(col(Asset.match_id) == match_id))).all()
    assert match is not None and match.revision == 2
    assert len(assets) == 4


async def test_process_follows_a_run_still_going(
    processing: MatchProcessing, sessions: Sessions, pair: ProcessRequest, workers: None
) -> None:
    request = ProcessRequest(left=pair.left, right=pair.right, rig=pair.rig, organization="club-b")
    match_id, run_id = await start_match(processing, sessions, request)
    workflow_id = MatchProcessing.workflow_id(str(match_id))
    await wait_for_stage(processing, workflow_id, run_id, "track")
    following = ProcessRequest(
        left=pair.left, right=pair.right, rig=pair.rig, organization="club-b", match_id=match_id
    )
    assert await start_match(processing, sessions, following) == (match_id, run_id)
    async with sessions() as session:
        assets = (await session.exec(select(Asset).where(col(Asset.match_id) == match_id))).all()
    assert len(assets) == 2  # nothing uploaded again

    # Another organization may not name it.
    elsewhere = ProcessRequest(
        left=pair.left, right=pair.right, rig=pair.rig, organization="club-c", match_id=match_id
    )
    with pytest.raises(LookupError, match="another organization"):
        await start_match(processing, sessions, elsewhere)
    await processing.cancel(workflow_id, reason="test over")


def test_the_command_refuses_a_bad_organization_with_2(
    settings: Settings, pair: ProcessRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    from polyvision.storage.metadata import upgrade

    upgrade(settings.database_url)
    request = ProcessRequest(
        left=pair.left, right=pair.right, rig=pair.rig, organization="Not A Slug"
    )
    assert run_process(settings, request) == 2
    assert "neither an organization id nor a slug" in capsys.readouterr().err
