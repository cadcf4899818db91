"""`polyvision process` starts its match through the processing client: the deployment's
task-queue suffix, the search attributes, and a catalog row in an organization."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from polyvision.settings import Settings
from polyvision.storage.metadata.models import Asset, Match, MatchStatus, Organization
from polyvision.storage.objects import open_object_store
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.devserver import DevServer
from polyvision.temporal.search_attributes import DEVICE_ID, MATCH_ID, ORGANIZATION_ID
from processing import MatchProcessing, ProcessingState
from programs.process import (
    NoStackError,
    ProcessRequest,
    process_match,
    run_process,
    stack_settings,
    start_match,
)
from programs.stack_state import publish_stack_state, running_stack, withdraw_stack_state
from tests.fixtures.standin_workers import SHORT_MATCH, GatedActivities, standin_workers
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


# --- the running stack ---------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    api: str = "http://127.0.0.1:18000"
    temporal_ui: str = "http://127.0.0.1:18233"
    temporal_address: str = "127.0.0.1:17233"


def test_process_uses_the_stack_running_in_its_data_directory(tmp_path: Path) -> None:
    stack_dir, own_dir = tmp_path / "stack", tmp_path / "mine"
    stack = Settings(data_dir=stack_dir, task_queue_suffix="-stack")
    path = publish_stack_state(stack, Urls())
    assert path == stack_dir.resolve() / "stack.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    own = Settings(data_dir=own_dir, temporal_address="elsewhere:7233")
    settings, found = stack_settings(own, stack_dir)  # --stack DIR
    assert found is not None and found.pid == os.getpid()
    assert (settings.temporal_address, settings.temporal_ui_url, settings.api_public_url) == (
        "127.0.0.1:17233",
        "http://127.0.0.1:18233",
        "http://127.0.0.1:18000",
    )
    assert settings.task_queue_suffix == "-stack"
    # The recording goes where the stack's worker reads it.
    assert settings.data_dir == stack.data_dir
    assert (settings.objects_url, settings.database_url) == (stack.objects_url, stack.database_url)
    # By default the command looks in its own PV_DATA_DIR, and keeps its settings without a stack.
    assert stack_settings(stack)[1] is not None
    assert stack_settings(own) == (own, None)
    with pytest.raises(NoStackError, match="no running `polyvision up`"):
        stack_settings(stack, own_dir)


def test_a_stale_or_foreign_state_is_ignored(tmp_path: Path) -> None:
    stack = Settings(
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://pv:secret@db.example/pv",
        objects_url="s3://bucket?region=eu-west-1",
    )
    path = publish_stack_state(stack, Urls())
    written = json.loads(path.read_text())
    # Server stores' URLs (credentials) are not written; the reader's own settings apply.
    assert written["database_url"] is None and written["objects_url"] is None
    assert "secret" not in path.read_text()
    own = Settings(
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://pv:pw@db/pv",
        objects_url="s3://bucket?region=eu-west-1",
    )
    state = running_stack(tmp_path)
    assert state is not None and state.settings(own).database_url == own.database_url
    # Without the server store's URL the command would write to an embedded one instead.
    with pytest.raises(NoStackError, match="PV_DATABASE_URL as the stack has it"):
        stack_settings(Settings(data_dir=tmp_path))

    written["pid_started"] = "1"  # our pid, but another process's start: a reused pid
    path.write_text(json.dumps(written))
    assert running_stack(tmp_path) is None
    path.write_text("not json")
    assert running_stack(tmp_path) is None
    publish_stack_state(stack, Urls())
    withdraw_stack_state(stack)
    assert not path.exists()


class RestartableDevServer(DevServer):
    """A dev server that starts again on the ports of one just stopped (they linger in
    TIME_WAIT, which the server's own listener does not mind)."""

    def _check_ports_free(self) -> None:
        return None


async def test_the_command_rides_out_a_temporal_restart(
    tmp_path: Path, pair: ProcessRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polyvision.storage.metadata import upgrade

    notes: list[str] = []
    monkeypatch.setattr("programs.process._note", notes.append)
    config = load_namespace_config()
    server = RestartableDevServer(tmp_path / "temporal", namespace=config, headless=True)
    await server.start(timeout=30)
    restarted: DevServer | None = None
    gate = asyncio.Event()  # holds tracking until Temporal is back
    try:
        client = await connect(server.address, config.name)
        await apply_namespace(client, config)
        settings = Settings(
            data_dir=tmp_path / "pv",
            temporal_address=server.address,
            temporal_namespace=config.name,
            task_queue_suffix=f"-restart-{uuid.uuid4().hex[:8]}",
        )
        await asyncio.to_thread(upgrade, settings.database_url)
        processing = MatchProcessing(client, settings)
        match_id = uuid.uuid4()
        request = dataclasses.replace(pair, match_id=match_id)
        async with stand_in_workers(client, settings, gate):
            # The command runs as it does from the shell (its own loop, client and stores).
            command = asyncio.ensure_future(asyncio.to_thread(run_process, settings, request))
            workflow_id = MatchProcessing.workflow_id(str(match_id))
            run_id = await _started_run(processing, workflow_id, command)
            await wait_for_stage(processing, workflow_id, run_id, "track")

            await server.stop()
            deadline = time.monotonic() + 30
            while not any("not answering" in note for note in notes):
                assert time.monotonic() < deadline, "the command never noticed the outage"
                assert not command.done(), command.result()
                await asyncio.sleep(0.1)
            restarted = RestartableDevServer(
                tmp_path / "temporal", namespace=config, headless=True, port=server.port
            )
            await restarted.start(timeout=30)
            gate.set()
            assert await asyncio.wait_for(command, 60) == 0, notes
    finally:
        gate.set()
        await server.stop()
        if restarted is not None:
            await restarted.stop()
    assert any("answers again" in note for note in notes), notes


async def _started_run(
    processing: MatchProcessing, workflow_id: str, command: asyncio.Future[int]
) -> str:
    deadline = time.monotonic() + 30
    while (run := await processing.describe(workflow_id)) is None:
        assert not command.done(), f"the command ended with {command.result()}"
        assert time.monotonic() < deadline, "the command never started the match"
        await asyncio.sleep(0.1)
    return run.run_id


@contextlib.asynccontextmanager
async def stand_in_workers(
    client: Client, settings: Settings, gate: asyncio.Event
) -> AsyncIterator[None]:
    """Workers on the settings' queues: the real workflows, the gated stand-in activities."""
    activities = GatedActivities(SHORT_MATCH, gate)
    async with standin_workers(client, settings.task_queue_suffix, activities):
        try:
            yield
        finally:
            gate.set()
