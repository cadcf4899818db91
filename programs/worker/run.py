"""Run Temporal workers for planned task queues, and stop them gracefully."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import TextIO

import structlog
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker, WorkerDeploymentConfig

from polyvision.capabilities import detect_capabilities
from polyvision.settings import Settings
from polyvision.telemetry import LoggingInterceptor, configure_tracing
from polyvision.temporal.activity_metrics import ActivityMetricsInterceptor
from polyvision.temporal.attempt_fence import AttemptFenceInterceptor
from polyvision.temporal.client import connect
from polyvision.temporal.queues import queue_names
from programs.worker.plan import QueuePlan, describe_plan, plan_queues
from programs.worker.registry import WorkerDeps, activities_for, workflows_for
from programs.worker.runtime import build_runtime
from programs.worker.stores import StoreHolder, embedded_analytics_holder, open_pipeline_stores
from programs.worker.versioning import VersioningSettings, deployment_config, worker_version

log = structlog.get_logger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = timedelta(seconds=30)
HEARTBEAT_THROTTLE = timedelta(seconds=5)


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event
) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set `stop` instead of killing the process.

    Kubernetes sends SIGTERM before SIGKILL; setting the event lets the workers stop polling and
    give running activities their graceful-shutdown time.

    Args:
        loop: The running event loop.
        stop: Set on the first signal.

    Returns:
        A function that removes the handlers again.
    """
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(sig: signal.Signals) -> None:
        log.info("worker.signal", signal=sig.name, already_stopping=stop.is_set())
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)

    def remove() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return remove


def _worker_identity(base: str, plan: QueuePlan) -> str:
    # One identity per queue so the UI and history show which queue's poller ran a task.
    return f"{base}/{plan.role.value}"


async def run_worker(
    client: Client,
    plans: Sequence[QueuePlan],
    *,
    shutdown_timeout: timedelta,
    stop: asyncio.Event,
    deps: WorkerDeps | None = None,
    deployment: WorkerDeploymentConfig | None = None,
) -> None:
    """Run one worker per planned queue until `stop` is set, then shut them all down.

    Shutdown is graceful: pollers stop at once, running activities get `shutdown_timeout` to
    finish (they keep heartbeating) before they are cancelled. All workers and the activity
    thread pool are shut down before this returns, also on error or cancellation; leaving an SDK
    worker running at interpreter exit can abort the process.

    Args:
        client: Connected client (its identity is the base of each worker's identity).
        plans: The queues to poll, from `plan_queues`.
        shutdown_timeout: Grace period for running activities.
        stop: Set it to stop (signal handlers do).
        deps: What activities are bound to; the worker identity in it is replaced per queue.
        deployment: The build the workers report and, with versioning on, route by
            (`programs.worker.versioning`); none if None.

    Raises:
        ValueError: No plans.
        BaseException: The first fatal error of any worker (after all were shut down).
    """
    if not plans:
        raise ValueError("no task queues to poll")
    base = deps or WorkerDeps(identity=client.identity)
    # Sync activities run here; one thread per activity slot across all queues.
    executor = ThreadPoolExecutor(
        max_workers=sum(plan.max_concurrent_activities for plan in plans),
        thread_name_prefix="pv-activity",
    )
    interceptors: list[Interceptor] = [LoggingInterceptor(), ActivityMetricsInterceptor()]
    if base.stores is not None:
        # Innermost: a stale attempt's writes are refused (`polyvision.fencing`).
        interceptors.append(AttemptFenceInterceptor(base.stores.objects))
    workers: list[Worker] = []
    tasks: list[asyncio.Task[None]] = []
    stop_wait: asyncio.Task[bool] | None = None
    try:
        for plan in plans:
            identity = _worker_identity(client.identity, plan)
            workers.append(
                Worker(
                    client,
                    task_queue=plan.task_queue,
                    workflows=workflows_for(plan.role),
                    activities=activities_for(plan.role, replace(base, identity=identity)),
                    activity_executor=executor,
                    max_concurrent_activities=plan.max_concurrent_activities,
                    graceful_shutdown_timeout=shutdown_timeout,
                    # Progress inside a long chunk (frames done) reaches operators within
                    # seconds, not at the SDK's default of once a minute.
                    max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                    identity=identity,
                    # The client's tracing interceptor comes first (the SDK prepends it).
                    interceptors=interceptors,
                    deployment_config=deployment,
                )
            )
        tasks = [
            asyncio.create_task(worker.run(), name=f"worker:{plan.task_queue}")
            for worker, plan in zip(workers, plans, strict=True)
        ]
        log.info("worker.running", queues=[plan.task_queue for plan in plans])
        stop_wait = asyncio.create_task(stop.wait())
        # Returns on stop, or early when a worker dies (fatal error): then stop the others too.
        await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stop_wait is not None:
            stop_wait.cancel()
        log.info("worker.stopping", grace_s=shutdown_timeout.total_seconds())
        # shield: a second cancellation (double Ctrl-C) must not leave SDK workers half-stopped.
        # Only workers that run: shutdown() of a never-started worker waits forever.
        started = workers[: len(tasks)]
        await asyncio.shield(asyncio.gather(*(w.shutdown() for w in started)))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=True)
        log.info("worker.stopped")
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


class WorkerStartError(RuntimeError):
    """The worker cannot start; the message says why and what to do instead, in one line."""


