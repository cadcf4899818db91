"""Task queue names: work is routed by capability, never by "has a GPU" alone.

Pure constants; workflow code imports them to pick the queue of each activity.
"""

from __future__ import annotations

from enum import StrEnum

GPU_QUEUE = "polyvision-gpu"
"""GPU stages: stitch, detect, vcam render (their CPU implementations where no GPU is present:
a CPU-only worker polls this queue too, so no stage is left unserved)."""

CPU_QUEUE = "polyvision-cpu"
"""Workflow tasks and CPU work: ingest, track, vcam plan, analyze, package, index."""

NVENC_QUEUE = "polyvision-nvenc"
"""Hardware video encode; only GPUs with an NVENC engine (not H100, not Jetson Orin Nano)."""


class QueueRole(StrEnum):
    """What a task queue needs from the machine that polls it."""

    gpu = "gpu"
    nvenc = "nvenc"
    cpu = "cpu"


DEFAULT_QUEUE_NAMES: dict[QueueRole, str] = {
    QueueRole.gpu: GPU_QUEUE,
    QueueRole.nvenc: NVENC_QUEUE,
    QueueRole.cpu: CPU_QUEUE,
}


def queue_names(suffix: str = "") -> dict[QueueRole, str]:
    """Task queue name per role, optionally suffixed.

    A suffix isolates one developer's (or one test's) workers on a shared server: a worker
    started with suffix ``-alice`` polls ``polyvision-gpu-alice``.

    Args:
        suffix: Appended verbatim to every name.

    Returns:
        Role to task queue name.
    """
    return {role: name + suffix for role, name in DEFAULT_QUEUE_NAMES.items()}
