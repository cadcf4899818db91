"""The pieces every fault scenario is built from: a Temporal dev server, worker processes run as
an operator runs them (`python -m programs.worker`), synthetic matches uploaded to an object
store, and the digests a run is judged by.

A run is judged by everything it stored under the match's revision (key → sha256; the attempt
records of `polyvision.fencing` excepted, since they count attempts) and by every analytics row
it wrote (per table: the row count and an order-independent hash of the rows without their
ingestion time). Two runs of the same recordings into two fresh data directories must agree on
both, whatever was killed, frozen or restarted on the way.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from polyvision.artifacts import match_prefix
from polyvision.fencing import FENCE_FOLDER
from polyvision.storage.objects import ObjectStore, open_object_store
from polyvision.temporal.devserver import DevServer
from synth.generate import SynthConfig, generate_match
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput

ORG = "chaos-org"
SECRET = b"c" * 32
HEARTBEAT_TIMEOUT_S = 5.0
"""Heartbeat timeout of the chaos runs: a killed or frozen attempt is retried after this."""


@dataclass(frozen=True)
class SynthMatch:
    """A generated recording pair on disk."""

    name: str
    directory: Path
    config: SynthConfig


def make_matches(root: Path, seeds: Sequence[int], seconds: float = 4.0) -> list[SynthMatch]:
    """Generate one small synthetic match per seed (640 x 360, cached under ``root``)."""
    matches = []
    for seed in seeds:
        config = SynthConfig(seconds=seconds, width=640, height=360, seed=seed)
        directory = root / f"synth-{seed}-{seconds:g}s"
        if not (directory / "rig.json").exists():
            generate_match(config, directory)
        matches.append(SynthMatch(f"m{seed}", directory, config))
    return matches


class WorkerProcess:
    """`python -m programs.worker` in its own process group, logging to a file."""

    def __init__(
        self,
        data_dir: Path,
        address: str,
        suffix: str,
        *,
        queues: str = "all",
        env: Mapping[str, str] | None = None,
        name: str = "worker",
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = data_dir / f"{name}-{time.monotonic_ns()}.log"
        environ = {
            **os.environ,
            "PV_DATA_DIR": str(data_dir),
            "PV_TEMPORAL_ADDRESS": address,
            "PV_WORKER_METRICS_PORT": "0",
            "PV_LOG_JSON": "true",
        }
        for key in ("PV_DATABASE_URL", "PV_ANALYTICS_URL", "PV_OBJECTS_URL"):
            environ.pop(key, None)
        environ.update(env or {})
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "programs.worker",
                    "--queues",
                    queues,
                    f"--task-queue-suffix={suffix}",
                    "--shutdown-timeout",
                    "5",
                ],
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def ran(self, worker_identity: str) -> bool:
        """Whether a Temporal worker identity is this process's (``pid@host...``)."""
        return worker_identity.startswith(f"{self.process.pid}@")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and anything it spawned)."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def freeze(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def log_tail(self, limit: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-limit:]

    def log_events_containing(self, text: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` contains ``text``."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if text not in line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if text in str(record.get("event", "")):
                found.append(record)
        return found

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines whose ``event`` is ``event``."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if event not in line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == event:
                found.append(record)
        return found


@dataclass
class RunDir:
    """One run's data directory: its object store, embedded analytics and worker logs."""

    root: Path
    objects_url: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.objects_url:
            self.objects_url = f"file://{(self.root / 'objects').resolve()}"
        if not self.objects_url.startswith("file://"):
            self.env["PV_OBJECTS_URL"] = self.objects_url

    def objects(self) -> ObjectStore:
        return open_object_store(self.objects_url, secret=SECRET, public_base_url="http://chaos")

    def worker(self, server: DevServer, suffix: str, **kwargs: Any) -> WorkerProcess:
        env = {**self.env, **kwargs.pop("env", {})}
        return WorkerProcess(self.root, server.address, suffix, env=env, **kwargs)

    @property
    def analytics_url(self) -> str:
        return self.env.get("PV_ANALYTICS_URL", f"chdb://{(self.root / 'analytics').resolve()}")


async def upload(run: RunDir, match: SynthMatch) -> dict[str, str]:
    """Put a match's recordings and rig into the run's store; their keys by file name."""
    async with run.objects() as objects:
        keys = {}
        for name in ("left.mp4", "right.mp4", "rig.json"):
            info = await objects.upload_file(
                f"uploads/{ORG}/{match.name}/{name}", match.directory / name
            )
            keys[name] = info.key
        return keys


def match_input(
    match: SynthMatch, keys: Mapping[str, str], suffix: str, **overrides: Any
) -> MatchInput:
    return MatchInput(
        organization_id=ORG,
        match_id=match.name,
        left_key=keys["left.mp4"],
        right_key=keys["right.mp4"],
        rig_key=keys["rig.json"],
        chunk_seconds=overrides.pop("chunk_seconds", 2.0),
        task_queue_suffix=suffix,
        heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        progress_interval_s=1.0,
        **overrides,
    )


async def start_match(client: Client, input: MatchInput) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        MatchWorkflow.run,
        input,
        id=workflow_id_for(input.match_id),
        task_queue=f"polyvision-cpu{input.task_queue_suffix}",
    )


async def object_digests(run: RunDir, match_id: str, revision: int = 1) -> dict[str, str]:
    """sha256 of every object the run stored for the match's revision (attempt records aside)."""
    prefix = match_prefix(ORG, match_id, revision) + "/"
    fences = f"{prefix}{FENCE_FOLDER}/"
    digests = {}
    async with run.objects() as objects:
        async for info in objects.list_prefix(prefix):
            if info.key.startswith(fences):
                continue
            digest = info.sha256 or (await objects.stat(info.key)).sha256 or ""
            digests[info.key.removeprefix(prefix)] = digest
    return digests


def analytics_digests(run: RunDir) -> dict[str, dict[str, list[int]]]:
    """Per table and match: [row count, order-independent row hash], read in a child process
    (the embedded store admits one process at a time; the workers must be stopped first)."""
    completed = subprocess.run(
        [sys.executable, "-m", "chaos.rows", run.analytics_url, ORG],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"reading the analytics rows failed: {completed.stderr[-2000:]}")
    result: dict[str, dict[str, list[int]]] = json.loads(completed.stdout)
    return result


def differences(reference: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ or that only one side has (sorted)."""
    keys = set(reference) | set(other)
    return sorted(k for k in keys if reference.get(k) != other.get(k))


async def wait_all(
    handles: Sequence[WorkflowHandle[Any, Any]], within_s: float
) -> list[BaseException | None]:
    """Each workflow's failure, or None when it completed.

    Keeps asking through a Temporal outage (the restart scenario): an unavailable server is
    retried, only the workflow's own outcome counts.
    """
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    async def one(handle: WorkflowHandle[Any, Any]) -> BaseException | None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                status = (await handle.describe()).status
            except RPCError:
                await asyncio.sleep(1.0)
                continue
            if status == WorkflowExecutionStatus.RUNNING:
                await asyncio.sleep(0.5)
                continue
            try:
                await handle.result()
            except BaseException as exc:
                return exc
            return None
        return TimeoutError(f"{handle.id} still running after {within_s:.0f} s")

    return list(await asyncio.gather(*(one(h) for h in handles)))


async def dev_server(root: Path, dynamic_config: Mapping[str, Any] | None = None) -> DevServer:
    """A started headless dev server keeping its state in ``root``."""
    from polyvision.temporal.config import load_dynamic_config

    config = {**load_dynamic_config(), **(dynamic_config or {})}
    server = DevServer(root, dynamic_config=config, headless=True)
    await server.start(timeout=60)
    return server


@dataclass(frozen=True)
class PendingActivity:
    """An activity a running workflow waits on, as the server describes it."""

    workflow_id: str
    activity_type: str
    started: bool
    attempt: int
    worker_identity: str


async def pending_activities(client: Client) -> list[PendingActivity]:
    """Every pending activity of every running workflow (children included)."""
    from temporalio.api.enums.v1 import PendingActivityState

    found = []
    async for execution in client.list_workflows('ExecutionStatus="Running"'):
        try:
            description = await client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).describe()
        except Exception:
            continue
        for pending in description.raw_description.pending_activities:
            found.append(
                PendingActivity(
                    workflow_id=execution.id,
                    activity_type=pending.activity_type.name,
                    started=pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
                    attempt=pending.attempt,
                    worker_identity=pending.last_worker_identity,
                )
            )
    return found
