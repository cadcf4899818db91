"""The upload protocol on the file object store, with the real Temporal dev server.

No worker polls the suffixed task queues these tests use, so a started match workflow stays
running untouched: each test checks how it was started and terminates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.ingest.parts import (
    PartSizeError,
    choose_part_size,
    missing_parts,
    part_length,
    part_size_problems,
    parts_total,
)
from api.ingest.service import COMPLETION_IN_PROGRESS, MISSING_PARTS
from api.ingest.session import default_title, file_key
from polyvision.settings import Settings
from polyvision.storage.metadata.models import (
    Asset,
    AssetKind,
    Match,
    MatchStatus,
    Role,
    Upload,
    UploadStatus,
)
from polyvision.storage.objects import PartInfo
from polyvision.storage.upgrade import upgrade_stores
from polyvision.temporal.search_attributes import DEVICE_ID, MATCH_ID, ORGANIZATION_ID
from synth.rig import default_rig
from tests.api.factories import Factory, TestDevice
from tests.fixtures.temporal import TemporalTestServer
from workflows.types import MatchInput

MiB = 1024 * 1024
RECORDED_AT = "2025-05-17T15:00:00+02:00"
RIG: dict[str, Any] = json.loads(default_rig().to_json())

Headers = Callable[[], dict[str, str]]


# ---- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def api_settings(tmp_path: Path, temporal_server: TemporalTestServer) -> Settings:
    """The conftest's settings plus a task queue suffix no worker polls."""
    settings = Settings(
        data_dir=tmp_path / "pv",
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace.name,
        api_public_url="http://testserver",
        task_queue_suffix=f"-uploads-{uuid.uuid4().hex[:8]}",
    )
    upgrade_stores(settings)
    return settings


@pytest_asyncio.fixture
async def workflows(temporal_client: Client) -> AsyncIterator[list[str]]:
    """Workflow ids a test started; terminated at the end."""
    started: list[str] = []
    yield started
    for workflow_id in started:
        with contextlib.suppress(RPCError):  # already closed
            await temporal_client.get_workflow_handle(workflow_id).terminate("test over")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_body(
    left: bytes,
    right: bytes,
    *,
    client_ref: str | None = None,
    part_size: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_ref": client_ref or f"spool-{uuid.uuid4().hex[:8]}",
        "recorded_at": RECORDED_AT,
        "title": None,
        "left": {"filename": "cam-left.MP4", "size": len(left), "sha256": sha(left), "frames": 25},
        "right": {"filename": "right.mp4", "size": len(right), "sha256": sha(right), "frames": 25},
        "rig": RIG,
        "part_size": part_size,
    }
    body.update(overrides)
    return body


def device_headers(device: TestDevice) -> Headers:
    return lambda: device.headers


@dataclass
class Uploading:
    """A session opened through the API, and how to talk to it."""

    client: httpx.AsyncClient
    http: httpx.AsyncClient  # reaches the part URLs (the API itself, or S3)
    headers: Headers
    session: dict[str, Any]
    data: dict[str, bytes]

    @property
    def id(self) -> str:
        return str(self.session["id"])

    async def put_parts(self, side: str, numbers: list[int] | None = None) -> None:
        part_size = int(self.session["part_size"])
        data = self.data[side]
        wanted = numbers or list(range(1, parts_total(len(data), part_size) + 1))
        response = await self.client.post(
            f"/uploads/{self.id}/parts",
            json={"file": side, "numbers": wanted},
            headers=self.headers(),
        )
        assert response.status_code == 200, response.text
        for entry in response.json()["urls"]:
            start = (entry["number"] - 1) * part_size
            put = await self.http.put(
                entry["url"], content=data[start : start + part_size], headers=entry["headers"]
            )
            assert put.is_success, put.text
            assert put.headers["etag"]

    async def get(self) -> dict[str, Any]:
        response = await self.client.get(f"/uploads/{self.id}", headers=self.headers())
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def complete(self) -> httpx.Response:
        return await self.client.post(f"/uploads/{self.id}/complete", headers=self.headers())


