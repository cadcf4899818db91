"""Health activities: prove which worker serves which task queue.

`ping` is registered on every queue; `gpu_probe` only on the GPU queue, so a workflow that calls
it can only be answered by a worker that polls the GPU queue.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import activity

from polyvision.capabilities import Capabilities, detect_capabilities


@dataclass
class PingInput:
    """Input of `ping`.

    Attributes:
        hold_seconds: Keep the activity slot busy this long, heartbeating, before answering;
            used to check that a worker drains running activities on shutdown.
    """

    hold_seconds: float = 0.0


@dataclass
class PingOutput:
    """Who answered a ping.

    Attributes:
        queue: Task queue the activity was dispatched on.
        identity: Identity of the worker that ran it.
        hostname: Host of that worker.
    """

    queue: str
    identity: str
    hostname: str


@dataclass
class GpuProbeInput:
    """Input of `gpu_probe` (empty; a dataclass so fields can be added)."""


@dataclass
class GpuProbeOutput:
    """What the GPU worker that answered sees.

    Attributes:
        queue: Task queue the activity was dispatched on.
        identity: Identity of the worker that ran it.
        hostname: Host of that worker.
        gpus: Names of the GPUs it sees (empty on a development worker).
        nvenc_gpus: Names of those with a hardware encoder.
    """

    queue: str
    identity: str
    hostname: str
    gpus: list[str] = field(default_factory=list)
    nvenc_gpus: list[str] = field(default_factory=list)


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

    @activity.defn(name="ping")
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
            activity.heartbeat(round(left, 3))
            # A cancellation (e.g. worker shutdown past its grace period) is raised into this
            # thread by the SDK; waiting on the event just makes the sleep interruptible.
            activity.wait_for_cancelled_sync(min(_HOLD_STEP_S, left))
        activity.metric_meter().create_counter(
            "polyvision_health_pings", "Health pings answered by this worker."
        ).add(1, {"task_queue": info.task_queue})
        return PingOutput(queue=info.task_queue, identity=self._identity, hostname=self._hostname)

    @activity.defn(name="gpu_probe")
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
