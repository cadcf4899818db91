"""Decide which task queues a worker polls and with how many activity slots (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from polyvision.capabilities import Capabilities
from polyvision.temporal.queues import DEFAULT_QUEUE_NAMES, QueueRole

# Canonical order: plans are listed (and logged) the same way whatever the spec's order.
_ORDER = (QueueRole.gpu, QueueRole.nvenc, QueueRole.cpu)


@dataclass(frozen=True)
class QueuePlan:
    """One task queue a worker polls.

    Attributes:
        role: What the queue needs (gpu, nvenc, cpu); selects the activities registered.
        task_queue: The task queue name.
        max_concurrent_activities: Activity slots of the worker on this queue.
    """

    role: QueueRole
    task_queue: str
    max_concurrent_activities: int


def _roles_for(spec: str, caps: Capabilities) -> list[QueueRole]:
    names = [part.strip().lower() for part in spec.split(",")]
    if not names or any(not name for name in names):
        raise ValueError(f"empty queue name in {spec!r}")
    if "auto" in names or "all" in names:
        if len(names) != 1:
            raise ValueError(f"'auto' and 'all' stand alone, got {spec!r}")
        if names[0] == "all":
            return list(_ORDER)
        roles = [QueueRole.cpu]
        if caps.gpus:
            roles.append(QueueRole.gpu)
        if caps.nvenc_gpus:
            roles.append(QueueRole.nvenc)
        return roles
    roles = []
    for name in names:
        try:
            roles.append(QueueRole(name))
        except ValueError:
            known = ", ".join(["auto", "all", *(r.value for r in _ORDER)])
            raise ValueError(f"unknown queue {name!r} in {spec!r}; expected {known}") from None
    return roles


def _default_slots(role: QueueRole, caps: Capabilities) -> int:
    if role is QueueRole.gpu:
        # One activity per GPU: a stage saturates its device. On a development machine without
        # GPUs (explicit `gpu` or `all`) one slot runs the CPU implementation.
        return max(1, len(caps.gpus))
    if role is QueueRole.nvenc:
        return max(1, len(caps.nvenc_gpus))
    return max(1, caps.cpu_count)


def plan_queues(
    spec: str,
    caps: Capabilities,
    concurrency: int | None = None,
    *,
    names: Mapping[QueueRole, str] | None = None,
) -> list[QueuePlan]:
    """Turn a queue spec and the machine's capabilities into per-queue worker plans.

    Specs:
        ``auto``: the cpu queue always; the gpu queue with one slot per GPU if there is a GPU;
        the nvenc queue only if some GPU has an encoder (an H100 has none, so never gets
        encodes). ``all``: every queue, for a development worker that runs the CPU
        implementation of GPU stages. ``gpu``, ``nvenc``, ``cpu`` or a comma list of them: exactly
        those queues. Asking explicitly for ``gpu``/``nvenc`` on a machine without them is
        allowed (development; one slot) because only an explicit request does it.

    Args:
        spec: ``auto``, ``all``, or a comma list of ``gpu``, ``nvenc``, ``cpu``.
        caps: The machine, from `detect_capabilities`.
        concurrency: Activity slots on every planned queue instead of the defaults
            (GPUs per GPU queue, encoder GPUs for nvenc, cores for cpu).
        names: Task queue name per role; the production names if None.

    Returns:
        Plans in the order gpu, nvenc, cpu, without duplicates.

    Raises:
        ValueError: Unknown or empty queue names, ``auto``/``all`` mixed with others, or
            `concurrency` below 1.
    """
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    queue_names = dict(DEFAULT_QUEUE_NAMES if names is None else names)
    wanted = set(_roles_for(spec, caps))
    return [
        QueuePlan(
            role=role,
            task_queue=queue_names[role],
            max_concurrent_activities=concurrency or _default_slots(role, caps),
        )
        for role in _ORDER
        if role in wanted
    ]
