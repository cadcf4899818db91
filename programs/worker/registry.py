"""Which workflows and activities each task queue serves.

One place to look when adding a stage: GPU stages go on the gpu queue, render + encode on nvenc
(hardware encoder) and on cpu (libx264), everything else, and every workflow, on cpu.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activities.analyze.activity import AnalyzeActivities
from activities.detect.activity import DetectActivities
from activities.encode.activity import EncodeActivities
from activities.health import HealthActivities
from activities.index.activity import IndexActivities
from activities.index.cleanup import CleanupActivities
from activities.ingest.activity import IngestActivities
from activities.minimap.activity import MinimapActivities
from activities.rerender.activity import RerenderActivities
from activities.retention.activity import RetentionActivities
from activities.stitch.activity import StitchActivities
from activities.track.activity import TrackActivities
from activities.vcam.activity import VcamActivities
from polyvision.capabilities import Capabilities, detect_capabilities
from polyvision.media.encoder import choose_encoder
from polyvision.temporal.queues import QueueRole
from programs.worker.stores import PipelineStores
from workflows.health import HealthCheckWorkflow
from workflows.match import MatchWorkflow, RenderBatchWorkflow, StitchDetectBatchWorkflow
from workflows.retention import RetentionWorkflow
from workflows.view import MatchViewWorkflow


@dataclass(frozen=True)
class WorkerDeps:
    """What activities need from the worker process, built once in the entry point.

    Attributes:
        identity: Identity of the worker the activities are registered on.
        probe: Capability detection, for `gpu_probe`.
        stores: The pipeline's stores; None registers the health activities only.
    """

    identity: str
    probe: Callable[[], Capabilities] = detect_capabilities
    stores: PipelineStores | None = None


def workflows_for(role: QueueRole) -> list[type]:
    """Workflow classes a worker on a queue of this role runs.

    Workflow tasks are cheap and must not wait behind GPU work, so they all live on cpu.

    Args:
        role: The queue's role.

    Returns:
        Workflow classes (possibly none).
    """
    if role is QueueRole.cpu:
        return [
            HealthCheckWorkflow,
            MatchWorkflow,
            StitchDetectBatchWorkflow,
            RenderBatchWorkflow,
            MatchViewWorkflow,
            RetentionWorkflow,
        ]
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
    stores = deps.stores
    if stores is None:
        return activities
    objects, analytics = stores.objects, stores.analytics
    if role is QueueRole.gpu:
        # The GPU stages (their CPU implementations run where no GPU is present).
        stitch = StitchActivities(objects, stores.work_dir / "cache")
        detect = DetectActivities(
            objects,
            analytics,
            stores.models_dir,
            sessions=stores.sessions,
            cache_dir=stores.work_dir / "models",
            tuning=stores.detect,
        )
        # Renders are here too for matches started before the ladder, which rendered on gpu.
        vcam = VcamActivities(objects, analytics)
        activities += [stitch.stitch_chunk, detect.detect_chunk, vcam.render_chunk]
    elif role is QueueRole.nvenc:
        # Render and encode the ladder with the hardware encoder where it opens (x264 where a
        # development worker polls every queue without one).
        nvenc = VcamActivities(objects, analytics, encoder=choose_encoder())
        activities.append(nvenc.render_chunk)
    elif role is QueueRole.cpu:
        ingest = IngestActivities(objects, stores.work_dir / "ingest")
        stitch = StitchActivities(objects, stores.work_dir / "cache")
        track = TrackActivities(objects, analytics)
        vcam = VcamActivities(objects, analytics)
        analyze = AnalyzeActivities(objects, analytics)
        encode = EncodeActivities(objects)
        index = IndexActivities(objects, stores.sessions)
        cleanup = CleanupActivities(objects, analytics)
        rerender = RerenderActivities(objects)
        activities += [
            ingest.ingest,
            stitch.prepare,
            track.track_match,
            vcam.plan,
            vcam.render_chunk,
            analyze.analyze,
            MinimapActivities(objects, analytics).render,
            encode.package,
            index.index,
            cleanup.cleanup,
            rerender.sources,
            RetentionActivities(objects, analytics, stores.sessions).expire_matches,
        ]
    return activities