async def open_upload(
    client: httpx.AsyncClient,
    headers: Headers,
    left: bytes,
    right: bytes,
    *,
    path: str = "/uploads",
    http: httpx.AsyncClient | None = None,
    **options: Any,
) -> Uploading:
    response = await client.post(path, json=open_body(left, right, **options), headers=headers())
    assert response.status_code == 201, response.text
    return Uploading(
        client=client,
        http=http or client,
        headers=headers,
        session=response.json(),
        data={"left": left, "right": right},
    )


async def describe_started(temporal: Client, workflow_id: str) -> tuple[Any, MatchInput]:
    handle = temporal.get_workflow_handle(workflow_id)
    description = await handle.describe()
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (match_input,) = await temporal.data_converter.decode(started.input.payloads, [MatchInput])
    assert isinstance(match_input, MatchInput)
    return description, match_input


async def assert_not_started(temporal: Client, workflow_id: str) -> None:
    with pytest.raises(RPCError) as raised:
        await temporal.get_workflow_handle(workflow_id).describe()
    assert raised.value.status is RPCStatusCode.NOT_FOUND


# ---- pure helpers --------------------------------------------------------------------------


def test_part_arithmetic() -> None:
    assert parts_total(11 * MiB, 5 * MiB) == 3
    assert parts_total(1, 5 * MiB) == 1
    assert [part_length(n, 11 * MiB, 5 * MiB) for n in (1, 2, 3)] == [5 * MiB, 5 * MiB, MiB]
    uploaded = [
        PartInfo(number=1, etag="a", size=5 * MiB, sha256=None),
        PartInfo(number=3, etag="c", size=MiB + 1, sha256=None),
        PartInfo(number=4, etag="d", size=1, sha256=None),
    ]
    assert missing_parts(uploaded, 11 * MiB, 5 * MiB) == [2]
    assert part_size_problems(uploaded, 11 * MiB, 5 * MiB) == [
        f"part 3 has {MiB + 1} bytes, expected {MiB}",
        "part 4 is beyond the last part (3)",
    ]


def test_choose_part_size() -> None:
    assert choose_part_size([100, 200], None) == 8 * MiB
    # A file needing more than 10,000 parts of 8 MiB gets bigger parts, in whole MiB.
    assert choose_part_size([100_000 * MiB], None) == 10 * MiB
    assert choose_part_size([100, 200], 1000) == 1000  # both fit in one part
    assert choose_part_size([11 * MiB], 5 * MiB) == 5 * MiB
    for sizes, requested in [
        ([11 * MiB], MiB),
        ([100 * MiB], 6 * 1024 * MiB),
        ([60_000 * MiB], 5 * MiB),
    ]:
        with pytest.raises(PartSizeError):
            choose_part_size(sizes, requested)
    # A deployment whose parts pass through the API's body limit: the default is clamped to it,
    # a larger request refused.
    assert choose_part_size([100 * MiB], None, limit=6 * MiB) == 6 * MiB
    assert choose_part_size([100 * MiB], None, limit=64 * MiB) == 8 * MiB
    assert choose_part_size([100 * MiB], 64 * MiB, limit=64 * MiB) == 64 * MiB
    with pytest.raises(PartSizeError, match=f"at most {64 * MiB} bytes"):
        choose_part_size([100 * MiB], 64 * MiB + 1, limit=64 * MiB)
    with pytest.raises(PartSizeError):
        choose_part_size([700_000 * MiB], None, limit=64 * MiB)  # > 10,000 parts of 64 MiB


def test_keys_and_title() -> None:
    org, upload = uuid.uuid4(), uuid.uuid4()
    assert file_key(org, upload, "left", "CAM.MP4") == f"orgs/{org}/uploads/{upload}/left.mp4"
    assert file_key(org, upload, "right", "noext") == f"orgs/{org}/uploads/{upload}/right"
    assert file_key(org, upload, "right", "a.b/../x y") == f"orgs/{org}/uploads/{upload}/right"
    recorded = datetime.fromisoformat(RECORDED_AT)
    assert default_title(recorded, "box-7") == "Recording 2025-05-17 15:00 — box-7"
    assert default_title(recorded, None) == "Recording 2025-05-17 15:00"


# ---- the protocol --------------------------------------------------------------------------


