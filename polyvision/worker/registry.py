"""Which workflows and activities each task queue serves.

One place to look when adding a stage: GPU stages go on the gpu queue, encodes on nvenc (and on
cpu with the software encoder), everything else, and every workflow, on cpu.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activities.health import HealthActivities
from polyvision.worker.capabilities import Capabilities, detect_capabilities
from polyvision.worker.queues import QueueRole
from workflows.health import HealthCheckWorkflow


@dataclass(frozen=True)
class WorkerDeps:
    """What activities need from the worker process, built once in the entry point.

    Later stages add their stores here (objects, analytics, metadata).

    Attributes:
        identity: Identity of the worker the activities are registered on.
        probe: Capability detection, for `gpu_probe`.
    """

    identity: str
    probe: Callable[[], Capabilities] = detect_capabilities


def workflows_for(role: QueueRole) -> list[type]:
    """Workflow classes a worker on a queue of this role runs.

    Workflow tasks are cheap and must not wait behind GPU work, so they all live on cpu.

    Args:
        role: The queue's role.

    Returns:
        Workflow classes (possibly none).
    """
    if role is QueueRole.cpu:
        return [HealthCheckWorkflow]
    return []


def activities_for(role: QueueRole, deps: WorkerDeps) -> list[Callable[..., Any]]:
    """Activity callables a worker on a queue of this role registers.

    Args:
        role: The queue's role.
        deps: Clients and settings the activities are bound to.

    Returns:
        Activity callables (bound methods of activity classes).
    """
    health = HealthActivities(deps.identity, deps.probe)
    activities: list[Callable[..., Any]] = [health.ping]
    if role is QueueRole.gpu:
        activities.append(health.gpu_probe)
    return activities
