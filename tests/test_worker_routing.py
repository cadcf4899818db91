"""Routing by capability: GPU work runs only where a worker polls the GPU queue.

Also: a worker process stops gracefully on SIGTERM, letting its running activity finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from activities.health_contracts import GpuProbeOutput
from polyvision.capabilities import Capabilities
from polyvision.temporal.queues import QueueRole
from programs.worker.plan import QueuePlan, plan_queues
from tests.fixtures.ports import free_port
from tests.fixtures.temporal import TemporalTestServer, running_worker
from workflows.health import HealthCheckInput, HealthCheckOutput, HealthCheckWorkflow

REPO_ROOT = Path(__file__).resolve().parents[1]


async def wait_until_pending(
    handle: WorkflowHandle[HealthCheckWorkflow, HealthCheckOutput],
    activity_type: str,
    state: PendingActivityState.ValueType,
    within_s: float = 10.0,
) -> None:
    """Poll describe() until the activity is pending in `state`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if any(p.activity_type.name == activity_type and p.state == state for p in pending):
            return
        assert asyncio.get_running_loop().time() < deadline, pending
        await asyncio.sleep(0.1)


async def test_gpu_activity_waits_for_a_gpu_worker_and_runs_only_there(
    temporal_client: Client, task_queue: str
) -> None:
    cpu_queue, gpu_queue = f"{task_queue}-cpu", f"{task_queue}-gpu"
    cpu_plan = QueuePlan(QueueRole.cpu, cpu_queue, 2)
    gpu_plan = QueuePlan(QueueRole.gpu, gpu_queue, 1)

    async with running_worker(temporal_client, [cpu_plan]):
        handle = await temporal_client.start_workflow(
            HealthCheckWorkflow.run,
            HealthCheckInput(queues=[cpu_queue], gpu_probe_queue=gpu_queue),
            id=f"routing-{task_queue}",
            task_queue=cpu_queue,
        )
        # The CPU ping completes; gpu_probe stays scheduled on the GPU queue (never started,
        # never failed) and the workflow keeps running rather than failing.
        await wait_until_pending(
            handle, "gpu_probe", PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        )
        await asyncio.sleep(2.0)
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        (probe,) = desc.raw_description.pending_activities
        assert probe.activity_type.name == "gpu_probe"
        assert probe.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        assert probe.attempt == 1
        assert not probe.HasField("last_failure")
        assert probe.last_worker_identity == ""

        async with running_worker(temporal_client, [gpu_plan]):
            result = await asyncio.wait_for(handle.result(), timeout=20)

    assert [a.queue for a in result.answers] == [cpu_queue]
    assert result.answers[0].identity.endswith("/cpu")
    assert isinstance(result.gpu_probe, GpuProbeOutput)
    assert result.gpu_probe.queue == gpu_queue
    assert result.gpu_probe.identity.endswith("/gpu")
    # The history agrees: the only worker that ever started gpu_probe polls the GPU queue.
    starts = [
        event.activity_task_started_event_attributes.identity
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert sorted(starts) == sorted([result.answers[0].identity, result.gpu_probe.identity])


async def test_development_worker_serves_every_queue(
    temporal_client: Client, task_queue: str
) -> None:
    no_gpu = Capabilities(gpus=[], cpu_count=2)
    names = {role: f"{task_queue}-{role.value}" for role in QueueRole}
    plans = plan_queues("all", no_gpu, names=names)
    async with running_worker(temporal_client, plans):
        result = await temporal_client.execute_workflow(
            HealthCheckWorkflow.run,
            HealthCheckInput(queues=list(names.values()), gpu_probe_queue=names[QueueRole.gpu]),
            id=f"dev-{task_queue}",
            task_queue=names[QueueRole.cpu],
        )
    assert [(a.queue, a.identity.rsplit("/", 1)[1]) for a in result.answers] == [
        (names[QueueRole.gpu], "gpu"),
        (names[QueueRole.nvenc], "nvenc"),
        (names[QueueRole.cpu], "cpu"),
    ]
    assert result.gpu_probe is not None and result.gpu_probe.queue == names[QueueRole.gpu]


async def test_auto_on_a_cpu_only_machine_serves_the_gpu_stages(
    temporal_client: Client, task_queue: str
) -> None:
    # A CPU-only deployment runs `polyvision worker --queues auto` and nothing else: the GPU
    # queue's work must still be picked up, by the CPU implementations.
    no_gpu = Capabilities(gpus=[], cpu_count=2)
    names = {role: f"{task_queue}-{role.value}" for role in QueueRole}
    plans = plan_queues("auto", no_gpu, names=names)
    assert {p.role for p in plans} == {QueueRole.gpu, QueueRole.cpu}
    async with running_worker(temporal_client, plans):
        result = await temporal_client.execute_workflow(
            HealthCheckWorkflow.run,
            HealthCheckInput(
                queues=[names[QueueRole.cpu], names[QueueRole.gpu]],
                gpu_probe_queue=names[QueueRole.gpu],
            ),
            id=f"auto-{task_queue}",
            task_queue=names[QueueRole.cpu],
            execution_timeout=timedelta(seconds=30),
        )
    assert sorted(a.queue for a in result.answers) == sorted(
        [names[QueueRole.cpu], names[QueueRole.gpu]]
    )
    assert result.gpu_probe is not None and result.gpu_probe.identity.endswith("/gpu")


async def test_sigterm_lets_the_running_activity_finish(
    temporal_server: TemporalTestServer,
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
) -> None:
    suffix = f"-{task_queue}"
    queue = f"polyvision-cpu{suffix}"
    env = {
        **os.environ,
        "PV_TEMPORAL_ADDRESS": temporal_server.address,
        "PV_TEMPORAL_NAMESPACE": temporal_server.namespace.name,
        "PV_WORKER_METRICS_PORT": str(free_port()),
        "PV_DATA_DIR": str(tmp_path),
        "PV_ENV": "development",
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "programs.worker",
        "--queues",
        "cpu",
        "--concurrency",
        "2",
        "--shutdown-timeout",
        "15",
        f"--task-queue-suffix={suffix}",  # one argv item: the suffix starts with "-"
        cwd=tmp_path,  # no stray .env from the checkout
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        handle = await temporal_client.start_workflow(
            HealthCheckWorkflow.run,
            HealthCheckInput(queues=[queue], hold_seconds=2.5),
            id=f"drain-{task_queue}",
            task_queue=queue,
        )
        running = asyncio.create_task(
            wait_until_pending(
                handle, "ping", PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, within_s=30
            )
        )
        exited = asyncio.create_task(proc.wait())
        await asyncio.wait({running, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            running.cancel()
            stdout, stderr = await proc.communicate()
            pytest.fail(f"worker exited early:\n{(stdout + stderr).decode(errors='replace')}")
        exited.cancel()
        running.result()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = (stdout + stderr).decode(errors="replace")
    assert proc.returncode == 0, output
    for bad in ("panic", "Traceback", "abort", "Fatal Python error"):
        assert bad.lower() not in output.lower(), output
    assert "worker.signal" in output and "worker.stopped" in output

    # The ping held its slot through the shutdown and completed on the server.
    events = [event async for event in handle.fetch_history_events()]
    completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    assert len(completed) == 1 and not failed
    started = next(e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert started.activity_task_started_event_attributes.attempt == 1

    # The workflow itself waits for a worker; a new one (here, in-process) finishes it.
    async with running_worker(temporal_client, [QueuePlan(QueueRole.cpu, queue, 1)]):
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert result.answers[0].queue == queue
    assert result.answers[0].identity == started.activity_task_started_event_attributes.identity


async def test_worker_stop_before_any_task_is_quick(
    temporal_client: Client, task_queue: str
) -> None:
    plans = [QueuePlan(QueueRole.gpu, f"{task_queue}-gpu", 1)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with running_worker(temporal_client, plans, shutdown_timeout=timedelta(seconds=30)):
        await asyncio.sleep(0.2)
    # Nothing was running, so the grace period is not waited out.
    assert loop.time() - started < 10