async def test_device_upload_happy_path(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    temporal_client: Client,
    api_settings: Settings,
    workflows: list[str],
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id, name="box-7")
    left, right = os.urandom(300_000), os.urandom(200_000)
    up = await open_upload(client, device_headers(device), left, right)

    session = up.session
    assert session["status"] == "created"
    assert session["part_size"] == 8 * MiB
    assert session["files"]["left"] == {
        "size": len(left),
        "sha256": sha(left),
        "frames": 25,
        "parts_total": 1,
        "parts_done": [],
    }
    assert session["workflow_id"] is None and session["verified"] is None
    async with app.state.sessions() as db:
        upload = await db.get(Upload, uuid.UUID(up.id))
        match = await db.get(Match, uuid.UUID(session["match_id"]))
    assert upload is not None and match is not None
    assert match.title == "Recording 2025-05-17 15:00 — box-7"
    assert match.status is MatchStatus.uploading and match.device_id == device.id
    prefix = f"orgs/{org.id}/uploads/{up.id}/"
    assert (upload.left_key, upload.right_key, upload.rig_key) == (
        f"{prefix}left.mp4",
        f"{prefix}right.mp4",
        f"{prefix}rig.json",
    )
    assert json.loads(await app.state.objects.get(f"{prefix}rig.json")) == RIG

    await up.put_parts("left")
    await up.put_parts("right")
    assert (await up.get())["files"]["right"]["parts_done"] == [1]
    response = await up.complete()

    assert response.status_code == 200, response.text
    done = response.json()
    workflow_id = f"match-{session['match_id']}"
    workflows.append(workflow_id)
    assert done["status"] == "completed"
    assert done["workflow_id"] == workflow_id
    assert done["run_id"]
    assert done["ui_url"].endswith(f"/workflows/{workflow_id}/{done['run_id']}/history")
    assert done["verified"] == {"left": sha(left), "right": sha(right)}
    assert done["files"]["left"]["parts_done"] == [1]
    assert await app.state.objects.get(f"{prefix}left.mp4") == left
    assert await app.state.objects.get(f"{prefix}right.mp4") == right

    description, match_input = await describe_started(temporal_client, workflow_id)
    assert description.status is WorkflowExecutionStatus.RUNNING
    assert description.run_id == done["run_id"]
    assert description.task_queue == f"polyvision-cpu{api_settings.task_queue_suffix}"
    attributes = description.typed_search_attributes
    assert attributes.get(MATCH_ID) == session["match_id"]
    assert attributes.get(ORGANIZATION_ID) == str(org.id)
    assert attributes.get(DEVICE_ID) == str(device.id)
    assert match_input.organization_id == str(org.id)
    assert match_input.match_id == session["match_id"]
    assert (match_input.left_key, match_input.right_key, match_input.rig_key) == (
        f"{prefix}left.mp4",
        f"{prefix}right.mp4",
        f"{prefix}rig.json",
    )
    assert match_input.device_id == str(device.id)
    assert match_input.revision == 1
    assert match_input.task_queue_suffix == api_settings.task_queue_suffix
    assert match_input.expected_left is not None and match_input.expected_right is not None
    assert (
        match_input.expected_left.size_bytes,
        match_input.expected_left.sha256,
        match_input.expected_left.frame_count,
    ) == (len(left), sha(left), 25)
    assert match_input.expected_right.sha256 == sha(right)

    async with app.state.sessions() as db:
        match = await db.get(Match, uuid.UUID(session["match_id"]))
        assets = (
            await db.exec(
                select(Asset).where(col(Asset.match_id) == uuid.UUID(session["match_id"]))
            )
        ).all()
    assert match is not None
    assert (match.status, match.revision, match.workflow_id) == (
        MatchStatus.processing,
        1,
        workflow_id,
    )
    assert sorted((a.kind, a.size_bytes, a.sha256, a.content_type) for a in assets) == [
        (AssetKind.recording_left, len(left), sha(left), "video/mp4"),
        (AssetKind.recording_right, len(right), sha(right), "video/mp4"),
    ]
    fetched = await up.get()
    assert fetched["status"] == "completed"
    assert fetched["run_id"] == done["run_id"]


