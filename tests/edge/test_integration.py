"""The edge agent against the real API: provisioning, uploads, resume after SIGKILL, watch.

The API runs in-process under uvicorn on a free port (`live_api`), with the embedded stores and
the session's Temporal dev server; ``polyvision-edge`` runs as a subprocess, as on a box.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.ingest.service import MISSING_PARTS
from edge.cli import READY_PREFIX
from edge.client import ApiError, EdgeClient
from edge.keys import KEY_FILENAME, SPOOL_FILENAME, load_device_config, load_key
from edge.protocol import PartUrl, UploadSession
from edge.spool import Spool, State
from edge.uploader import COMPLETION_WAIT_S, Uploader, describe_pair
from polyvision.storage.metadata.models import Role, Upload, UploadStatus
from synth.rig import default_rig
from tests.edge.media import write_mp4
from tests.fixtures.live_api import (
    REPO,
    LiveApi,
    edge_command,
    lines,
    provision,
    run_edge,
)

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def make_pair(
    directory: Path,
    name: str,
    frames: int = 10,
    *,
    width: int = 64,
    height: int = 48,
    noise: bool = False,
) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    left = write_mp4(
        directory / f"{name}_left.mp4", frames, width=width, height=height, noise=noise, seed=1
    )
    right = write_mp4(
        directory / f"{name}_right.mp4", frames, width=width, height=height, noise=noise, seed=2
    )
    return left, right


def make_rig(directory: Path) -> Path:
    path = directory / "rig.json"
    default_rig().save(path)
    return path


def device_client(state_dir: Path) -> EdgeClient:
    config = load_device_config(state_dir)
    return EdgeClient(config.api_url, config.device_id, load_key(state_dir))


def spool_rows(state_dir: Path) -> list[dict[str, object]]:
    with Spool.open(state_dir / SPOOL_FILENAME) as spool:
        return [
            {"state": r.state, "session_id": r.session_id, "name": r.info.name, "id": r.id}
            for r in spool.all()
        ]


async def session_of(state_dir: Path, name: str) -> UploadSession:
    (row,) = [r for r in spool_rows(state_dir) if r["name"] == name]
    assert isinstance(row["session_id"], uuid.UUID)
    async with device_client(state_dir) as client:
        return await client.get_upload(row["session_id"])


async def test_provision_then_upload_a_pair(live_api: LiveApi, tmp_path: Path) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    state = tmp_path / "edge"
    result = await provision(live_api, state, org, name="pitch 1")
    assert "provisioned device" in result.stdout
    assert stat.S_IMODE((state / KEY_FILENAME).stat().st_mode) == 0o600
    config = load_device_config(state)
    assert (config.organization_id, config.api_url) == (org.id, live_api.url)
    async with device_client(state) as client:
        me = await client.me()
    assert (me.id, me.status, me.name) == (config.device_id, "active", "pitch 1")

    # A second provisioning of the same state directory is refused, nothing changes.
    again = await run_edge(state, "provision", "--api", live_api.url, "--code", "x", "--name", "y")
    assert again.code == 1 and "already provisioned" in again.stderr
    assert load_device_config(state) == config

    left, right = make_pair(tmp_path / "rec", "derby")
    rig = make_rig(tmp_path / "rec")
    uploaded = await run_edge(
        state, "upload", str(left), str(right), "--rig", str(rig), "--title", "Derby"
    )
    assert uploaded.code == 0, uploaded.stderr
    assert "uploaded: match" in uploaded.stdout
    # Progress lines are labelled by file.
    assert lines(uploaded.stderr, "derby_left.mp4: 1/1 parts (", "part 1 sent")
    assert lines(uploaded.stderr, "derby_right.mp4: 1/1 parts (", "part 1 sent")
    session = await session_of(state, "derby")
    live_api.workflows.append(f"match-{session.match_id}")
    assert session.status == "completed"
    assert session.workflow_id == f"match-{session.match_id}"
    assert session.verified is not None and session.verified["left"] == session.files["left"].sha256
    # Default: the recordings stay on the box.
    assert left.exists() and right.exists()
    (row,) = spool_rows(state)
    assert row["state"] is State.completed

    # Uploading the same pair again is a no-op.
    repeat = await run_edge(state, "upload", str(left), str(right), "--rig", str(rig))
    assert repeat.code == 0 and "already uploaded" in repeat.stdout

    status = await run_edge(state, "status", "--json")
    assert status.code == 0
    (shown,) = json.loads(status.stdout)
    assert shown["state"] == "completed" and shown["match_id"] == str(session.match_id)
    assert shown["left_parts"] == {"confirmed": 1, "total": 1}


async def test_a_killed_upload_resumes_without_resending_parts(
    live_api: LiveApi, tmp_path: Path
) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    state = tmp_path / "edge"
    await provision(live_api, state, org)
    # ~16 MiB each, 5 MiB parts: 4 parts per file.
    left, right = make_pair(tmp_path / "rec", "final", frames=30, width=640, height=480, noise=True)
    rig = make_rig(tmp_path / "rec")
    sizes = [left.stat().st_size, right.stat().st_size]
    assert all(15 * MIB < size <= 20 * MIB for size in sizes), sizes
    arguments = ("upload", str(left), str(right), "--rig", str(rig), "--part-size", "5M")
    # Throttled so that the kill lands between two parts.
    process = await asyncio.create_subprocess_exec(
        *edge_command(state, *arguments, "--limit-rate", "8M"),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    spool_path = state / SPOOL_FILENAME
    confirmed = 0
    for _ in range(3000):
        await asyncio.sleep(0.01)
        if process.returncode is not None:
            break
        if spool_path.exists():
            with sqlite3.connect(spool_path) as db:
                try:
                    confirmed = db.execute("SELECT COUNT(*) FROM parts").fetchone()[0]
                except sqlite3.OperationalError:  # schema not created yet
                    confirmed = 0
            if confirmed >= 1:
                break
    assert process.returncode is None, "the upload finished before it could be killed"
    assert confirmed >= 1
    process.send_signal(signal.SIGKILL)
    await process.wait()

    before = await session_of(state, "final")
    live_api.workflows.append(f"match-{before.match_id}")
    done_before = {side: set(before.files[side].parts_done) for side in ("left", "right")}
    total = sum(before.files[side].parts_total for side in ("left", "right"))
    assert total == 8
    assert 1 <= sum(len(done) for done in done_before.values()) < total
    stored_before = live_api.log.stored_parts()

    resumed = await run_edge(state, *arguments)
    assert resumed.code == 0, resumed.stderr
    after = await session_of(state, "final")
    assert after.status == "completed"
    assert after.verified == {s: after.files[s].sha256 for s in ("left", "right")}
    # The restarted agent sent exactly the parts the server did not have...
    for side in ("left", "right"):
        sent = {
            int(line.rsplit(", part ", 1)[1].split()[0])
            for line in lines(resumed.stderr, f"final_{side}.mp4: ", " sent")
        }
        assert sent == set(range(1, 5)) - done_before[side], resumed.stderr
        assert lines(
            resumed.stderr,
            f"final_{side}.mp4: {len(done_before[side])}/4 parts",
            "already on the server",
        )
    # ... and the server stored each part exactly once over both runs.
    stored = live_api.log.stored_parts()
    assert len(stored) == total and len(set(stored)) == total, stored
    assert len(stored) - len(stored_before) == total - sum(len(d) for d in done_before.values())


async def test_watch_once_uploads_finished_pairs_only(live_api: LiveApi, tmp_path: Path) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    state = tmp_path / "edge"
    await provision(live_api, state, org)
    recordings = tmp_path / "recordings"
    make_pair(recordings, "first")
    make_pair(recordings, "second", frames=12)
    make_rig(recordings)
    (recordings / "first.done").write_text("")

    once = await run_edge(state, "watch", str(recordings), "--once", "--delete-after-upload")
    assert once.code == 0, once.stderr
    assert [row["name"] for row in spool_rows(state)] == ["first"]
    first = await session_of(state, "first")
    live_api.workflows.append(f"match-{first.match_id}")
    assert first.status == "completed"
    # Verified with our digests, so deleted as asked, marker included; the unfinished pair stays.
    assert not (recordings / "first_left.mp4").exists()
    assert not (recordings / "first.done").exists()
    assert (recordings / "second_left.mp4").exists()

    (recordings / "second.done").write_text("")
    again = await run_edge(state, "watch", str(recordings), "--once")
    assert again.code == 0, again.stderr
    assert [row["name"] for row in spool_rows(state)] == ["first", "second"]
    assert lines(again.stderr, "second: completed")
    assert not lines(again.stderr, "first:")
    second = await session_of(state, "second")
    live_api.workflows.append(f"match-{second.match_id}")
    assert second.status == "completed"
    assert (recordings / "second_left.mp4").exists()  # no --delete-after-upload this time


async def test_a_refused_pair_is_failed_and_kept(live_api: LiveApi, tmp_path: Path) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    state = tmp_path / "edge"
    await provision(live_api, state, org)
    recordings = tmp_path / "rec"
    recordings.mkdir()
    left = write_mp4(recordings / "odd_left.mp4", 10)
    right = write_mp4(recordings / "odd_right.mp4", 12)
    rig = make_rig(recordings)
    result = await run_edge(
        state, "upload", str(left), str(right), "--rig", str(rig), "--delete-after-upload"
    )
    assert result.code == 1
    assert "the upload failed, files kept" in result.stderr
    assert "mismatched" in result.stderr.lower()
    assert left.exists() and right.exists()
    (row,) = spool_rows(state)
    assert row["state"] is State.failed


async def test_a_changed_file_fails_verification_and_is_kept(
    live_api: LiveApi, tmp_path: Path
) -> None:
    """Bytes changed after spooling (same size): the server's sha256 check refuses the pair at
    completion; the agent marks it failed and deletes nothing, even when asked to."""
    org = await live_api.factory.org(roles=(Role.admin,))
    device = await live_api.factory.device(org.id)
    recordings = tmp_path / "rec"
    left, right = make_pair(recordings, "tampered")
    rig = make_rig(recordings)
    info = describe_pair("tampered", left, right, rig)
    data = bytearray(left.read_bytes())
    data[-1] ^= 0xFF
    left.write_bytes(bytes(data))
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(info)
        async with EdgeClient(live_api.url, device.id, device.signing_key) as client:
            uploader = Uploader(client, spool, delete_after_upload=True)
            result = await uploader.process(recording.id)
            assert result.session_id is not None
            session = await client.get_upload(result.session_id)
    assert result.state is State.failed
    assert result.last_error is not None and "left" in result.last_error
    assert "sha256" in result.last_error
    assert session.status == "failed"
    assert left.exists() and right.exists()


async def test_watch_stops_cleanly_on_sigterm(live_api: LiveApi, tmp_path: Path) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    state = tmp_path / "edge"
    await provision(live_api, state, org)
    recordings = tmp_path / "rec"
    recordings.mkdir()
    make_rig(recordings)
    process = await asyncio.create_subprocess_exec(
        *edge_command(state, "watch", str(recordings), "--poll-interval", "0.1"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # A SIGTERM before the handlers are installed would kill the process (-15), and a cold
    # start can take many seconds on a loaded machine: wait for the readiness line instead of
    # guessing a delay.
    try:
        seen = await asyncio.wait_for(read_until(process, READY_PREFIX), 120)
        assert lines(seen, READY_PREFIX, str(recordings), "SIGTERM stops"), seen
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:  # a failed wait: leave no agent behind
            process.kill()
            await process.wait()
    stderr = seen + rest.decode()
    assert process.returncode == 0, stderr
    assert lines(stderr, "polyvision-edge watch: stopped"), stderr
    assert "Traceback" not in stderr


async def read_until(process: asyncio.subprocess.Process, needle: str) -> str:
    """Stderr of ``process`` up to and including the first line containing ``needle``."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = await process.stderr.readline()
        if not line:
            raise AssertionError(f"stderr closed before {needle!r}: {''.join(seen)}")
        seen.append(line.decode())
        if needle in seen[-1]:
            return "".join(seen)


