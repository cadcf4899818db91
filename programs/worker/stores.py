"""The stores a pipeline worker binds its activities to, opened once per process."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.detect.tuning import DetectTuning
from polyvision.settings import Settings, StartupError
from polyvision.storage.analytics import (
    AnalyticsStore,
    apply_migrations,
    open_analytics_store,
    parse_analytics_url,
)
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.objects import ObjectStore, open_object_store


@dataclass(frozen=True)
class PipelineStores:
    """Clients and local directories of a pipeline worker.

    Attributes:
        objects: Recordings, intermediate videos, manifests, HLS.
        analytics: Detections, track points, statistics.
        sessions: Metadata sessions (the catalog), if the worker updates it.
        models_dir: Where the detector model is (``PV_MODELS_DIR``).
        work_dir: Local scratch and cache space (recordings, remap tables).
        detect: The detect stage's cost settings (``PV_DETECT_*``, ``PV_INFERENCE_LAYOUT``).
    """

    objects: ObjectStore
    analytics: AnalyticsStore
    sessions: async_sessionmaker[AsyncSession] | None
    models_dir: Path
    work_dir: Path
    detect: DetectTuning = field(default_factory=DetectTuning)


@dataclass(frozen=True)
class StoreHolder:
    """Another process holding an embedded store this one needs.

    Attributes:
        pid: Its process id.
        command: What it is, e.g. ``polyvision up`` (its program name when not Polyvision).
    """

    pid: int
    command: str

    def __str__(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "pid unknown"
        return f"{self.command}, {pid}" if self.command else pid


def _chdb_path(analytics_url: str) -> Path | None:
    try:
        parsed = parse_analytics_url(analytics_url)
    except StartupError:
        return None  # opening the store reports it
    if parsed.backend != "chdb" or not parsed.path.startswith("/"):
        return None  # a ClickHouse server, or chDB in memory: nothing on disk to share
    return Path(parsed.path)


def _describe_process(pid: int) -> str:
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
    args = [arg for arg in argv.split("\0") if arg]
    for index, arg in enumerate(args):
        if arg == "programs.worker":
            return "polyvision worker"
        if Path(arg).name == "polyvision" or arg == "programs.cli":
            following = args[index + 1 : index + 2]
            return " ".join(["polyvision", *following])
    return Path(args[0]).name if args else ""


def embedded_analytics_holder(analytics_url: str) -> StoreHolder | None:
    """The other process that holds the chDB data directory of ``analytics_url``, if any.

    chDB runs ClickHouse inside the process, and ClickHouse locks its data directory (an
    exclusive ``flock`` on its ``status`` file, which also records the holder's pid): a second
    process cannot open it, and chDB reports that only as "Error initializing EmbeddedServer".
    Asking first turns that into a reason. Call it before this process opens the store (the
    lock is per open file, so this process's own engine would count as another holder).

    Args:
        analytics_url: ``PV_ANALYTICS_URL``.

    Returns:
        The holder, or None when the store is free, in memory or a ClickHouse server.
    """
    path = _chdb_path(analytics_url)
    if path is None:
        return None
    try:
        status = (path / "status").open("rb")
    except OSError:
        return None  # never opened, or its last holder shut down cleanly
    with status:
        try:
            fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(status, fcntl.LOCK_UN)
            return None  # left behind by a holder that died; the next open takes it over
        text = status.read().decode(errors="replace")
    pid = 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "PID" and value.strip().isdigit():
            pid = int(value.strip())
    if pid == os.getpid():
        return None
    return StoreHolder(pid=pid, command=_describe_process(pid) if pid else "")


@contextlib.asynccontextmanager
async def open_pipeline_stores(settings: Settings) -> AsyncIterator[PipelineStores]:
    """Open every store of ``settings`` for a worker; close them all on exit."""
    work_dir = settings.data_dir / "worker"
    work_dir.mkdir(parents=True, exist_ok=True)
    objects = open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    )
    analytics = open_analytics_store(settings.analytics_url)
    engine = create_engine(settings.database_url)
    try:
        apply_migrations(analytics)
        yield PipelineStores(
            objects=objects,
            analytics=analytics,
            sessions=session_maker(engine),
            models_dir=settings.models_dir,
            work_dir=work_dir,
            detect=DetectTuning(
                stride=settings.detect_stride,
                tiles=settings.detect_tiles,
                inference_layout=settings.inference_layout,
            ),
        )
    finally:
        await engine.dispose()
        analytics.close()
        await objects.close()