def analytics_held_message(analytics_url: str, holder: StoreHolder) -> str:
    """Why a second process cannot use the embedded analytics store, and what to use instead."""
    instead = (
        "polyvision up already runs a worker on every queue; a second worker needs"
        if holder.command == "polyvision up"
        else "A second worker needs"
    )
    return (
        f"the embedded analytics store ({analytics_url}) is held by another process ({holder}):"
        f" chDB opens a data directory in one process only. {instead}"
        " PV_ANALYTICS_URL=clickhouse://… (one ClickHouse server for the stack and every"
        " worker) or its own PV_DATA_DIR"
    )


async def serve(
    settings: Settings,
    spec: str = "auto",
    concurrency: int | None = None,
    *,
    stop: asyncio.Event | None = None,
    shutdown_timeout: timedelta = DEFAULT_SHUTDOWN_TIMEOUT,
    task_queue_suffix: str | None = None,
    metrics_host: str = "0.0.0.0",
    out: TextIO | None = None,
) -> None:
    """Detect capabilities, plan queues, connect and run workers until stopped.

    What ``polyvision worker`` runs. It first writes one line per queue to `out` (which it
    polls and why), then serves metrics (SDK and activities) through the SDK runtime at
    ``http://{metrics_host}:{settings.worker_metrics_port}/metrics`` (port 0: no metrics).

    Args:
        settings: Process settings (Temporal address and namespace, metrics port, stores).
        spec: Queue spec for `plan_queues` (``auto``, ``all``, ``gpu,cpu``, ...).
        concurrency: Activity slots per queue instead of the capability-based defaults.
        stop: Set to stop; if None, SIGTERM/SIGINT handlers are installed to set one.
        shutdown_timeout: Grace period for running activities on stop.
        task_queue_suffix: Appended to every task queue name (isolates a developer or a test);
            ``PV_TASK_QUEUE_SUFFIX`` (the suffix the API starts matches with) if None.
        metrics_host: Interface the metrics endpoint binds to (all, so Prometheus can scrape
            the pod).
        out: Where the queue lines go; standard output if None.

    Raises:
        WorkerStartError: A bad queue spec, the embedded analytics store held by another
            process, a busy metrics port or an unreachable Temporal; nothing was started.
    """
    holder = await asyncio.to_thread(embedded_analytics_holder, settings.analytics_url)
    if holder is not None:
        raise WorkerStartError(analytics_held_message(settings.analytics_url, holder))
    suffix = settings.task_queue_suffix if task_queue_suffix is None else task_queue_suffix
    names = queue_names(suffix)
    caps = await asyncio.to_thread(detect_capabilities)
    try:
        plans = plan_queues(spec, caps, concurrency, names=names)
    except ValueError as exc:
        raise WorkerStartError(f"--queues/--concurrency: {exc}") from None
    lines = describe_plan(spec, caps, plans, names=names)
    log.info(
        "worker.plan",
        spec=spec,
        gpus=[f"{gpu.index}:{gpu.name} nvenc={gpu.has_nvenc}" for gpu in caps.gpus],
        cpu_count=caps.cpu_count,
        queues={plan.task_queue: plan.max_concurrent_activities for plan in plans},
        reasons=lines,
    )
    stream = sys.stdout if out is None else out
    stream.write("".join(f"{line}\n" for line in lines))
    stream.flush()
    metrics = (
        f"{metrics_host}:{settings.worker_metrics_port}" if settings.worker_metrics_port else None
    )
    try:
        runtime = build_runtime(metrics, global_tags={"service": "polyvision-worker"})
    except ValueError as exc:  # the SDK's Prometheus exporter could not bind
        raise WorkerStartError(
            f"cannot serve metrics on {metrics} ({exc}); set PV_WORKER_METRICS_PORT to a free"
            " port, or 0 for no metrics"
        ) from None
    versioning = VersioningSettings()
    version = worker_version(versioning)
    deployment = deployment_config(version, use_worker_versioning=versioning.worker_versioning)
    try:
        tracer_provider = configure_tracing("polyvision-worker")
    except RuntimeError as exc:  # an OTLP endpoint without the exporter package
        raise WorkerStartError(str(exc)) from None
    remove_handlers: Callable[[], None] | None = None
    if stop is None:
        stop = asyncio.Event()
        remove_handlers = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace, runtime)
        except RuntimeError as exc:  # the SDK reports every connection failure so
            raise WorkerStartError(
                f"cannot reach Temporal at {settings.temporal_address} (PV_TEMPORAL_ADDRESS): {exc}"
            ) from None
        log.info(
            "worker.connected",
            address=settings.temporal_address,
            namespace=settings.temporal_namespace,
            metrics=f"http://{metrics}/metrics" if metrics else None,
            deployment=version.deployment_name,
            build_id=version.build_id,
            versioning=versioning.worker_versioning,
            tracing=tracer_provider is not None,
        )
        async with open_pipeline_stores(settings) as stores:
            deps = WorkerDeps(identity=client.identity, stores=stores)
            await run_worker(
                client,
                plans,
                shutdown_timeout=shutdown_timeout,
                stop=stop,
                deps=deps,
                deployment=deployment,
            )
    finally:
        if remove_handlers is not None:
            remove_handlers()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # flushes the spans still batched
