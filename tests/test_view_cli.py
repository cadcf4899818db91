"""`polyvision view`: its arguments, its refusals, and a view rendered through it to the end."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from polyvision.settings import Settings
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.metadata.migrate import upgrade
from polyvision.storage.metadata.models import Match, MatchStatus, Organization
from polyvision.storage.objects import open_object_store
from processing.views import camera_settings, view_name
from programs.cli import build_parser
from programs.view_cli import run_view
from tests.fixtures.temporal import TemporalTestServer
from tests.workflows.view_standins import (
    REVISION,
    Calls,
    CameraStandins,
    processed_revision,
    view_workers,
)

MATCH = "9b1e6a52-8d0c-4c55-a7c5-2f3e4d5c6b7a"


def test_the_arguments() -> None:
    args = build_parser().parse_args(
        [
            "view",
            MATCH,
            "--mode",
            "zones",
            "--param",
            "smoothing_s=1.5",
            "--param",
            "zoom = 2",
            "--causal",
            "--wait",
        ]
    )
    assert args.handler is run_view
    assert args.match_id == uuid.UUID(MATCH)
    assert (args.mode, args.params, args.causal, args.wait) == (
        "zones",
        [("smoothing_s", 1.5), ("zoom", 2.0)],
        True,
        True,
    )
    plain = build_parser().parse_args(["view", MATCH, "--mode", "centered"])
    assert (plain.params, plain.causal, plain.wait, plain.stack) == ([], False, False, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--param", "smoothing_s=fast"], "the value of 'smoothing_s' must be a finite number"),
        (["--param", "smoothing_s=nan"], "must be a finite number, not 'nan'"),
        (["--param", "smoothing_s=inf"], "must be a finite number, not 'inf'"),
        (["--param", "smoothing_s"], "is not NAME=VALUE"),
        (["--param", "=1"], "is not NAME=VALUE"),
        (["--mode", "fisheye"], "invalid choice: 'fisheye'"),
    ],
)
def test_a_bad_argument_is_refused_saying_why(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["view", MATCH, "--mode", "zones", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_match_id_must_be_a_uuid(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["view", "not-a-match", "--mode", "zones"])
    assert "invalid UUID value: 'not-a-match'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["smoothing_s=1", "smoothing_s=2"], "--param smoothing_s is given twice"),
        (["Smoothing-S=1"], "parameter name 'Smoothing-S' is not lower-case letters"),
    ],
)
def test_parameters_the_planner_could_not_take_are_refused_before_anything_starts(
    params: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["view", MATCH, "--mode", "zones"]
    for param in params:
        argv += ["--param", param]
    args = build_parser().parse_args(argv)
    # No Temporal answers there: a refusal must come before any connection.
    settings = Settings(data_dir=tmp_path / "pv", temporal_address="127.0.0.1:1")
    assert run_view(settings, args) == 2
    assert f"polyvision view: {message}" in capsys.readouterr().err


async def _catalog(settings: Settings, *, processed: bool) -> Match:
    await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_maker(engine)() as session:
            organization = Organization(name="local", slug="local")
            session.add(organization)
            await session.flush()
            match = Match(
                organization_id=organization.id,
                title="Final",
                status=MatchStatus.ready if processed else MatchStatus.processing,
                revision=REVISION,
                published_revision=REVISION if processed else None,
            )
            session.add(match)
            await session.commit()
            await session.refresh(match)
    finally:
        await engine.dispose()
    return match


async def _polyvision(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "programs.cli",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _env(settings: Settings, server: TemporalTestServer) -> dict[str, str]:
    return {
        "PV_DATA_DIR": str(settings.data_dir),
        "PV_TEMPORAL_ADDRESS": server.address,
        "PV_TEMPORAL_NAMESPACE": server.namespace.name,
        "PV_TASK_QUEUE_SUFFIX": settings.task_queue_suffix,
        "PV_API_PUBLIC_URL": "http://api.example",
    }


async def test_a_view_started_and_followed_to_its_end(
    temporal_server: TemporalTestServer,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "pv", task_queue_suffix=f"-{task_queue}")
    match = await _catalog(settings, processed=True)
    env = _env(settings, temporal_server)
    objects = open_object_store(settings.objects_url, secret=b"s" * 32, public_base_url="http://t")
    async with objects:
        await processed_revision(objects, str(match.organization_id), str(match.id))
        opened = asyncio.Event()
        opened.set()
        camera = CameraStandins(objects, Calls(), opened)
        async with view_workers(temporal_client, settings.task_queue_suffix, objects, camera):
            code, out, err = await _polyvision(
                "view",
                str(match.id),
                "--mode",
                "zones",
                "--param",
                "smoothing_s=2",
                "--wait",
                env=env,
            )
    assert code == 0, err
    name = view_name(camera_settings("zones", {"smoothing_s": 2.0}))
    assert f"view {name} of match {match.id} (revision {REVISION}):" in out
    assert "done: 45 frames in 2 chunks" in out
    assert f"/{REVISION}/hls/views/{name}/master.m3u8" in out
    assert (
        f"playback: http://api.example/orgs/{match.organization_id}/matches/{match.id}"
        f"/playback?view={name}"
    ) in out


async def test_a_match_not_processed_or_unknown_is_refused(
    temporal_server: TemporalTestServer, task_queue: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "pv", task_queue_suffix=f"-{task_queue}")
    match = await _catalog(settings, processed=False)
    env = _env(settings, temporal_server)
    code, _, err = await _polyvision("view", str(match.id), "--mode", "zones", env=env)
    assert code == 1
    assert "polyvision view: This match has no finished processing yet" in err
    code, _, err = await _polyvision("view", str(uuid.uuid4()), "--mode", "zones", env=env)
    assert code == 2
    assert "polyvision view: no match" in err