async def test_multipart_resume_and_missing_parts(
    client: httpx.AsyncClient, factory: Factory, workflows: list[str]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(11 * MiB), os.urandom(1000)
    up = await open_upload(client, device_headers(device), left, right, part_size=5 * MiB)
    assert up.session["files"]["left"]["parts_total"] == 3

    await up.put_parts("left", [1])
    resumed = await up.get()
    assert resumed["status"] == "uploading"
    assert resumed["files"]["left"]["parts_done"] == [1]
    assert resumed["files"]["right"]["parts_done"] == []

    missing = await up.complete()
    assert missing.status_code == 409
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == MISSING_PARTS
    assert missing.json()["missing"] == {"left": [2, 3], "right": [1]}
    assert "left 2, 3" in missing.json()["detail"]
    assert "right 1" in missing.json()["detail"]
    assert (await up.get())["status"] == "uploading"  # still open

    await up.put_parts("left", [3, 2])
    await up.put_parts("right")
    assert (await up.get())["files"]["left"]["parts_done"] == [1, 2, 3]
    response = await up.complete()
    assert response.status_code == 200, response.text
    workflows.append(response.json()["workflow_id"])
    assert response.json()["verified"]["left"] == sha(left)


async def test_wrong_sha256_fails_the_session_and_starts_nothing(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, temporal_client: Client
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(5000), os.urandom(5000)
    up = await open_upload(client, device_headers(device), left, right)
    up.data["right"] = os.urandom(5000)  # same size, other content
    await up.put_parts("left")
    await up.put_parts("right")

    failed = await up.complete()

    assert failed.status_code == 422
    assert "right" in failed.json()["detail"] and "sha256" in failed.json()["detail"]
    session = await up.get()
    assert session["status"] == "failed"
    assert "right" in session["error"] and "sha256" in session["error"]
    prefix = f"orgs/{org.id}/uploads/{up.id}/"
    assert not await app.state.objects.exists(f"{prefix}right.mp4")
    assert not await app.state.objects.exists(f"{prefix}left.mp4")
    # The rig goes too: a failed session is never completed (the probe found it left behind).
    assert not await app.state.objects.exists(f"{prefix}rig.json")
    assert [info async for info in app.state.objects.list_prefix(prefix)] == []
    await assert_not_started(temporal_client, f"match-{session['match_id']}")
    async with app.state.sessions() as db:
        match = await db.get(Match, uuid.UUID(session["match_id"]))
    assert match is not None and match.status is MatchStatus.failed
    again = await up.complete()
    assert again.status_code == 409
    parts = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1]}, headers=device.headers
    )
    assert parts.status_code == 409


