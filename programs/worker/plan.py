"""Decide which task queues a worker polls, with how many activity slots, and why (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from polyvision.capabilities import Capabilities, GpuInfo
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
        reason: Why this worker polls it with that many slots, for the person starting it
            (not part of equality: two plans polling the same queue alike are the same plan).
    """

    role: QueueRole
    task_queue: str
    max_concurrent_activities: int
    reason: str = field(default="", compare=False)


def _roles_for(spec: str, caps: Capabilities) -> list[QueueRole]:
    names = [part.strip().lower() for part in spec.split(",")]
    if not names or any(not name for name in names):
        raise ValueError(f"empty queue name in {spec!r}")
    if "auto" in names or "all" in names:
        if len(names) != 1:
            raise ValueError(f"'auto' and 'all' stand alone, got {spec!r}")
        if names[0] == "all":
            return list(_ORDER)
        # No stage is ever left unserved: without a GPU the GPU stages run their CPU
        # implementations here. Encodes go to nvenc only where a GPU has an encoder.
        roles = [QueueRole.cpu, QueueRole.gpu]
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


def _core_shares(wanted: set[QueueRole], caps: Capabilities) -> dict[QueueRole, int]:
    """Slots of the queues of this worker that run on the CPU: one per core each.

    The cpu queue always runs on the CPU; the gpu queue does when there is no GPU (CPU
    implementations). Each gets a slot per core rather than a share of them: their stages
    seldom run at full tilt at once (detection, the heavy one, precedes tracking), the detector
    spreads every frame's tiles over all the cores (`activities.detect.inference`), and a split
    left a core idle whenever one queue had work and the other none.
    """
    on_cpu = [QueueRole.cpu] if QueueRole.cpu in wanted else []
    if QueueRole.gpu in wanted and not caps.gpus:
        on_cpu.insert(0, QueueRole.gpu)
    return {role: max(1, caps.cpu_count) for role in on_cpu}


def _gpu_names(gpus: Sequence[GpuInfo]) -> str:
    return ", ".join(f"#{gpu.index} {gpu.name}" for gpu in gpus)


def _slots(count: int) -> str:
    return f"{count} slot" if count == 1 else f"{count} slots"


def _reason(
    role: QueueRole,
    slots: int,
    caps: Capabilities,
    spec: str,
    shares: Mapping[QueueRole, int],
    concurrency: int | None,
) -> str:
    if concurrency is not None:
        sizing = f"{_slots(slots)}, --concurrency"
    elif role in shares:
        sizing = f"{_slots(slots)}, one per core"
    elif role is QueueRole.gpu:
        sizing = f"{_slots(slots)}, one per GPU"
    elif caps.nvenc_gpus:
        sizing = f"{_slots(slots)}, one per encoder GPU"
    else:
        sizing = _slots(slots)
    if role is QueueRole.cpu:
        return f"workflows and CPU stages ({sizing})"
    if role is QueueRole.gpu:
        if caps.gpus:
            return f"GPU stages on {_gpu_names(caps.gpus)} ({sizing})"
        return f"no NVIDIA GPU found, serving GPU stages with CPU implementations ({sizing})"
    if caps.nvenc_gpus:
        return f"hardware video encoder on {_gpu_names(caps.nvenc_gpus)} ({sizing})"
    if spec.lower() == "all":
        return (
            "no GPU with a hardware video encoder; polled because a development worker polls"
            f" every queue ({sizing})"
        )
    return (
        f"no GPU with a hardware video encoder; polled because --queues {spec} names it ({sizing})"
    )


def _not_polled(role: QueueRole, caps: Capabilities, spec: str, cpu_queue: str) -> str:
    if role is QueueRole.nvenc and spec.lower() == "auto":
        if not caps.gpus:
            return f"not polled: no NVIDIA GPU found (encodes run on {cpu_queue})"
        return (
            f"not polled: no hardware video encoder on {_gpu_names(caps.gpus)}"
            f" (encodes run on {cpu_queue})"
        )
    if role is QueueRole.nvenc:
        return f"not polled (--queues {spec})"
    return f"not polled (--queues {spec}); another worker must serve it"


def plan_queues(
    spec: str,
    caps: Capabilities,
    concurrency: int | None = None,
    *,
    names: Mapping[QueueRole, str] | None = None,
) -> list[QueuePlan]:
    """Turn a queue spec and the machine's capabilities into per-queue worker plans.

    Specs:
        ``auto``: the cpu and gpu queues always, so no stage is left unserved (a machine
        without a GPU runs the GPU stages' CPU implementations); the nvenc queue only if some
        GPU has an encoder (an H100 has none, so never gets encodes). ``all``: every queue, for
        a development worker (`polyvision up`). ``gpu``, ``nvenc``, ``cpu`` or a comma list of
        them: exactly those queues, whatever the machine has.

    Slots (unless `concurrency` overrides them): one per GPU on the gpu queue, one per encoder
    GPU on nvenc (one without any), one per core on cpu. Without a GPU the gpu queue runs on
    the cores too, with one slot per core as well (`_core_shares` says why).

    Args:
        spec: ``auto``, ``all``, or a comma list of ``gpu``, ``nvenc``, ``cpu``.
        caps: The machine, from `detect_capabilities`.
        concurrency: Activity slots on every planned queue instead of the defaults.
        names: Task queue name per role; the production names if None.

    Returns:
        Plans in the order gpu, nvenc, cpu, without duplicates, each with its reason.

    Raises:
        ValueError: Unknown or empty queue names, ``auto``/``all`` mixed with others, or
            `concurrency` below 1.
    """
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    queue_names = dict(DEFAULT_QUEUE_NAMES if names is None else names)
    wanted = set(_roles_for(spec, caps))
    shares = _core_shares(wanted, caps)
    plans = []
    for role in _ORDER:
        if role not in wanted:
            continue
        if concurrency is not None:
            slots = concurrency
        elif role in shares:
            slots = shares[role]
        elif role is QueueRole.gpu:
            slots = len(caps.gpus)
        else:
            slots = max(1, len(caps.nvenc_gpus))
        reason = _reason(role, slots, caps, spec.strip(), shares, concurrency)
        plans.append(QueuePlan(role, queue_names[role], slots, reason))
    return plans


def describe_plan(
    spec: str,
    caps: Capabilities,
    plans: Sequence[QueuePlan],
    *,
    names: Mapping[QueueRole, str] | None = None,
) -> list[str]:
    """One line per queue, polled or not, saying why: what a worker prints at start.

    Args:
        spec: The queue spec the plans came from.
        caps: The machine the plans were made for.
        plans: From `plan_queues`.
        names: Task queue name per role (the same as for `plan_queues`).

    Returns:
        Lines like ``polyvision-gpu: no NVIDIA GPU found, serving GPU stages with CPU
        implementations (2 slots, one per core)``, in the order gpu, nvenc, cpu.
    """
    queue_names = dict(DEFAULT_QUEUE_NAMES if names is None else names)
    by_role = {plan.role: plan for plan in plans}
    lines = []
    for role in _ORDER:
        plan = by_role.get(role)
        if plan is not None:
            lines.append(f"{plan.task_queue}: {plan.reason}")
        else:
            why = _not_polled(role, caps, spec.strip(), queue_names[QueueRole.cpu])
            lines.append(f"{queue_names[role]}: {why}")
    return lines
