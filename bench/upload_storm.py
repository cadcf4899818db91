"""An upload storm: many edge agents upload at once through a link that keeps dropping.

``--agents`` (default 50) simulated edge boxes, each provisioned the real way (a provisioning
code from the API, ``POST /devices/register`` with a fresh Ed25519 key, ``device.json`` in its
own state directory), each with one finished recording pair in its own recordings directory.
They run at once in this process, each as ``polyvision-edge watch`` runs on a box: the real
`edge.watch.Watcher` (spool, hashing, resumable `edge.uploader.Uploader`, `edge.client.EdgeClient`
with its retries and backoff), trying again when the spool says the pair is due.

The API is a real uvicorn server process with the embedded stores and a Temporal dev server
(`polyvision.temporal.devserver.DevServer`): a completed upload starts the match workflow, on a
task queue of this run that no worker polls, so the workflows stay as started. Every byte the
agents send, the part uploads included (the API's public URL, which signs the part URLs, is the
proxy's), goes through `bench.cutting_proxy.CuttingProxy`, which cuts connections at seeded
random moments: mid-request, mid-part, mid-answer (the answer of a completion included, after
the server did the work). Provisioning goes to the API directly: a one-time code whose answer
is lost cannot be used again, which is an operator's problem, not the agent's.

Then it checks what the server holds: every pair completed exactly once (one upload session,
one match), no corrupt recording (the sha256 of each stored recording equals its source), no
duplicate asset, and exactly one match workflow per match, started once (Temporal's own list).

The API's per-address rate limits are raised for the run: the agents all come from 127.0.0.1,
where a real fleet has an address per box.

Run: ``python -m bench.upload_storm [--agents 50] [--cut-probability 0.5] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from sqlalchemy import func
from sqlmodel import col, select

from bench.api_process import ApiProcess, BenchMember, bench_member
from bench.cutting_proxy import CutPlan, CuttingProxy
from bench.results_file import write_results
from edge.client import EdgeClient
from edge.keys import (
    SPOOL_FILENAME,
    DeviceConfig,
    load_device_config,
    load_key,
    load_or_generate_key,
    save_device_config,
)
from edge.spool import Spool, State
from edge.uploader import Uploader
from edge.watch import LEFT_SUFFIX, MARKER_SUFFIX, RIG_FILENAME, RIGHT_SUFFIX, Watcher
from polyvision.device_tokens import public_key_text
from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Match,
    Role,
    Upload,
    UploadStatus,
)
from polyvision.storage.objects import MIN_PART_SIZE, ObjectStore, open_object_store
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.apply import apply_namespace
from polyvision.temporal.client import connect
from polyvision.temporal.config import load_namespace_config
from polyvision.temporal.devserver import DevServer
from polyvision.temporal.queues import QueueRole, queue_names
from synth.rig import default_rig

PART_SIZE = MIN_PART_SIZE
"""The smallest part the API takes, so a recording of a few MiB is several parts."""
WIDTH, HEIGHT = 640, 480


# --- the recordings -----------------------------------------------------------------------


def write_recording(path: Path, frames: int, seed: int) -> str:
    """A lossless H.264 MP4 of random pixels (about 0.55 MiB a frame: incompressible, so the
    size is what ``frames`` says); its sha256."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "qp": "0"}
        for _ in range(frames):
            pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Agent:
    """One simulated edge box."""

    index: int
    home: Path
    sources: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    retries: int = 0  # requests tried again by the client (each backoff sleep is one)
    completion_waits: int = 0  # waits while the server was completing the upload
    attempts: int = 0  # upload attempts of the pair (the spool's count)
    state: State | None = None
    match_id: uuid.UUID | None = None
    workflow_id: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def state_dir(self) -> Path:
        """Key, ``device.json`` and spool."""
        return self.home / "state"

    @property
    def recordings(self) -> Path:
        """The directory the recorder writes to and the agent watches."""
        return self.home / "recordings"


def prepare_recordings(agent: Agent, frames: int, rig: Path) -> None:
    """The agent's finished pair, as the recorder leaves it: both files, the rig, the marker."""
    agent.recordings.mkdir(parents=True, exist_ok=True)
    name = f"match{agent.index:03d}"
    for offset, suffix in enumerate((LEFT_SUFFIX, RIGHT_SUFFIX)):
        path = agent.recordings / f"{name}{suffix}"
        agent.sources[path.name] = write_recording(path, frames, 2 * agent.index + offset)
    (agent.recordings / RIG_FILENAME).write_bytes(rig.read_bytes())
    (agent.recordings / f"{name}{MARKER_SUFFIX}").touch()


