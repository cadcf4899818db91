"""The health activities' light contracts: what crosses the Temporal boundary, nothing heavy.

`activities.health` holds the activities; the health workflow needs only these. The fields are
recorded in workflow histories: never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