class LossyClient(EdgeClient):
    """A real client that silently drops the first PUT of one part, as if the store lost it."""

    def __init__(self, *args: Any, lose: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose: int | None = lose
        self.completions: list[str] = []

    async def put_part(self, part: PartUrl, data: bytes) -> None:
        if part.number == self.lose:
            self.lose = None
            return
        await super().put_part(part, data)

    async def complete(self, session_id: uuid.UUID) -> UploadSession:
        try:
            session = await super().complete(session_id)
        except ApiError as exc:
            self.completions.append(f"{exc.status} {exc.problem_type}: {exc.detail}")
            raise
        self.completions.append(session.status)
        return session


async def test_missing_parts_at_completion_are_sent_again(
    live_api: LiveApi, tmp_path: Path
) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    device = await live_api.factory.device(org.id)
    left, right = make_pair(tmp_path / "rec", "lossy", frames=12, width=640, height=480, noise=True)
    rig = make_rig(tmp_path / "rec")
    info = describe_pair("lossy", left, right, rig, part_size=5 * MIB)
    assert info.left_size > 5 * MIB  # two parts per file
    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(info)
        client = LossyClient(live_api.url, device.id, device.signing_key, lose=2)
        async with client:
            result = await Uploader(client, spool).process(recording.id)
    assert result.state is State.completed, result.last_error
    assert result.match_id is not None
    live_api.workflows.append(f"match-{result.match_id}")
    first, second = client.completions
    # Exactly the lost part is named (the period rules out "left 2, 3" and a right side).
    assert first.startswith(f"409 {MISSING_PARTS}: Missing parts: left 2."), first
    assert second == "completed"


async def set_upload_status(live: LiveApi, session_id: uuid.UUID, status: UploadStatus) -> None:
    async with live.app.state.sessions() as db:
        upload = await db.get(Upload, session_id)
        assert upload is not None
        upload.status = status
        upload.completed_at = datetime.now(UTC)
        await db.commit()


class ClaimedClient(EdgeClient):
    """A real client whose first completion finds the session held by another completion (our
    own earlier try, whose answer timed out while the server was still hashing)."""

    def __init__(self, *args: Any, live: LiveApi, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live = live
        self.session_id: uuid.UUID | None = None
        self.answers: list[str] = []

    async def complete(self, session_id: uuid.UUID) -> UploadSession:
        if self.session_id is None:
            self.session_id = session_id
            await set_upload_status(self.live, session_id, UploadStatus.completing)
        try:
            session = await super().complete(session_id)
        except ApiError as exc:
            self.answers.append(f"{exc.status} {exc.title}")
            raise
        self.answers.append(session.status)
        return session


async def test_a_completion_in_progress_is_waited_for_not_taken_for_missing_parts(
    live_api: LiveApi, tmp_path: Path
) -> None:
    org = await live_api.factory.org(roles=(Role.admin,))
    device = await live_api.factory.device(org.id)
    left, right = make_pair(tmp_path / "rec", "busy")
    info = describe_pair("busy", left, right, make_rig(tmp_path / "rec"))
    client = ClaimedClient(live_api.url, device.id, device.signing_key, live=live_api)
    waits: list[float] = []

    async def meanwhile_the_first_try_finishes(seconds: float) -> None:
        waits.append(seconds)
        assert client.session_id is not None
        await set_upload_status(live_api, client.session_id, UploadStatus.uploading)
        async with EdgeClient(live_api.url, device.id, device.signing_key) as first_try:
            await first_try.complete(client.session_id)

    with Spool.open(tmp_path / "spool.sqlite") as spool:
        recording = spool.enqueue(info)
        async with client:
            uploader = Uploader(client, spool, sleep=meanwhile_the_first_try_finishes)
            result = await uploader.process(recording.id)
    assert result.state is State.completed, result.last_error
    assert result.match_id is not None
    live_api.workflows.append(f"match-{result.match_id}")
    assert waits == [COMPLETION_WAIT_S]
    assert client.answers == ["409 Completion in progress", "completed"]
