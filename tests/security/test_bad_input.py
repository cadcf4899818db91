"""Bad input through the upload API: each refused with a clear problem, nothing lost.

The recording-level cases (empty, truncated, wrong container, non-video, mismatched pair) are
the ingest stage's and are proven in `tests/ingest` (see RELIABILITY.md); missing and
out-of-order parts, parts of the wrong length and a right-sized file with the wrong content
are in `tests/api/test_uploads.py`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from api.ingest import service
from api.routes import objects as objects_route
from polyvision.storage.metadata.models import Role, Upload
from tests.api.factories import Factory
from tests.api.test_uploads import device_headers, open_body, open_upload


def _assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    for word in words:
        assert word in str(detail), detail


async def test_a_part_with_a_wrong_checksum_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(4000), os.urandom(4000)
    up = await open_upload(client, device_headers(device), left, right)
    urls = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1]}, headers=device.headers
    )
    [entry] = urls.json()["urls"]
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    right_sum = base64.b64encode(hashlib.sha256(left).digest()).decode()

    refused = await client.put(entry["url"], content=left, headers={"x-amz-checksum-sha256": wrong})
    malformed = await client.put(
        entry["url"], content=left, headers={"x-amz-checksum-sha256": "not base64!"}
    )

    _assert_problem(refused, 400, "x-amz-checksum-sha256", "nothing was stored")
    _assert_problem(malformed, 400, "x-amz-checksum-sha256")
    assert (await up.get())["files"]["left"]["parts_done"] == []
    stored = await client.put(
        entry["url"], content=left, headers={"x-amz-checksum-sha256": right_sum}
    )
    assert stored.status_code == 200, stored.text
    assert (await up.get())["files"]["left"]["parts_done"] == [1]


async def test_a_resume_after_the_part_urls_expired_asks_again_and_loses_nothing(
    client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left, right = os.urandom(3000), os.urandom(3000)
    up = await open_upload(client, device_headers(device), left, right)
    await up.put_parts("right")
    stale = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [1]}, headers=device.headers
    )
    [entry] = stale.json()["urls"]
    later = time.time() + service.PART_URL_LIFETIME.total_seconds() + 60
    monkeypatch.setattr(objects_route, "time", SimpleNamespace(time=lambda: later))

    expired = await client.put(entry["url"], content=left)

    assert expired.status_code == 403, expired.text
    assert expired.headers["content-type"] == "application/problem+json"
    session = await up.get()
    assert session["status"] == "uploading"
    assert session["files"]["right"]["parts_done"] == [1]  # the earlier part is kept
    monkeypatch.undo()
    await up.put_parts("left")
    assert (await up.get())["files"]["left"]["parts_done"] == [1]


async def test_a_part_sent_at_the_wrong_offset_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    left = os.urandom(5 * 1024 * 1024 + 100)
    up = await open_upload(
        client, device_headers(device), left, b"right", part_size=5 * 1024 * 1024
    )
    urls = await client.post(
        f"/uploads/{up.id}/parts", json={"file": "left", "numbers": [2]}, headers=device.headers
    )
    [entry] = urls.json()["urls"]
    # The resume restarted from a wrong offset: part 2 gets bytes from inside part 1.
    response = await client.put(entry["url"], content=left[50 : 50 + 5 * 1024 * 1024])

    _assert_problem(response, 413, "part 2", "nothing was stored")
    assert (await up.get())["files"]["left"]["parts_done"] == []


@pytest.mark.parametrize(
    "name",
    ["../../../etc/passwd", "..\\..\\evil.mp4", "a/../../b.mp4", "x.mp4/../../../y", "\x00.mp4"],
)
async def test_climbing_file_names_stay_inside_the_session(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, name: str
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    body = open_body(b"left", b"right")
    body["left"]["filename"] = name
    body["right"]["filename"] = name
    response = await client.post("/uploads", json=body, headers=device.headers)
    if response.status_code != 201:
        _assert_problem(response, 422)
        return
    async with app.state.sessions() as session:
        upload = await session.get(Upload, uuid.UUID(response.json()["id"]))
    assert upload is not None
    prefix = f"orgs/{org.id}/uploads/{upload.id}/"
    for key in (upload.left_key, upload.right_key):
        assert key is not None and key.startswith(prefix) and ".." not in key
        assert "/" not in key.removeprefix(prefix)


@pytest.mark.parametrize(
    ("size", "words"),
    [(2**60, ("too large",)), (0, ()), (-1, ())],
    ids=["exabyte", "empty", "negative"],
)
async def test_sizes_over_the_limit_or_empty_are_refused_before_anything_is_stored(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, size: int, words: tuple[str, ...]
) -> None:
    org = await factory.org(roles=(Role.owner,))
    device = await factory.device(org.id)
    body = open_body(b"left", b"right")
    body["left"]["size"] = size

    response = await client.post("/uploads", json=body, headers=device.headers)

    _assert_problem(response, 422, *words)
    assert [i async for i in app.state.objects.list_prefix(f"orgs/{org.id}/")] == []