async def provision(agent: Agent, api_url: str, device_api_url: str, admin: BenchMember) -> None:
    """Provision the agent as ``polyvision-edge provision`` does, with a fresh code."""
    async with httpx.AsyncClient(base_url=api_url, timeout=60.0) as http:
        answer = await http.post(
            f"/orgs/{admin.organization_id}/devices/provisioning-codes",
            json={"ttl_s": 3600},
            headers=admin.headers,
        )
        answer.raise_for_status()
        code = str(answer.json()["code"])
    key = load_or_generate_key(agent.state_dir)
    async with EdgeClient(api_url) as client:
        registered = await client.register(code, f"box-{agent.index:03d}", public_key_text(key))
    save_device_config(
        agent.state_dir,
        DeviceConfig(
            api_url=device_api_url,
            device_id=registered.device_id,
            organization_id=registered.organization_id,
            name=registered.name,
        ),
    )


async def run_agent(agent: Agent, seed: int, deadline: float) -> None:
    """``polyvision-edge watch`` of the agent's directory until its pair is settled (or the
    deadline); what happened is left on ``agent``. An error the agent cannot survive (the
    device refused, say) is recorded, not raised: the other agents go on."""
    started = time.monotonic()
    try:
        await _watch_until_settled(agent, seed, deadline)
    except Exception as exc:  # reported per agent; the storm goes on
        agent.error = f"{type(exc).__name__}: {exc}"
    agent.seconds = time.monotonic() - started


async def _watch_until_settled(agent: Agent, seed: int, deadline: float) -> None:
    config = load_device_config(agent.state_dir)

    async def client_sleep(seconds: float) -> None:
        agent.retries += 1
        await asyncio.sleep(seconds)

    async def completion_sleep(seconds: float) -> None:
        agent.completion_waits += 1
        await asyncio.sleep(seconds)

    client = EdgeClient(
        config.api_url,
        config.device_id,
        load_key(agent.state_dir),
        sleep=client_sleep,
        rng=random.Random(seed * 1000 + agent.index),
    )
    with Spool.open(agent.state_dir / SPOOL_FILENAME) as spool:
        async with client:
            uploader = Uploader(client, spool, sleep=completion_sleep)
            watcher = Watcher(
                uploader,
                spool,
                agent.recordings,
                agent.recordings / RIG_FILENAME,
                part_size=PART_SIZE,
            )
            while True:
                await watcher.run_once()
                spooled = spool.all()
                if len(spooled) != 1:
                    raise RuntimeError(f"{len(spooled)} pairs spooled, 1 expected")
                recording = spooled[0]
                agent.state, agent.attempts = recording.state, recording.attempts
                agent.match_id, agent.workflow_id = recording.match_id, recording.workflow_id
                agent.error = recording.last_error
                if recording.state in (State.completed, State.failed):
                    return
                due = spool.next_due_at() or time.time()
                if time.monotonic() + (due - time.time()) > deadline:
                    agent.error = f"not done before --timeout; last error: {recording.last_error}"
                    return
                await asyncio.sleep(max(0.05, due - time.time()))


# --- what the server holds ----------------------------------------------------------------


async def _stored_sha256(objects: ObjectStore, key: str) -> str:
    digest = hashlib.sha256()
    async with await objects.open_read(key) as reader:
        async for chunk in reader:
            digest.update(chunk)
    return digest.hexdigest()


