"""The upload protocol on S3 (moto's server over HTTP): part URLs point straight at S3."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.client import Client, WorkflowExecutionStatus

from polyvision.settings import Settings
from polyvision.storage.metadata.models import Role
from polyvision.storage.objects import S3ObjectStore
from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory
from tests.api.test_uploads import (
    assert_not_started,
    describe_started,
    device_headers,
    open_body,
    open_upload,
    sha,
    workflows,
)
from tests.fixtures.temporal import TemporalTestServer

MiB = 1024 * 1024

__all__ = ["workflows"]  # the fixture, shared with the file-backend suite


@pytest.fixture
def api_settings(
    tmp_path: Path, temporal_server: TemporalTestServer, s3_bucket_url: str
) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "pv",
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace.name,
        api_public_url="http://testserver",
        objects_url=s3_bucket_url,
        task_queue_suffix=f"-uploads-s3-{uuid.uuid4().hex[:8]}",
    )
    upgrade_stores(settings)
    return settings


@pytest_asyncio.fixture
async def s3_http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client: presigned part URLs go to the S3 server, not to the API."""
    async with httpx.AsyncClient() as http:
        yield http


async def test_happy_path_with_parts_straight_to_s3(
    app: FastAPI,
    client: httpx.AsyncClient,
    s3_http: httpx.AsyncClient,
    s3_endpoint: str,
    factory: Factory,
    temporal_client: Client,
    workflows: list[str],
) -> None:
    assert isinstance(app.state.objects, S3ObjectStore)
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(6 * MiB), os.urandom(100_000)
    up = await open_upload(
        client, device_headers(device), left, right, part_size=5 * MiB, http=s3_http
    )

    parts = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1, 2]}, headers=device.headers
    )
    assert parts.status_code == 200
    assert [entry["number"] for entry in parts.json()["urls"]] == [1, 2]
    for entry in parts.json()["urls"]:
        assert entry["url"].startswith(s3_endpoint)
        assert "X-Amz-Signature" in entry["url"] and entry["method"] == "PUT"
    await up.put_parts("left")
    await up.put_parts("right")
    response = await up.complete()

    assert response.status_code == 200, response.text
    done = response.json()
    workflows.append(done["workflow_id"])
    assert done["verified"] == {"left": sha(left), "right": sha(right)}
    key = f"orgs/{org.id}/uploads/{up.id}/left.mp4"
    assert await app.state.objects.get(key) == left
    assert (await app.state.objects.stat(key)).sha256 == sha(left)
    description, match_input = await describe_started(temporal_client, done["workflow_id"])
    assert description.status is WorkflowExecutionStatus.RUNNING
    assert match_input.left_key == key


async def test_resume_on_s3(
    client: httpx.AsyncClient,
    s3_http: httpx.AsyncClient,
    factory: Factory,
    workflows: list[str],
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(11 * MiB), os.urandom(1000)
    up = await open_upload(
        client, device_headers(device), left, right, part_size=5 * MiB, http=s3_http
    )

    await up.put_parts("left", [1])
    assert (await up.get())["files"]["left"]["parts_done"] == [1]
    missing = await up.complete()
    assert missing.status_code == 409 and "left 2, 3" in missing.json()["detail"]
    await up.put_parts("left", [2, 3])
    await up.put_parts("right")
    assert (await up.get())["files"]["left"]["parts_done"] == [1, 2, 3]

    response = await up.complete()
    assert response.status_code == 200, response.text
    workflows.append(response.json()["workflow_id"])
    assert response.json()["verified"]["left"] == sha(left)


async def test_wrong_sha256_is_found_by_reading_the_assembled_object(
    app: FastAPI,
    client: httpx.AsyncClient,
    s3_http: httpx.AsyncClient,
    factory: Factory,
    temporal_client: Client,
) -> None:
    # S3 assembles whatever parts it was given; the API's own read finds the mismatch.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(4000), os.urandom(4000)
    up = await open_upload(client, device_headers(device), left, right, http=s3_http)
    up.data["left"] = os.urandom(4000)
    await up.put_parts("left")
    await up.put_parts("right")

    failed = await up.complete()

    assert failed.status_code == 422
    assert failed.json()["detail"].startswith(f"left: sha256 differs: declared {sha(left)}")
    assert (await up.get())["status"] == "failed"
    assert not await app.state.objects.exists(f"orgs/{org.id}/uploads/{up.id}/left.mp4")
    # Nothing of the failed session stays in the bucket, its rig included.
    prefix = f"orgs/{org.id}/uploads/{up.id}/"
    assert [info async for info in app.state.objects.list_prefix(prefix)] == []
    await assert_not_started(temporal_client, f"match-{up.session['match_id']}")


async def test_s3_part_size_is_not_capped_by_the_api_body_limit(
    client: httpx.AsyncClient, factory: Factory, api_settings: Settings
) -> None:
    # Parts go straight to S3, never through the API's gateway: S3's own limits apply.
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    part_size = api_settings.max_part_bytes + MiB
    body = open_body(b"left", b"right", part_size=part_size)

    opened = await client.post("/uploads", json=body, headers=device.headers)

    assert opened.status_code == 201, opened.text
    assert opened.json()["part_size"] == part_size
