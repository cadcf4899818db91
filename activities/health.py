"""Health activities: prove which worker serves which task queue.

`ping` is registered on every queue; `gpu_probe` only on the GPU queue, so a workflow that calls
it can only be answered by a worker that polls the GPU queue.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from temporalio import activity

from activities.health_contracts import GpuProbeInput, GpuProbeOutput, PingInput, PingOutput
from polyvision.capabilities import Capabilities, detect_capabilities
from polyvision.heartbeat import heartbeat
from polyvision.temporal import names

# Heartbeat often enough that a 1-second heartbeat timeout would notice a dead worker.
_HOLD_STEP_S = 0.2


class HealthActivities:
    """Health activities bound to the identity of the worker that registers them."""

    def __init__(
        self,
        identity: str,
        probe: Callable[[], Capabilities] = detect_capabilities,
    ) -> None:
        """Bind the activities to one worker.

        Args:
            identity: The worker's identity, echoed in answers.
            probe: Capability detection used by `gpu_probe` (tests inject a fake).
        """
        self._identity = identity
        self._probe = probe
        self._hostname = socket.gethostname()

    @activity.defn(name=names.PING)
    def ping(self, input: PingInput) -> PingOutput:
        """Answer with the queue and worker that ran this activity.

        Synchronous on purpose: it runs in the worker's thread pool like the real CPU-heavy
        stages, so it exercises the same executor, heartbeats and cancellation path.

        Args:
            input: How long to hold the slot first.

        Returns:
            Who answered.
        """
        info = activity.info()
        deadline = time.monotonic() + input.hold_seconds
        while (left := deadline - time.monotonic()) > 0:
            heartbeat(round(left, 3))
            # A cancellation (e.g. worker shutdown past its grace period) is raised into this
            # thread by the SDK; waiting on the event just makes the sleep interruptible.
            activity.wait_for_cancelled_sync(min(_HOLD_STEP_S, left))
        activity.metric_meter().create_counter(
            "polyvision_health_pings", "Health pings answered by this worker."
        ).add(1, {"task_queue": info.task_queue})
        return PingOutput(queue=info.task_queue, identity=self._identity, hostname=self._hostname)

    @activity.defn(name=names.GPU_PROBE)
    def gpu_probe(self, input: GpuProbeInput) -> GpuProbeOutput:
        """Report the GPUs seen by the worker that polls the GPU queue.

        Args:
            input: Nothing yet.

        Returns:
            The answering worker and its GPUs.
        """
        caps = self._probe()
        return GpuProbeOutput(
            queue=activity.info().task_queue,
            identity=self._identity,
            hostname=self._hostname,
            gpus=[gpu.name for gpu in caps.gpus],
            nvenc_gpus=[gpu.name for gpu in caps.nvenc_gpus],
        )