async def test_a_part_of_the_wrong_length_is_refused_before_it_is_stored(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(4000), os.urandom(4000)
    up = await open_upload(client, device_headers(device), left, right)
    urls = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1]}, headers=device.headers
    )
    [entry] = urls.json()["urls"]

    async def streamed(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    refused = [
        # The probe's part, twice the declared file: refused by its Content-Length...
        (await client.put(entry["url"], content=left + left), 413),
        # ...or, sent without one, as soon as it passes the declared length.
        (await client.put(entry["url"], content=streamed(left + b"one byte too many")), 413),
        (await client.put(entry["url"], content=left[:-1]), 422),
    ]
    for response, status in refused:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "nothing was stored" in response.json()["detail"]
    assert (await up.get())["files"]["left"]["parts_done"] == []
    async with app.state.sessions() as db:
        upload = await db.get(Upload, uuid.UUID(up.id))
    assert upload is not None and upload.left_key is not None and upload.left_upload_id
    assert await app.state.objects.list_parts(upload.left_key, upload.left_upload_id) == []

    # The part as declared is stored.
    assert (await client.put(entry["url"], content=streamed(left))).status_code == 200
    assert (await up.get())["files"]["left"]["parts_done"] == [1]


async def test_a_wrong_part_size_at_completion_fails_the_session_and_removes_its_files(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, temporal_client: Client
) -> None:
    # S3 takes parts straight from the uploader: there the completion's check is the only one.
    # Here the part goes to the store directly, as it would to S3.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(4000), os.urandom(4000)
    up = await open_upload(client, device_headers(device), left, right)
    await up.put_parts("right")
    async with app.state.sessions() as db:
        upload = await db.get(Upload, uuid.UUID(up.id))
    assert upload is not None and upload.left_key is not None and upload.left_upload_id
    await app.state.objects.upload_part(
        upload.left_key, upload.left_upload_id, 1, left + b"one byte too many"
    )

    failed = await up.complete()

    assert failed.status_code == 422
    detail = failed.json()["detail"]
    assert "left" in detail and f"{len(left) + 17} bytes, expected {len(left)}" in detail
    session = await up.get()
    assert session["status"] == "failed" and session["error"] == detail
    await assert_not_started(temporal_client, f"match-{session['match_id']}")
    # Nothing of the failed session stays in the store: no part, no file, no rig.
    prefix = f"orgs/{org.id}/uploads/{up.id}/"
    assert [info async for info in app.state.objects.list_prefix(prefix)] == []
    assert os.listdir(Path(app.state.settings.data_dir) / "objects" / ".staging" / "uploads") == []


async def test_completion_is_idempotent(
    client: httpx.AsyncClient, factory: Factory, temporal_client: Client, workflows: list[str]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(client, device_headers(device), b"left bytes", b"right bytes")
    await up.put_parts("left")
    await up.put_parts("right")

    first = await up.complete()
    second = await up.complete()

    assert first.status_code == second.status_code == 200
    workflows.append(first.json()["workflow_id"])
    assert first.json() == second.json()
    # The latest run is the first one: a second start would have made a newer run. (Describe,
    # not a visibility query, which may lag the start.)
    latest = await temporal_client.get_workflow_handle(first.json()["workflow_id"]).describe()
    assert latest.run_id == first.json()["run_id"]


async def test_open_is_idempotent_by_client_ref(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    body = open_body(b"left", b"right", client_ref="spool-42")

    first = await client.post("/uploads", json=body, headers=device.headers)
    again = await client.post("/uploads", json=body, headers=device.headers)
    changed = await client.post(
        "/uploads", json=open_body(b"left", b"other", client_ref="spool-42"), headers=device.headers
    )

    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert changed.status_code == 409
    async with app.state.sessions() as db:
        matches = (await db.exec(select(Match).where(col(Match.organization_id) == org.id))).all()
    assert len(matches) == 1
    # Another organization may use the same client_ref.
    other = await factory.org(roles=(Role.owner,))
    other_device = await factory.device(other.id)
    elsewhere = await client.post("/uploads", json=body, headers=other_device.headers)
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != first.json()["id"]


async def test_open_refuses_a_mismatched_pair_a_bad_rig_and_a_bad_part_size(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    body = open_body(b"left", b"right")
    body["right"]["frames"] = 24
    no_right_camera = {**RIG, "cameras": {"left": RIG["cameras"]["left"]}}

    mismatched = await client.post("/uploads", json=body, headers=device.headers)
    bad_rig = await client.post(
        "/uploads", json=open_body(b"l", b"r", rig=no_right_camera), headers=device.headers
    )
    old_rig = await client.post(
        "/uploads", json=open_body(b"l", b"r", rig={**RIG, "version": 99}), headers=device.headers
    )
    small_parts = await client.post(
        "/uploads",
        json=open_body(os.urandom(MiB + 1), b"r", part_size=MiB),
        headers=device.headers,
    )

    assert mismatched.status_code == 422
    assert "mismatched pair" in mismatched.json()["detail"]
    assert "25" in mismatched.json()["detail"] and "24" in mismatched.json()["detail"]
    assert bad_rig.status_code == 422
    assert "rig has no 'right' camera" in bad_rig.json()["detail"]
    assert old_rig.status_code == 422 and "version" in old_rig.json()["detail"]
    assert small_parts.status_code == 422 and "part_size" in small_parts.json()["detail"]
    async with app.state.sessions() as db:
        assert (
            await db.exec(select(Match).where(col(Match.organization_id) == org.id))
        ).all() == []


async def test_another_organizations_device_gets_404(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(client, device_headers(device), b"left", b"right")
    other = await factory.org(roles=(Role.owner,))
    intruder = await factory.device(other.id)

    answers = [
        await client.get(f"/uploads/{up.id}", headers=intruder.headers),
        await client.post(
            f"/uploads/{up.id}/parts",
            json={"file": "left", "numbers": [1]},
            headers=intruder.headers,
        ),
        await client.post(f"/uploads/{up.id}/complete", headers=intruder.headers),
        await client.delete(f"/uploads/{up.id}", headers=intruder.headers),
        await client.get(f"/uploads/{uuid.uuid4()}", headers=device.headers),
    ]

    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] == "Upload session not found."
    assert (await up.get())["status"] == "created"


async def test_member_uploads_need_the_upload_permission(
    client: httpx.AsyncClient, factory: Factory, workflows: list[str]
) -> None:
    org = await factory.org(roles=(Role.analyst, Role.viewer))
    analyst, viewer = org.member(Role.analyst), org.member(Role.viewer)
    outsider = (await factory.org(roles=(Role.owner,))).member(Role.owner)
    path = f"/orgs/{org.id}/uploads"

    up = await open_upload(client, lambda: analyst.headers, b"left", b"right", path=path)
    refused = await client.post(path, json=open_body(b"l", b"r"), headers=viewer.headers)
    not_member = await client.post(path, json=open_body(b"l", b"r"), headers=outsider.headers)
    user_on_device_route = await client.post(
        "/uploads", json=open_body(b"l", b"r"), headers=analyst.headers
    )
    anonymous = await client.post("/uploads", json=open_body(b"l", b"r"))

    assert refused.status_code == 403
    assert not_member.status_code == 404
    assert user_on_device_route.status_code == 403
    assert anonymous.status_code == 401
    assert (await client.get(f"/uploads/{up.id}", headers=viewer.headers)).status_code == 403
    assert (await client.get(f"/uploads/{up.id}", headers=outsider.headers)).status_code == 404
    await up.put_parts("left")
    await up.put_parts("right")
    done = await up.complete()
    assert done.status_code == 200, done.text
    workflows.append(done.json()["workflow_id"])


async def test_abort(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, temporal_client: Client
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(
        client, device_headers(device), os.urandom(6 * MiB), b"right", part_size=5 * MiB
    )
    await up.put_parts("left", [1])

    deleted = await client.delete(f"/uploads/{up.id}", headers=device.headers)

    assert deleted.status_code == 204
    assert (await client.delete(f"/uploads/{up.id}", headers=device.headers)).status_code == 204
    session = await up.get()
    assert session["status"] == "aborted"
    assert session["files"]["left"]["parts_done"] == []
    assert (await up.complete()).status_code == 409
    parts = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [2]}, headers=device.headers
    )
    assert parts.status_code == 409
    assert [info async for info in app.state.objects.list_prefix(f"orgs/{org.id}/uploads/")] == []
    assert os.listdir(Path(app.state.settings.data_dir) / "objects" / ".staging" / "uploads") == []
    async with app.state.sessions() as db:
        match = await db.get(Match, uuid.UUID(session["match_id"]))
    assert match is not None and match.status is MatchStatus.cancelled
    await assert_not_started(temporal_client, f"match-{session['match_id']}")


async def test_part_requests_are_checked(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(client, device_headers(device), b"left", b"right")

    out_of_range = await client.post(
        f"/uploads/{up.id}/parts",
        json={"file": "left", "numbers": [1, 2, 0]},
        headers=device.headers,
    )
    too_many = await client.post(
        f"/uploads/{up.id}/parts",
        json={"file": "left", "numbers": list(range(1, 102))},
        headers=device.headers,
    )
    unknown_file = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "middle", "numbers": [1]}, headers=device.headers
    )

    assert out_of_range.status_code == 422
    assert "outside 1..1: 0, 2" in out_of_range.json()["detail"]
    assert too_many.status_code == 422
    assert unknown_file.status_code == 422


async def test_temporal_down_keeps_the_session_completable(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    api_settings: Settings,
    workflows: list[str],
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(client, device_headers(device), b"left bytes", b"right bytes")
    await up.put_parts("left")
    await up.put_parts("right")
    # As if the API had started while Temporal was unreachable, and still is.
    connected = app.state.temporal
    app.state.temporal = None
    app.state.settings = api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    try:
        down = await up.complete()
    finally:
        app.state.settings = api_settings
        app.state.temporal = connected

    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    session = await up.get()
    assert session["status"] == "uploading"
    async with app.state.sessions() as db:
        upload = await db.get(Upload, uuid.UUID(up.id))
    # The failed attempt gave its claim back, so the retry below may complete.
    assert upload is not None and upload.status is UploadStatus.uploading
    # Both files were assembled and verified; the retry only starts the workflow.
    assert session["files"]["left"]["parts_done"] == [1]
    retried = await up.complete()
    assert retried.status_code == 200, retried.text
    workflows.append(retried.json()["workflow_id"])
    assert retried.json()["status"] == "completed"


async def test_openapi_documents_the_upload_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for path, method in [
        ("/uploads", "post"),
        ("/orgs/{org_id}/uploads", "post"),
        ("/uploads/{upload_id}", "get"),
        ("/uploads/{upload_id}/parts", "post"),
        ("/uploads/{upload_id}/complete", "post"),
        ("/uploads/{upload_id}", "delete"),
    ]:
        operation = paths[path][method]
        assert operation["summary"], path
        assert "404" in operation["responses"] or path == "/uploads", path
    schemas = document["components"]["schemas"]
    assert schemas["UploadOpen"]["examples"]
    assert schemas["PartsRequest"]["examples"]


# ---- completion is serialized --------------------------------------------------------------


async def set_status(app: FastAPI, upload_id: str, status: UploadStatus, since: datetime) -> None:
    """Put the session in `status` as a completion request would (claim time in completed_at)."""
    async with app.state.sessions() as db:
        upload = await db.get(Upload, uuid.UUID(upload_id))
        assert upload is not None
        upload.status = status
        upload.completed_at = since
        await db.commit()


def assert_in_progress(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == COMPLETION_IN_PROGRESS
    assert problem["title"] == "Completion in progress"
    assert problem["detail"] == "completion in progress; retry shortly"
    assert int(response.headers["retry-after"]) > 0


async def test_concurrent_completions_start_one_workflow_and_never_fail(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    temporal_client: Client,
    workflows: list[str],
) -> None:
    # As an edge agent whose read timed out retries while the first attempt still hashes.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(24 * MiB), os.urandom(17 * MiB)
    up = await open_upload(client, device_headers(device), left, right)
    await up.put_parts("left")
    await up.put_parts("right")

    answers = await asyncio.gather(*(up.complete() for _ in range(3)))

    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 409}, [answer.text for answer in answers]
    assert 200 in statuses
    for answer in answers:
        if answer.status_code == 409:
            assert_in_progress(answer)
    done = [answer.json() for answer in answers if answer.status_code == 200]
    workflow_id = done[0]["workflow_id"]
    workflows.append(workflow_id)
    assert {body["run_id"] for body in done} == {done[0]["run_id"]}
    # Whoever was turned away gets the same answer once the first one finished.
    again = await up.complete()
    assert again.status_code == 200 and again.json()["run_id"] == done[0]["run_id"]
    latest = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert latest.run_id == done[0]["run_id"]
    prefix = f"orgs/{org.id}/uploads/{up.id}/"
    assert await app.state.objects.get(f"{prefix}left.mp4") == left
    assert await app.state.objects.get(f"{prefix}right.mp4") == right
    async with app.state.sessions() as db:
        assets = (
            await db.exec(
                select(Asset).where(col(Asset.match_id) == uuid.UUID(done[0]["match_id"]))
            )
        ).all()
        upload = await db.get(Upload, uuid.UUID(up.id))
    assert sorted(asset.kind for asset in assets) == [
        AssetKind.recording_left,
        AssetKind.recording_right,
    ]
    assert upload is not None and upload.status is UploadStatus.completed


async def test_a_claimed_session_answers_in_progress_until_its_claim_goes_stale(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, workflows: list[str]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    up = await open_upload(
        client, device_headers(device), b"left bytes", b"right bytes", client_ref="spool-claimed"
    )
    await up.put_parts("left")
    await up.put_parts("right")
    # Another request claimed the session a moment ago and is assembling it.
    await set_status(app, up.id, UploadStatus.completing, datetime.now(UTC))

    assert_in_progress(await up.complete())
    assert_in_progress(await client.delete(f"/uploads/{up.id}", headers=device.headers))
    assert_in_progress(
        await client.post(
            f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1]}, headers=device.headers
        )
    )
    session = await up.get()
    # The protocol's statuses are unchanged: for the uploader the session is still open.
    assert session["status"] == "uploading"
    assert session["files"]["left"]["parts_done"] == [1]
    reopened = await client.post(
        "/uploads",
        json=open_body(b"left bytes", b"right bytes", client_ref="spool-claimed"),
        headers=device.headers,
    )
    assert reopened.status_code == 200
    assert reopened.json()["id"] == up.id and reopened.json()["status"] == "uploading"

    # The request holding the claim died (an API restart): after the lease it is taken over.
    await set_status(app, up.id, UploadStatus.completing, datetime.now(UTC) - timedelta(hours=2))
    done = await up.complete()
    assert done.status_code == 200, done.text
    workflows.append(done.json()["workflow_id"])
    assert done.json()["status"] == "completed"


# ---- a failed or aborted session does not block its pair -----------------------------------


async def test_a_failed_or_aborted_session_releases_its_client_ref(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, workflows: list[str]
) -> None:
    # The edge derives client_ref from the digests: after a corrupt transfer the same pair
    # comes back with the same client_ref and must get a fresh session.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(5000), os.urandom(5000)
    first = await open_upload(client, device_headers(device), left, right, client_ref="pair-1")
    first.data["right"] = os.urandom(5000)  # corrupted on the way
    await first.put_parts("left")
    await first.put_parts("right")
    assert (await first.complete()).status_code == 422

    second = await open_upload(client, device_headers(device), left, right, client_ref="pair-1")
    assert second.id != first.id and second.session["status"] == "created"
    assert second.session["match_id"] != first.session["match_id"]
    assert (await client.delete(f"/uploads/{second.id}", headers=device.headers)).status_code == 204
    third = await open_upload(client, device_headers(device), left, right, client_ref="pair-1")
    assert third.id not in (first.id, second.id)
    # An open session is found again as before.
    again = await client.post(
        "/uploads", json=open_body(left, right, client_ref="pair-1"), headers=device.headers
    )
    assert again.status_code == 200 and again.json()["id"] == third.id
    await third.put_parts("left")
    await third.put_parts("right")
    done = await third.complete()
    assert done.status_code == 200, done.text
    workflows.append(done.json()["workflow_id"])

    async with app.state.sessions() as db:
        closed = {
            str(upload.id): upload
            for upload in (
                await db.exec(select(Upload).where(col(Upload.organization_id) == org.id))
            ).all()
        }
    # The closed sessions stay, for the record, without the client_ref.
    assert (closed[first.id].status, closed[first.id].client_ref) == (UploadStatus.failed, None)
    assert closed[first.id].error is not None and "sha256" in closed[first.id].error
    assert (closed[second.id].status, closed[second.id].client_ref) == (UploadStatus.aborted, None)
    assert closed[third.id].client_ref == "pair-1"
    assert (await first.get())["status"] == "failed"


# ---- part size and the API's body limit (file backend) -------------------------------------


async def test_file_backend_part_size_fits_the_api_body_limit(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    api_settings: Settings,
    workflows: list[str],
) -> None:
    # Parts go through the API on the file backend: a part larger than the gateway's body
    # limit would be refused (413) on every PUT, so such a session is refused up front.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    limit = api_settings.max_part_bytes
    left = os.urandom(limit + 1)

    too_large = await client.post(
        "/uploads", json=open_body(left, b"r", part_size=limit + 1), headers=device.headers
    )
    assert too_large.status_code == 422
    assert f"part_size must be at most {limit} bytes" in too_large.json()["detail"]

    # A part of exactly the limit passes the gateway: the session completes.
    up = await open_upload(client, device_headers(device), left, b"right", part_size=limit)
    assert up.session["files"]["left"]["parts_total"] == 2
    await up.put_parts("left")
    await up.put_parts("right")
    done = await up.complete()
    assert done.status_code == 200, done.text
    workflows.append(done.json()["workflow_id"])

    # A deployment with a smaller limit gets the default clamped to it.
    app.state.settings = api_settings.model_copy(update={"max_part_bytes": 6 * MiB})
    try:
        clamped = await client.post(
            "/uploads", json=open_body(os.urandom(13 * MiB), b"r"), headers=device.headers
        )
        refused = await client.post(
            "/uploads",
            json=open_body(os.urandom(13 * MiB), b"r", part_size=7 * MiB),
            headers=device.headers,
        )
    finally:
        app.state.settings = api_settings
    assert clamped.status_code == 201, clamped.text
    assert clamped.json()["part_size"] == 6 * MiB
    assert clamped.json()["files"]["left"]["parts_total"] == 3
    assert refused.status_code == 422
