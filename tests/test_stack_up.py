"""`polyvision up` as an operator runs it: healthy, persistent, down clean on Ctrl-C or SIGTERM.

And honest: its ports follow its flags, its worker polls the queues the API starts matches on,
a component that dies takes the stack down with a line that says which, and a second worker on
its data directory is refused with the reason.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.temporal.client import connect
from polyvision.temporal.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE, QueueRole, queue_names
from programs.stack import with_ports
from programs.stack_process import StackProcess
from workflows.health import HealthCheckInput, HealthCheckWorkflow

CRASH_MARKERS = ("Traceback", "panic", "Fatal Python error", "Aborted", "SIGABRT")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[StackProcess]:
    process = StackProcess(data_dir=tmp_path / "pv")
    yield process
    # Whatever a test did, nothing of this stack outlives it.
    if process.process is not None and process.process.poll() is None:
        process.process.kill()
        process.process.wait()
    process.kill_leftovers()


async def _health(stack: StackProcess, workflow_id: str, suffix: str = "") -> list[str]:
    names = queue_names(suffix)
    client = await connect(stack.temporal_address, "polyvision")
    result = await client.execute_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(queues=list(names.values())),
        id=workflow_id,
        task_queue=names[QueueRole.cpu],
        # A queue nobody polls never answers: fail then, rather than hang.
        execution_timeout=timedelta(seconds=60),
    )
    return [answer.queue for answer in result.answers]


async def _workflow_pollers(stack: StackProcess, task_queue: str) -> int:
    client = await connect(stack.temporal_address, "polyvision")
    description = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="polyvision",
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return len(description.pollers)


def _assert_clean_exit(stack: StackProcess, code: int) -> None:
    output = stack.output()
    assert code == 0, output[-3000:]
    assert stack.leftovers() == [], output[-3000:]
    for marker in CRASH_MARKERS:
        assert marker not in output, output[-3000:]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_serves_everything_then_stops_clean(stack: StackProcess, sig: signal.Signals) -> None:
    stack.start()
    readiness = stack.wait_ready(timeout_s=120)
    assert readiness["status"] == "ready"
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(stack.ui_url, timeout=10).status_code == 200
    assert "temporal_" not in httpx.get(f"{stack.api_url}/metrics").text  # API's own registry
    # The one development worker serves every queue.
    answered = asyncio.run(_health(stack, f"health-{sig.name}"))
    assert sorted(answered) == sorted([CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE])
    output = stack.output()
    assert f"Polyvision API:  {stack.api_url}" in output
    assert f"Temporal UI:     {stack.ui_url}" in output
    _assert_clean_exit(stack, stack.stop(sig, timeout_s=60))
    # All embedded state stays under the one data directory.
    assert (stack.data_dir / "temporal.sqlite").exists()
    assert (stack.data_dir / "metadata.db").exists()
    assert (stack.data_dir / "analytics").is_dir()


def test_up_keeps_temporal_history_across_restarts(stack: StackProcess) -> None:
    stack.start()
    stack.wait_ready(timeout_s=120)
    asyncio.run(_health(stack, "health-before-restart"))
    _assert_clean_exit(stack, stack.stop(signal.SIGTERM))

    stack.start()
    stack.wait_ready(timeout_s=120)

    async def find() -> str:
        client = await connect(stack.temporal_address, "polyvision")
        description = await client.get_workflow_handle("health-before-restart").describe()
        return description.status.name if description.status else "unknown"

    assert asyncio.run(find()) == "COMPLETED"
    _assert_clean_exit(stack, stack.stop(signal.SIGTERM))


@pytest.mark.parametrize(
    ("port_field", "message"),
    [
        ("api_port", "set PV_API_PORT (or --api-port) to a free port"),
        ("temporal_port", "Temporal frontend port"),
        ("ui_port", "set PV_TEMPORAL_UI_URL (or --ui-port) to a free port"),
        ("metrics_port", "set PV_WORKER_METRICS_PORT (or --metrics-port) to a free port"),
    ],
    ids=["api-port", "temporal-port", "ui-port", "metrics-port"],
)
def test_busy_port_fails_with_a_clear_message_and_leaves_nothing(
    tmp_path: Path, port_field: str, message: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        stack = StackProcess(data_dir=tmp_path / "pv", **{port_field: busy.getsockname()[1]})
        completed = subprocess.run(
            [sys.executable, "-m", "programs.cli", "up"],
            env=stack.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 1, completed.stderr[-2000:]
    failure = [line for line in completed.stderr.splitlines() if line.startswith("polyvision up:")]
    assert len(failure) == 1 and message in failure[0], completed.stderr[-2000:]
    assert "not free" in failure[0] or "in use" in failure[0]
    assert "Traceback" not in completed.stderr
    assert stack.leftovers() == []
    assert not (stack.data_dir / "temporal.sqlite").exists()  # nothing was started


def test_port_flags_override_their_variables(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        api_port=8000,
        temporal_address="127.0.0.1:7233",
        temporal_ui_url="http://127.0.0.1:8233",
        worker_metrics_port=9464,
    )
    moved = with_ports(settings, api=9000, temporal=9001, ui=9002, metrics=0)
    assert (moved.api_port, moved.api_public_url) == (9000, "http://127.0.0.1:9000")
    assert moved.temporal_address == "127.0.0.1:9001"
    assert moved.temporal_ui_url == "http://127.0.0.1:9002"
    assert moved.worker_metrics_port == 0
    assert with_ports(settings) == settings
    public = settings.model_copy(update={"api_public_url": "https://pv.example"})
    assert with_ports(public, api=9000).api_public_url == "https://pv.example"


def test_up_with_a_queue_suffix_polls_the_suffixed_queues(stack: StackProcess) -> None:
    # The API starts matches on the suffixed queues (PV_TASK_QUEUE_SUFFIX); up's own worker
    # must poll exactly those, or every match stalls without an error.
    stack.extra_env["PV_TASK_QUEUE_SUFFIX"] = "-stack"
    stack.start()
    stack.wait_ready(timeout_s=120)
    answered = asyncio.run(_health(stack, "health-suffixed", suffix="-stack"))
    assert sorted(answered) == sorted(queue_names("-stack").values())
    assert asyncio.run(_workflow_pollers(stack, CPU_QUEUE)) == 0
    output = stack.output()
    for name in queue_names("-stack").values():
        assert f"  {name}: " in output, output[-3000:]
    _assert_clean_exit(stack, stack.stop(signal.SIGTERM))


def test_a_second_worker_beside_up_is_refused_with_the_reason(stack: StackProcess) -> None:
    stack.start()
    stack.wait_ready(timeout_s=120)
    assert stack.process is not None
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "programs.cli", "worker", "--queues", "cpu"],
        env={**stack.environment(), "PV_WORKER_METRICS_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr[-3000:]
    assert time.monotonic() - started < 30
    refusal = [
        line for line in completed.stderr.splitlines() if line.startswith("polyvision worker:")
    ]
    assert len(refusal) == 1, completed.stderr[-3000:]
    assert f"chdb://{stack.data_dir / 'analytics'}" in refusal[0]
    assert f"held by another process (polyvision up, pid {stack.process.pid})" in refusal[0]
    assert "PV_ANALYTICS_URL=clickhouse://" in refusal[0]
    assert "Traceback" not in completed.stderr
    # The stack it was refused beside is unharmed.
    assert httpx.get(f"{stack.api_url}/readyz", timeout=10).status_code == 200
    _assert_clean_exit(stack, stack.stop(signal.SIGTERM))


def test_up_stops_and_fails_when_the_temporal_server_dies(tmp_path: Path) -> None:
    # The ports as flags this time (the PV_ variables keep their defaults).
    stack = StackProcess(data_dir=tmp_path / "pv", port_flags=True)
    stack.start()
    try:
        stack.wait_ready(timeout_s=120)
        assert httpx.get(stack.ui_url, timeout=10).status_code == 200
        assert "temporal_" in httpx.get(stack.metrics_url, timeout=10).text  # the worker's
        (temporal,) = [pid for pid, argv in stack.children().items() if "start-dev" in argv]
        assert f"--port {stack.temporal_port} " in stack.children()[temporal]
        os.kill(temporal, signal.SIGKILL)
        assert stack.process is not None
        code = stack.process.wait(timeout=15)
    finally:
        if stack.process is not None and stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait()
        stack.kill_leftovers()
    output = stack.output()
    assert code == 1, output[-3000:]
    failure = [line for line in output.splitlines() if line.startswith("polyvision up:")]
    assert failure == [
        f"polyvision up: the Temporal dev server (pid {temporal}) exited on its own"
        " (killed by SIGKILL, exit code -9); stopped the worker and the API"
    ], output[-3000:]
    assert "stopped cleanly" not in output
    assert stack.leftovers() == []
    for marker in CRASH_MARKERS:
        assert marker not in output, output[-3000:]
