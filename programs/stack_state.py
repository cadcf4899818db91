"""Where a running `polyvision up` answers, written into its data directory for other commands.

`polyvision up` publishes ``stack.json`` in its ``PV_DATA_DIR`` once it is ready (its pid, API
URL, Temporal address, namespace, UI URL and task-queue suffix, its data directory and the URLs
of its embedded stores); `polyvision process` reads it, so the recording lands in the stores
the stack's worker reads and the workflow starts on the stack's Temporal, whatever the
command's own environment says.

Only embedded stores (SQLite, chDB, file objects: paths under the data directory) are written:
a server store's URL may carry credentials, and a command talking to such a deployment has them
in its own ``PV_`` environment anyway. A file left by a stack that died is recognised by its pid
(and, on Linux, the process's start time) and ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from polyvision.settings import Settings

STATE_FILE = "stack.json"
EMBEDDED_SCHEMES = ("sqlite", "sqlite+aiosqlite", "chdb", "file")


class StackUrlsLike(Protocol):
    """What `publish_stack_state` needs of the stack's URLs (`programs.stack.StackUrls`)."""

    @property
    def api(self) -> str: ...

    @property
    def temporal_ui(self) -> str: ...

    @property
    def temporal_address(self) -> str: ...


@dataclass(frozen=True)
class StackState:
    """A running stack, as its ``stack.json`` describes it.

    Attributes:
        pid: The `polyvision up` process.
        pid_started: Its start time (``/proc/{pid}/stat`` field 22), None where unknown.
        database_url, analytics_url, objects_url: The stack's embedded stores; None for a
            server store (the reader's own ``PV_`` setting applies).
    """

    pid: int
    pid_started: str | None
    api_url: str
    temporal_address: str
    temporal_namespace: str
    temporal_ui_url: str
    task_queue_suffix: str
    data_dir: str
    database_url: str | None
    analytics_url: str | None
    objects_url: str | None

    def settings(self, base: Settings) -> Settings:
        """``base`` pointed at this stack: its Temporal, task queues, API and stores.

        Raises:
            ValueError: The stack keeps a store on a server (its URL is not written) while
                ``base`` would use an embedded one: set the stack's ``PV_`` URL.
        """
        update: dict[str, Any] = {
            "data_dir": Path(self.data_dir),
            "temporal_address": self.temporal_address,
            "temporal_namespace": self.temporal_namespace,
            "temporal_ui_url": self.temporal_ui_url,
            "task_queue_suffix": self.task_queue_suffix,
            "api_public_url": self.api_url,
        }
        for name in ("database_url", "analytics_url", "objects_url"):
            value = getattr(self, name)
            if value is not None:
                update[name] = value
            elif _embedded(getattr(base, name)) is not None:
                raise ValueError(
                    f"the stack keeps its {name.removesuffix('_url')} store on a server; set "
                    f"PV_{name.upper()} as the stack has it"
                )
        return base.model_copy(update=update)


def state_path(data_dir: Path) -> Path:
    """Where a stack with this data directory publishes its state."""
    return Path(data_dir).expanduser().resolve() / STATE_FILE


def _embedded(url: str) -> str | None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return url if scheme in EMBEDDED_SCHEMES else None


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, but not a stack of ours
        return False
    if started is not None and Path("/proc").is_dir():
        return _started(pid) == started
    return True


def publish_stack_state(settings: Settings, urls: StackUrlsLike) -> Path:
    """Write ``stack.json`` for the stack this process runs (call once it is ready).

    Written atomically, readable by its owner only. Returns its path.
    """
    pid = os.getpid()
    state = StackState(
        pid=pid,
        pid_started=_started(pid),
        api_url=urls.api,
        temporal_address=urls.temporal_address,
        temporal_namespace=settings.temporal_namespace,
        temporal_ui_url=urls.temporal_ui,
        task_queue_suffix=settings.task_queue_suffix,
        data_dir=str(settings.data_dir),
        database_url=_embedded(settings.database_url),
        analytics_url=_embedded(settings.analytics_url),
        objects_url=_embedded(settings.objects_url),
    )
    path = state_path(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".stack-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(state), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def withdraw_stack_state(settings: Settings) -> None:
    """Remove ``stack.json`` if this process wrote it (a stale one is ignored anyway)."""
    path = state_path(settings.data_dir)
    state = _read(path)
    if state is not None and state.pid == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def _read(path: Path) -> StackState | None:
    try:
        raw = json.loads(path.read_text())
        return StackState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def running_stack(data_dir: Path) -> StackState | None:
    """The stack running with this data directory, or None (no file, or its stack is gone)."""
    state = _read(state_path(data_dir))
    if state is None or not _alive(state.pid, state.pid_started):
        return None
    return state