async def server_state(settings: Settings, agents: list[Agent]) -> dict[str, Any]:
    """Sessions, matches and recording assets in the metadata store, and whether each stored
    recording is its source byte for byte."""
    engine = create_engine(settings.database_url)
    objects = open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    )
    sources = {sha for agent in agents for sha in agent.sources.values()}
    try:
        async with session_maker(engine)() as session:
            uploads = (await session.exec(select(Upload))).all()
            matches = (await session.exec(select(func.count()).select_from(Match))).one()
            recordings = (
                await session.exec(
                    select(Asset).where(
                        col(Asset.kind).in_([AssetKind.recording_left, AssetKind.recording_right])
                    )
                )
            ).all()
        corrupt = 0
        for asset in recordings:
            stored = await _stored_sha256(objects, asset.object_key)
            if stored != asset.sha256 or stored not in sources:
                corrupt += 1
    finally:
        await objects.close()
        await engine.dispose()
    per_ref = Counter(upload.client_ref for upload in uploads)
    per_match_kind = Counter((asset.match_id, asset.kind) for asset in recordings)
    per_key = Counter(asset.object_key for asset in recordings)
    completed = [upload for upload in uploads if upload.status is UploadStatus.completed]
    return {
        "sessions": len(uploads),
        "sessions_completed": len(completed),
        "duplicate_sessions": sum(n - 1 for n in per_ref.values()),
        "matches": int(matches),
        "recording_assets": len(recordings),
        "duplicate_assets": sum(n - 1 for n in per_match_kind.values())
        + sum(n - 1 for n in per_key.values()),
        "corrupt": corrupt,
        "completed_match_ids": sorted(str(upload.match_id) for upload in completed),
    }


async def workflow_starts(address: str, namespace: str, task_queue: str) -> Counter[str]:
    """Runs per workflow id on the run's task queue, from Temporal's visibility store."""
    client = await connect(address, namespace)
    runs: Counter[str] = Counter()
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        runs[execution.id] += 1
    return runs


# --- the run ------------------------------------------------------------------------------


async def storm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    suffix = f"-upload-storm-{uuid.uuid4().hex[:8]}"
    task_queue = queue_names(suffix)[QueueRole.cpu]
    namespace = load_namespace_config()
    async with DevServer(work / "temporal", namespace=namespace, headless=True) as temporal:
        client = await connect(temporal.address, namespace.name)
        await apply_namespace(client, namespace)
        api_port = free_port()
        rig = work / RIG_FILENAME
        default_rig().save(rig)
        agents = [Agent(i, work / "agents" / f"{i:03d}") for i in range(args.agents)]
        made = time.monotonic()
        for agent in agents:
            await asyncio.to_thread(prepare_recordings, agent, args.frames, rig)
        sizes = [p.stat().st_size for a in agents for p in a.recordings.glob("*.mp4")]
        print(
            f"{len(agents)} pairs of {min(sizes)}..{max(sizes)} bytes per file written in "
            f"{time.monotonic() - made:.1f} s"
        )
        # A connection is cut (or not) somewhere in the bytes an agent sends (both files and
        # its requests) or within the first few answers it gets.
        plan = CutPlan(
            args.seed,
            args.cut_probability,
            max_up_bytes=2 * max(sizes) + 64 * 1024,
            max_down_bytes=8 * 1024,
        )
        # The cutting proxy runs in this process, in front of the API: the API's public URL,
        # which signs the part URLs, is the proxy's, so the parts go through it too.
        async with CuttingProxy(("127.0.0.1", api_port), plan) as proxy:
            settings = Settings(
                data_dir=work / "pv",
                api_host="127.0.0.1",
                api_port=api_port,
                api_public_url=proxy.url,
                temporal_address=temporal.address,
                temporal_namespace=namespace.name,
                task_queue_suffix=suffix,
                rate_limit_auth_per_minute=100_000,
                rate_limit_device_per_minute=1_000_000,
                log_level="WARNING",
            )
            # Alembic runs its own event loop: in a thread, beside this one.
            await asyncio.to_thread(upgrade_stores, settings)
            admin = await bench_member(settings, Role.admin, "upload-storm")
            api = ApiProcess(settings, args.workers, work / "api.log")
            with api:
                direct = f"http://127.0.0.1:{api_port}"
                for agent in agents:
                    await provision(agent, direct, proxy.url, admin)
                print(f"{len(agents)} agents provisioned; uploading through {proxy.url}")
                started = time.monotonic()
                deadline = started + args.timeout
                await asyncio.gather(*(run_agent(agent, args.seed, deadline) for agent in agents))
                elapsed = time.monotonic() - started
                held = await server_state(settings, agents)
        runs = await _settled_runs(temporal.address, namespace.name, task_queue, len(agents))
    return _record(args, agents, proxy, held, runs, elapsed, sizes)


