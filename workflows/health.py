"""Health-check workflow: ping each listed task queue and report who answered.

Deterministic orchestration only; activities are called by their names in
`polyvision.temporal.names` with their light contract types.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.health_contracts import (
        GpuProbeInput,
        GpuProbeOutput,
        PingInput,
        PingOutput,
    )
    from polyvision.temporal import names


@dataclass
class HealthCheckInput:
    """Input of `HealthCheckWorkflow`.

    Attributes:
        queues: Task queues to ping, in order.
        gpu_probe_queue: Also run `gpu_probe` there (registered only on GPU queues).
        timeout: Schedule-to-close timeout of each activity: how long a queue may go unanswered
            (no worker polling it) before the check fails.
        hold_seconds: Passed to every ping (see `PingInput`).
    """

    queues: list[str]
    gpu_probe_queue: str | None = None
    timeout: timedelta = timedelta(minutes=1)
    hold_seconds: float = 0.0


@dataclass
class HealthCheckOutput:
    """Who answered.

    Attributes:
        answers: One per pinged queue, in input order.
        gpu_probe: The `gpu_probe` answer, if one was asked for.
    """

    answers: list[PingOutput] = field(default_factory=list)
    gpu_probe: GpuProbeOutput | None = None


@workflow.defn(name=names.HEALTH_CHECK_WORKFLOW)
class HealthCheckWorkflow:
    """Ping task queues through real workers; waits while a queue has no worker."""

    @workflow.run
    async def run(self, input: HealthCheckInput) -> HealthCheckOutput:
        """Run one ping per queue and the optional GPU probe, all concurrently.

        Args:
            input: Queues and timeouts.

        Returns:
            The answers.
        """
        # Heartbeat timeout only matters while a ping holds its slot; it catches a worker that
        # died mid-hold instead of waiting for the whole schedule-to-close timeout.
        retry = RetryPolicy(maximum_interval=timedelta(seconds=5))
        # Start everything first so one unanswered queue does not delay the others' pings.
        pings = [
            workflow.start_activity(
                names.PING,
                PingInput(hold_seconds=input.hold_seconds),
                task_queue=queue,
                schedule_to_close_timeout=input.timeout,
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=retry,
                result_type=PingOutput,
            )
            for queue in input.queues
        ]
        probe_handle = None
        if input.gpu_probe_queue is not None:
            probe_handle = workflow.start_activity(
                names.GPU_PROBE,
                GpuProbeInput(),
                task_queue=input.gpu_probe_queue,
                schedule_to_close_timeout=input.timeout,
                retry_policy=retry,
                result_type=GpuProbeOutput,
            )
        answers = list(await asyncio.gather(*pings))
        probe = await probe_handle if probe_handle is not None else None
        return HealthCheckOutput(answers=answers, gpu_probe=probe)
