"""Driving `polyvision up` as a child process: start, wait for readiness, stop, check leftovers.

Used by `polyvision demo` and the stack's own tests, so both exercise exactly what an
operator runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from polyvision.ports import free_port


@dataclass
class StackProcess:
    """One `polyvision up` child with its own data directory and free ports.

    The ports go to the child as `PV_` variables, or as `up`'s flags when `port_flags` is set
    (then the variables keep their defaults, so a flag that is not honoured shows).
    """

    data_dir: Path
    api_port: int = field(default_factory=free_port)
    temporal_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    port_flags: bool = False
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def environment(self) -> dict[str, str]:
        """The child's environment: this one's, with the stack's data directory and ports.

        A developer's own store URLs, ports and task-queue suffix are left out: the stack
        uses its embedded stores and the plain queue names unless `extra_env` says otherwise.
        """
        env = dict(os.environ)
        for key in (
            "PV_DATABASE_URL",
            "PV_ANALYTICS_URL",
            "PV_OBJECTS_URL",
            "PV_API_PORT",
            "PV_API_PUBLIC_URL",
            "PV_TEMPORAL_ADDRESS",
            "PV_TEMPORAL_UI_URL",
            "PV_WORKER_METRICS_PORT",
            "PV_TASK_QUEUE_SUFFIX",
        ):
            env.pop(key, None)
        env.update({"PV_DATA_DIR": str(self.data_dir), "PV_LOG_JSON": "true"})
        if not self.port_flags:
            env.update(
                {
                    "PV_API_PORT": str(self.api_port),
                    "PV_TEMPORAL_ADDRESS": self.temporal_address,
                    "PV_TEMPORAL_UI_URL": self.ui_url,
                    "PV_WORKER_METRICS_PORT": str(self.metrics_port),
                }
            )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The `polyvision up` command line."""
        argv = [sys.executable, "-m", "programs.cli", "up"]
        if self.port_flags:
            argv += [
                f"--api-port={self.api_port}",
                f"--temporal-port={self.temporal_port}",
                f"--ui-port={self.ui_port}",
                f"--metrics-port={self.metrics_port}",
            ]
        return argv

    def start(self) -> None:
        """Start `polyvision up`; its output goes to ``up.log`` in the data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "up.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, object]:
        """Poll /readyz until it answers 200; returns its body.

        Raises:
            RuntimeError: the process exited or readiness did not come in time.
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        last: str = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"polyvision up exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                response = httpx.get(f"{self.api_url}/readyz", timeout=5)
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise RuntimeError(f"not ready after {timeout_s:.0f} s: {last}\n{self.output()[-4000:]}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code (killing the tree if it hangs)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill_leftovers()
                self.process.kill()
                self.process.wait()
                raise
        return int(self.process.returncode)

    def children(self) -> dict[int, str]:
        """Live child processes of `polyvision up`: pid to command line."""
        assert self.process is not None
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # Fields after the parenthesized command name: state, ppid, ...
            state, ppid = stat.rpartition(")")[2].split()[:2]
            if int(ppid) == self.process.pid and state != "Z":
                found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
        return found

    def leftovers(self) -> list[int]:
        """Pids of live processes whose command line names this stack's data directory."""
        marker = str(self.data_dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                status = (entry / "status").read_text()
            except OSError:
                continue
            if marker in cmdline and "\nState:\tZ" not in status:
                found.append(int(entry.name))
        return found

    def kill_leftovers(self) -> None:
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