async def _settled_runs(address: str, namespace: str, queue: str, expected: int) -> Counter[str]:
    # Visibility is eventually consistent: ask again for a few seconds if runs are missing.
    runs: Counter[str] = Counter()
    for _ in range(20):
        runs = await workflow_starts(address, namespace, queue)
        if sum(runs.values()) >= expected:
            break
        await asyncio.sleep(0.5)
    return runs


def _record(
    args: argparse.Namespace,
    agents: list[Agent],
    proxy: CuttingProxy,
    held: dict[str, Any],
    runs: Counter[str],
    elapsed: float,
    sizes: list[int],
) -> dict[str, Any]:
    completed = [a for a in agents if a.state is State.completed]
    expected_ids = {f"match-{match_id}" for match_id in held["completed_match_ids"]}
    agent_ids = {a.workflow_id for a in completed}
    counts = {
        "uploads": len(agents),
        "completed": len(completed),
        "failed": sum(1 for a in agents if a.state is State.failed),
        "unfinished": sum(1 for a in agents if a.state not in (State.completed, State.failed)),
        "connections": proxy.counts.connections,
        "connections_cut": proxy.counts.cut,
        "cut_mid_request": proxy.counts.cut_up,
        "cut_mid_answer": proxy.counts.cut_down,
        "cut_during": dict(proxy.counts.cut_during.most_common()),
        "retries": sum(a.retries for a in agents),
        "upload_attempts_after_the_first": sum(max(0, a.attempts - 1) for a in agents),
        "completion_waits": sum(a.completion_waits for a in agents),
        "server_sessions": held["sessions"],
        "server_sessions_completed": held["sessions_completed"],
        "server_matches": held["matches"],
        "recording_assets": held["recording_assets"],
        "corrupt": held["corrupt"],
        "duplicate_sessions": held["duplicate_sessions"],
        "duplicate_assets": held["duplicate_assets"],
        "workflows": len(runs),
        "duplicate_workflow_starts": sum(n - 1 for n in runs.values())
        + len(set(runs) - expected_ids),
        "workflows_missing": len(expected_ids - set(runs)),
        "agents_disagreeing_with_server": len(agent_ids ^ expected_ids),
    }
    exactly_once = (
        counts["completed"] == counts["uploads"] == counts["server_sessions_completed"]
        and counts["server_sessions"] == counts["server_matches"] == counts["uploads"]
        and counts["recording_assets"] == 2 * counts["uploads"]
        and counts["workflows"] == counts["uploads"]
        and not any(
            counts[name]
            for name in (
                "corrupt",
                "duplicate_sessions",
                "duplicate_assets",
                "duplicate_workflow_starts",
                "workflows_missing",
                "agents_disagreeing_with_server",
            )
        )
    )
    errors = Counter(a.error[:160] for a in agents if a.error and a.state is not State.completed)
    return {
        "agents": args.agents,
        "seed": args.seed,
        "cut_probability": args.cut_probability,
        "api_worker_processes": args.workers,
        "file_bytes": {"min": min(sizes), "max": max(sizes)},
        "part_size": PART_SIZE,
        "seconds": round(elapsed, 1),
        "counts": counts,
        "every_upload_exactly_once": exactly_once,
        "agent_seconds_max": round(max(a.seconds for a in agents), 1),
        "errors_of_unfinished": dict(errors),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=50, help="edge agents uploading at once")
    parser.add_argument(
        "--frames",
        type=int,
        default=12,
        help="frames per recording, about 0.55 MiB each (12: two parts a file)",
    )
    parser.add_argument(
        "--cut-probability", type=float, default=0.5, help="share of connections cut"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds the agents get to finish"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pv-bench-storm-") as scratch:
        record = asyncio.run(storm(args, Path(scratch)))
    path = write_results("upload_storm", record)
    counts = record["counts"]
    print(
        f"{counts['completed']}/{counts['uploads']} uploads completed in {record['seconds']} s; "
        f"{counts['connections_cut']} of {counts['connections']} connections cut, "
        f"{counts['retries']} retries; corrupt {counts['corrupt']}, duplicate assets "
        f"{counts['duplicate_assets']}, duplicate workflow starts "
        f"{counts['duplicate_workflow_starts']}; exactly once: "
        f"{record['every_upload_exactly_once']}; results: {path}"
    )


if __name__ == "__main__":
    main()
