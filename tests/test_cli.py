"""The `polyvision` commands an operator runs on a cluster: migrations and Temporal setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from polyvision.storage.analytics import open_analytics_store
from polyvision.storage.metadata import current, head
from tests.fixtures.temporal import TemporalTestServer


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "programs.cli", *args],
        env={**os.environ, "PV_LOG_JSON": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_on_embedded_stores_is_idempotent(tmp_path: Path) -> None:
    env = {"PV_DATA_DIR": str(tmp_path / "pv")}
    for _ in range(2):
        completed = run_cli("db", "upgrade", env=env)
        assert completed.returncode == 0, completed.stderr
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pv' / 'metadata.db'}"
    assert current(database_url) == head()
    with open_analytics_store(f"chdb://{tmp_path / 'pv' / 'analytics'}") as analytics:
        versions = analytics.query_numpy("SELECT version FROM schema_migrations")["version"]
    assert len(versions) == len(set(versions.tolist())) >= 1  # recorded once, not per run
    events = [json.loads(line)["event"] for line in completed.stderr.splitlines() if line]
    assert "metadata schema up to date" in events
    assert "analytics schema up to date" in events


def test_db_upgrade_on_postgresql(tmp_path: Path, postgres_database_url: str) -> None:
    completed = run_cli(
        "db",
        "upgrade",
        env={"PV_DATA_DIR": str(tmp_path / "pv"), "PV_DATABASE_URL": postgres_database_url},
    )
    assert completed.returncode == 0, completed.stderr
    assert current(postgres_database_url) == head()


async def test_temporal_apply_registers_then_changes_nothing(
    temporal_server: TemporalTestServer, temporal_client: Client, tmp_path: Path
) -> None:
    namespace = f"pv-cli-{uuid.uuid4().hex[:8]}"
    env = {
        "PV_DATA_DIR": str(tmp_path / "pv"),
        "PV_TEMPORAL_ADDRESS": temporal_server.address,
        "PV_TEMPORAL_NAMESPACE": namespace,
    }
    first = run_cli("temporal", "apply", env=env)
    assert first.returncode == 0, first.stderr
    assert f"namespace {namespace}: registered" in first.stdout
    assert "search attributes added: MatchId, OrganizationId, DeviceId, PipelineStage" in (
        first.stdout
    )
    assert "schedule polyvision-retention: created" in first.stdout
    second = run_cli("temporal", "apply", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"namespace {namespace}: up to date, nothing changed",
        "schedule polyvision-retention: up to date",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PV_ENV": "production"}, "PV_SECRET_KEY must be set"),
        ({"PV_API_PORT": "not-a-port"}, "api_port"),
    ],
)
def test_invalid_settings_exit_2_with_the_reason(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    completed = run_cli("db", "upgrade", env={"PV_DATA_DIR": str(tmp_path / "pv"), **env})
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "pv").exists()  # nothing was touched


def test_temporal_apply_explains_an_unreachable_server(tmp_path: Path) -> None:
    completed = run_cli(
        "temporal",
        "apply",
        env={"PV_DATA_DIR": str(tmp_path / "pv"), "PV_TEMPORAL_ADDRESS": "127.0.0.1:1"},
    )
    assert completed.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in completed.stderr
    assert "Traceback" not in completed.stderr


async def test_commands_using_temporal_exit_cleanly_every_time(
    temporal_server: TemporalTestServer, tmp_path: Path
) -> None:
    # The SDK's runtime can crash a finished process at interpreter exit; the CLI must not.
    env = {
        "PV_DATA_DIR": str(tmp_path / "pv"),
        "PV_TEMPORAL_ADDRESS": temporal_server.address,
        "PV_TEMPORAL_NAMESPACE": temporal_server.namespace.name,
    }
    codes = [run_cli("temporal", "apply", env=env).returncode for _ in range(8)]
    assert codes == [0] * 8


SOCCERTRACK = (
    Path(
        os.environ.get(
            "PV_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
        )
    )
    / "soccertrack-v1"
)


@pytest.mark.skipif(not SOCCERTRACK.is_dir(), reason=f"{SOCCERTRACK} not present")
def test_rig_soccertrack_writes_a_loadable_rig(tmp_path: Path) -> None:
    from polyvision.geometry import Rig

    out = tmp_path / "rig.json"
    completed = run_cli(
        "rig",
        "soccertrack",
        str(SOCCERTRACK),
        "--out",
        str(out),
        "--right-lens-from-left",
        env={"PV_DATA_DIR": str(tmp_path / "pv")},
    )
    assert completed.returncode == 0, completed.stderr
    rig = Rig.load(out)
    assert set(rig.cameras) == {"left", "right"}
    assert rig.cameras["left"].image_size == (3072, 1728)
    assert "(99.5,0)" in completed.stdout  # the mislabelled point is reported as an outlier


# -- up and worker ----------------------------------------------------------------------------


def test_worker_honours_the_task_queue_suffix_and_explains_an_unreachable_server(
    tmp_path: Path,
) -> None:
    completed = run_cli(
        "worker",
        env={
            "PV_DATA_DIR": str(tmp_path / "pv"),
            "PV_TASK_QUEUE_SUFFIX": "-bob",
            "PV_TEMPORAL_ADDRESS": "127.0.0.1:1",
            "PV_WORKER_METRICS_PORT": "0",
        },
    )
    assert completed.returncode == 1, completed.stderr
    # One line per queue, suffixed as the API's queues are, before anything is connected.
    queues = [line.split(":")[0] for line in completed.stdout.splitlines()]
    assert queues == ["polyvision-gpu-bob", "polyvision-nvenc-bob", "polyvision-cpu-bob"]
    failure = [line for line in completed.stderr.splitlines() if line.startswith("polyvision")]
    assert len(failure) == 1
    assert failure[0].startswith("polyvision worker: cannot reach Temporal at 127.0.0.1:1")
    assert "Traceback" not in completed.stderr


def test_worker_flag_suffix_wins_over_the_variable() -> None:
    from programs.cli import build_parser

    assert build_parser().parse_args(["worker"]).task_queue_suffix is None  # PV_ then
    args = build_parser().parse_args(["worker", "--task-queue-suffix=-dev"])
    assert args.task_queue_suffix == "-dev"


def test_up_port_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from programs.cli import build_parser

    args = build_parser().parse_args(
        ["up", "--api-port", "9000", "--temporal-port=9001", "--ui-port=9002", "--metrics-port=0"]
    )
    assert (args.api_port, args.temporal_port, args.ui_port, args.metrics_port) == (
        9000,
        9001,
        9002,
        0,
    )
    assert build_parser().parse_args(["up"]).api_port is None
    for bad in (["--api-port=0"], ["--ui-port=http"], ["--metrics-port=70000"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["up", *bad])
    assert "is not a TCP port" in capsys.readouterr().err


def test_process_takes_the_side_settings_and_refuses_a_bad_colour(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from programs.cli import build_parser

    base = ["process", "--left", "l.mp4", "--right", "r.mp4", "--rig", "rig.json"]
    args = build_parser().parse_args([*base, "--home-kit", "#C81923", "--home-starts-right"])
    assert (args.home_kit, args.away_kit, args.home_starts_left) == ("#c81923", None, False)
    assert build_parser().parse_args(base).home_starts_left is None
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*base, "--away-kit", "blue"])
    assert exit_info.value.code == 2
    assert "'blue' is not a colour #rrggbb" in capsys.readouterr().err
