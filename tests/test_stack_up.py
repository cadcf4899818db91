"""`polyvision up` as an operator runs it: healthy, persistent, down clean on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polyvision.temporal.client import connect
from polyvision.temporal.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE
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


async def _health(stack: StackProcess, workflow_id: str) -> list[str]:
    client = await connect(stack.temporal_address, "polyvision")
    result = await client.execute_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(queues=[CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE]),
        id=workflow_id,
        task_queue=CPU_QUEUE,
    )
    return [answer.queue for answer in result.answers]


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
    [("api_port", "set PV_API_PORT to a free port"), ("temporal_port", "Temporal frontend port")],
    ids=["api-port", "temporal-port"],
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
