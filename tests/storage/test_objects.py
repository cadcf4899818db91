"""The object store: one suite, run against the file backend and against S3 (moto over HTTP)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aioboto3
import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi import FastAPI
from pydantic import SecretStr

from api.routes.objects import router as objects_router
from polyvision.settings import Settings
from polyvision.storage.objects import (
    MIN_PART_SIZE,
    ChecksumMismatch,
    FileObjectStore,
    InvalidObjectKey,
    InvalidPart,
    InvalidSignature,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PartInfo,
    S3ObjectStore,
    UploadNotFound,
    object_signature,
    open_object_store,
    parse_object_store_url,
    sign_object_url,
    sign_part_url,
    validate_key,
    validate_prefix,
    verify_object_signature,
)
from polyvision.storage.objects import s3 as s3_backend

if TYPE_CHECKING:
    from chaos.s3_faults import FaultyS3Endpoint

SECRET = b"test-object-url-secret-0123456789"
PUBLIC_BASE_URL = "http://api.test"
MiB = 1024 * 1024

BAD_KEYS = [
    "",
    "/etc/passwd",
    "a//b",
    "a/",
    "..",
    "../escape",
    "a/../../escape",
    "a/./b",
    ".staging/tmp/x",
    "a/.hidden",
    "a\\b",
    "a\x00b",
    "a\nb",
    "k" * 1025,
]
GOOD_KEYS = ["a", "orgs/1/matches/2/r1/stitch/chunk-00001.mp4", "ünï code/clé (1).json"]


# ---- helpers -------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pseudo_random_chunks(total: int, chunk: int, seed: int = 7) -> Iterator[bytes]:
    """`total` bytes of reproducible data, generated lazily in `chunk`-sized pieces."""
    rng = random.Random(seed)
    for start in range(0, total, chunk):
        yield rng.randbytes(min(chunk, total - start))


async def aiter_of(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def files_outside(directory: Path, root: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p != root and not p.is_relative_to(root)]


def s3_bucket_and_endpoint(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parse_qs(parts.query)["endpoint_url"][0]


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "objects").as_uri()
    url: str = request.getfixturevalue("s3_bucket_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[ObjectStore]:
    async with open_object_store(
        store_url, secret=SECRET, public_base_url=PUBLIC_BASE_URL
    ) as opened:
        yield opened


def objects_app(store: ObjectStore) -> FastAPI:
    app = FastAPI()
    app.include_router(objects_router)
    app.state.objects = store
    app.state.settings = Settings(secret_key=SecretStr(SECRET.decode()))
    return app


@pytest.fixture
async def http(store: ObjectStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client that reaches the store's presigned URLs: the objects router, or S3 itself."""
    if isinstance(store, FileObjectStore):
        transport = httpx.ASGITransport(app=objects_app(store))
        async with httpx.AsyncClient(transport=transport) as client:
            yield client
    else:
        async with httpx.AsyncClient() as client:
            yield client


@pytest.fixture
async def file_store(tmp_path: Path) -> AsyncIterator[FileObjectStore]:
    async with FileObjectStore(
        tmp_path / "objects", secret=SECRET, public_base_url=PUBLIC_BASE_URL
    ) as opened:
        yield opened


@pytest.fixture
async def file_http(file_store: FileObjectStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=objects_app(file_store))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
        yield client


async def raw_s3_call(store_url: str, operation: str, **kwargs: Any) -> Any:
    """Call S3 directly (behind the store's back) on the store's bucket."""
    bucket, endpoint = s3_bucket_and_endpoint(store_url)
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1"
    ) as s3:
        return await getattr(s3, operation)(Bucket=bucket, **kwargs)


# ---- single objects ------------------------------------------------------------------------


async def test_put_get_stat_roundtrip(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    data = b'{"frames": 1500}'
    put = await store.put("orgs/1/manifest.json", data, content_type="application/json")
    stat = await store.stat("orgs/1/manifest.json")

    assert await store.get("orgs/1/manifest.json") == data
    assert put.sha256 == stat.sha256 == sha(data)
    assert put.size == stat.size == len(data)
    assert put.content_type == stat.content_type == "application/json"
    assert stat.key == "orgs/1/manifest.json"
    assert stat.modified.tzinfo is not None
    assert before <= stat.modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert await store.exists("orgs/1/manifest.json")


async def test_content_type_is_guessed_from_the_key(store: ObjectStore) -> None:
    await store.put("a/clip.mp4", b"x")
    await store.put("a/blob.unknownext", b"x")
    assert (await store.stat("a/clip.mp4")).content_type == "video/mp4"
    assert (await store.stat("a/blob.unknownext")).content_type == "application/octet-stream"


async def test_put_replaces_the_object(store: ObjectStore) -> None:
    await store.put("k", b"first version")
    await store.put("k", b"second")
    assert await store.get("k") == b"second"
    assert (await store.stat("k")).sha256 == sha(b"second")


async def test_put_with_wrong_sha256_stores_nothing(store: ObjectStore) -> None:
    with pytest.raises(ChecksumMismatch):
        await store.put("k", b"data", sha256=sha(b"other"))
    assert not await store.exists("k")
    await store.put("k", b"data", sha256=sha(b"data").upper())
    assert await store.get("k") == b"data"


async def test_missing_object_raises_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get("no/such/key")
    with pytest.raises(ObjectNotFound):
        await store.stat("no/such/key")
    with pytest.raises(ObjectNotFound):
        await store.open_read("no/such/key")
    with pytest.raises(ObjectNotFound):
        async for _ in store.read_stream("no/such/key"):
            pass
    with pytest.raises(ObjectNotFound):
        await store.download_file("no/such/key", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not await store.exists("no/such/key")
    assert issubclass(ObjectNotFound, LookupError)


async def test_a_prefix_is_not_an_object(store: ObjectStore) -> None:
    await store.put("dir/child", b"x")
    with pytest.raises(ObjectNotFound):
        await store.stat("dir")


# ---- streaming -----------------------------------------------------------------------------


async def test_large_object_is_streamed_in_chunks(
    store: ObjectStore, store_url: str, tmp_path: Path
) -> None:
    total = 12 * MiB
    expected = hashlib.sha256()
    for chunk in pseudo_random_chunks(total, 256 * 1024):
        expected.update(chunk)

    tracemalloc.start()
    try:
        info = await store.put_stream(
            "match/left.mp4",
            aiter_of(pseudo_random_chunks(total, 256 * 1024)),
            part_size=MIN_PART_SIZE,
        )
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        sizes: list[int] = []
        streamed = hashlib.sha256()
        async for chunk in store.read_stream("match/left.mp4", chunk_size=MiB):
            sizes.append(len(chunk))
            streamed.update(chunk)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert info.size == total
    assert info.sha256 == (await store.stat("match/left.mp4")).sha256 == expected.hexdigest()
    assert streamed.hexdigest() == expected.hexdigest()
    assert sum(sizes) == total
    assert len(sizes) >= 12
    assert max(sizes) <= MiB
    if isinstance(store, FileObjectStore):
        # Nothing else in the process allocates much here, so the peaks measure the store:
        # well under the 12 MiB object.
        assert write_peak < 4 * MiB
        assert read_peak < 4 * MiB
    else:
        # moto (same process) keeps the object in memory, so prove the multipart path
        # instead: a multipart ETag ends in "-<number of parts>" (5 + 5 + 2 MiB).
        head = await raw_s3_call(store_url, "head_object", Key="match/left.mp4")
        assert head["ETag"].strip('"').endswith("-3")

    downloaded = tmp_path / "downloads" / "left.mp4"
    downloaded.parent.mkdir()
    got = await store.download_file("match/left.mp4", downloaded, chunk_size=MiB)
    assert got.sha256 == expected.hexdigest()
    assert sha(downloaded.read_bytes()) == expected.hexdigest()
    assert names_in(downloaded.parent) == ["left.mp4"]

    uploaded = await store.upload_file("match/copy.mp4", downloaded, part_size=MIN_PART_SIZE)
    assert uploaded.sha256 == (await store.stat("match/copy.mp4")).sha256 == expected.hexdigest()
    assert uploaded.content_type == "video/mp4"


async def test_small_stream_and_empty_stream(store: ObjectStore) -> None:
    info = await store.put_stream("s/small", aiter_of([b"ab", b"", b"cd"]))
    empty = await store.put_stream("s/empty", aiter_of([]))
    assert (info.size, info.sha256) == (4, sha(b"abcd"))
    assert await store.get("s/small") == b"abcd"
    assert (empty.size, empty.sha256) == (0, sha(b""))
    assert await store.get("s/empty") == b""


async def test_object_appears_only_when_the_stream_completes(store: ObjectStore) -> None:
    seen_during_upload: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in pseudo_random_chunks(6 * MiB, MiB):
            yield chunk
            seen_during_upload.append(await store.exists("s/atomic"))

    await store.put_stream("s/atomic", chunks(), part_size=MIN_PART_SIZE)
    assert seen_during_upload == [False] * 6
    assert (await store.stat("s/atomic")).size == 6 * MiB


async def test_failed_stream_keeps_the_previous_object(
    store: ObjectStore, store_url: str, file_store: FileObjectStore
) -> None:
    await store.put("s/k", b"previous")

    async def broken() -> AsyncIterator[bytes]:
        yield from_chunk
        raise RuntimeError("camera unplugged")

    from_chunk = b"x" * (6 * MiB)  # more than a part: S3 has started a multipart upload
    with pytest.raises(RuntimeError, match="camera unplugged"):
        await store.put_stream("s/k", broken(), part_size=MIN_PART_SIZE)
    with pytest.raises(ChecksumMismatch):
        await store.put_stream(
            "s/k", aiter_of([from_chunk, b"tail"]), sha256=sha(b"else"), part_size=MIN_PART_SIZE
        )

    assert await store.get("s/k") == b"previous"
    if isinstance(store, S3ObjectStore):
        uploads = await raw_s3_call(store_url, "list_multipart_uploads")
        assert uploads.get("Uploads", []) == []
    else:
        assert isinstance(store, FileObjectStore)
        assert names_in(store.root / ".staging" / "tmp") == []


async def test_download_refuses_content_that_does_not_match_the_recorded_sha256(
    s3_bucket_url: str, tmp_path: Path
) -> None:
    store = open_object_store(s3_bucket_url, secret=SECRET, public_base_url=PUBLIC_BASE_URL)
    async with store:
        await raw_s3_call(
            s3_bucket_url, "put_object", Key="k", Body=b"corrupt", Metadata={"sha256": sha(b"x")}
        )
        with pytest.raises(ChecksumMismatch):
            await store.download_file("k", tmp_path / "k")
    assert names_in(tmp_path) == []


async def test_file_backend_ignores_a_stale_sidecar(file_store: FileObjectStore) -> None:
    await file_store.put("k", b"original")
    # Rewritten behind the store's back (or by a crash between object and sidecar): the
    # recorded sha256 no longer describes the file, so none is reported rather than a wrong one.
    (file_store.root / "k").write_bytes(b"changed!!")
    info = await file_store.stat("k")
    assert (info.size, info.sha256) == (9, None)


# ---- listing and deleting ------------------------------------------------------------------


async def test_list_prefix(store: ObjectStore) -> None:
    for key in ["m1/a", "m1/b/c", "m10/a", "m2/x", "top"]:
        await store.put(key, key.encode())

    async def keys(prefix: str) -> list[str]:
        return [info.key async for info in store.list_prefix(prefix)]

    assert await keys("m1/") == ["m1/a", "m1/b/c"]
    assert await keys("m1") == ["m1/a", "m1/b/c", "m10/a"]
    assert await keys("m1/b") == ["m1/b/c"]
    assert await keys("") == ["m1/a", "m1/b/c", "m10/a", "m2/x", "top"]
    assert await keys("nothing/") == []
    listed = [info async for info in store.list_prefix("m2/")]
    assert [(info.key, info.size) for info in listed] == [("m2/x", 4)]
    assert listed[0].modified.tzinfo is not None


async def test_delete_and_delete_prefix_are_isolated(store: ObjectStore) -> None:
    for key in ["m1/a", "m1/b/c", "m10/a", "m2/x"]:
        await store.put(key, b"x")

    assert await store.delete_prefix("m1/") == 2
    assert [info.key async for info in store.list_prefix("")] == ["m10/a", "m2/x"]
    assert await store.delete_prefix("m1/") == 0

    await store.delete("m2/x")
    await store.delete("m2/x")  # deleting a missing object is fine, as on S3
    assert not await store.exists("m2/x")
    assert await store.exists("m10/a")

    with pytest.raises(InvalidObjectKey):
        await store.delete_prefix("")
    assert await store.exists("m10/a")


# ---- multipart -----------------------------------------------------------------------------


async def test_multipart_upload_with_checksums(store: ObjectStore) -> None:
    first, second = b"a" * MIN_PART_SIZE, b"the end"
    whole = first + second
    upload_id = await store.create_multipart(
        "up/rec.mp4", content_type="video/mp4", sha256=sha(whole)
    )
    part2 = await store.upload_part("up/rec.mp4", upload_id, 2, second, sha256=sha(second))
    part1 = await store.upload_part("up/rec.mp4", upload_id, 1, first, sha256=sha(first))
    assert not await store.exists("up/rec.mp4")

    info = await store.complete_multipart("up/rec.mp4", upload_id, [part1, part2])

    assert (part1.number, part1.size, part1.sha256) == (1, MIN_PART_SIZE, sha(first))
    assert (part2.number, part2.size, part2.sha256) == (2, len(second), sha(second))
    assert info.size == len(whole)
    assert info.sha256 == (await store.stat("up/rec.mp4")).sha256 == sha(whole)
    assert info.content_type == "video/mp4"
    assert await store.get("up/rec.mp4") == whole


async def test_multipart_part_with_wrong_checksum_is_refused_then_aborted(
    store: ObjectStore, store_url: str
) -> None:
    upload_id = await store.create_multipart("up/x")
    with pytest.raises(ChecksumMismatch):
        await store.upload_part("up/x", upload_id, 1, b"data", sha256=sha(b"other"))
    part = await store.upload_part("up/x", upload_id, 1, b"data")

    await store.abort_multipart("up/x", upload_id)
    await store.abort_multipart("up/x", upload_id)  # aborting twice is harmless

    if isinstance(store, S3ObjectStore):
        # moto answers a part for an unknown upload with a 500, not NoSuchUpload, so look at
        # the bucket instead (the NoSuchUpload mapping is tested on its own below).
        uploads = await raw_s3_call(store_url, "list_multipart_uploads")
        assert uploads.get("Uploads", []) == []
    else:
        with pytest.raises(UploadNotFound):
            await store.upload_part("up/x", upload_id, 2, b"more")
        with pytest.raises(UploadNotFound):
            await store.complete_multipart("up/x", upload_id, [part])
    assert not await store.exists("up/x")


async def test_multipart_refuses_invalid_part_lists(store: ObjectStore) -> None:
    big, small = b"b" * MIN_PART_SIZE, b"s"
    upload_id = await store.create_multipart("up/y")
    p1 = await store.upload_part("up/y", upload_id, 1, small)
    p2 = await store.upload_part("up/y", upload_id, 2, big)

    with pytest.raises(InvalidPart):
        await store.complete_multipart("up/y", upload_id, [])
    with pytest.raises(InvalidPart):
        await store.complete_multipart("up/y", upload_id, [p2, p1])  # out of order
    with pytest.raises(InvalidPart):
        await store.complete_multipart("up/y", upload_id, [p1, p2])  # first part too small
    with pytest.raises(InvalidPart):
        await store.upload_part("up/y", upload_id, 0, small)
    with pytest.raises(InvalidPart):
        await store.upload_part("up/y", upload_id, 10_001, small)
    assert not await store.exists("up/y")

    # The upload survives refused completions and can still succeed.
    p1 = await store.upload_part("up/y", upload_id, 1, big)
    p2 = await store.upload_part("up/y", upload_id, 2, small)
    info = await store.complete_multipart("up/y", upload_id, [p1, p2])
    assert info.size == MIN_PART_SIZE + 1


async def test_presigned_parts_over_http_then_list_and_complete(
    store: ObjectStore, http: httpx.AsyncClient
) -> None:
    first = b"".join(pseudo_random_chunks(MIN_PART_SIZE, 256 * 1024))
    second = b"the last, shorter part"
    whole = first + second
    upload_id = await store.create_multipart("up/cam.mp4", sha256=sha(whole), checksum_parts=False)
    assert await store.list_parts("up/cam.mp4", upload_id) == []

    second_put = await http.put(
        await store.presign_part("up/cam.mp4", upload_id, 2), content=second
    )
    assert second_put.status_code == 200, second_put.text
    assert second_put.headers["etag"]
    assert [p.number for p in await store.list_parts("up/cam.mp4", upload_id)] == [2]

    first_put = await http.put(
        await store.presign_part("up/cam.mp4", upload_id, 1, expires_in=60),
        content=aiter_of([first[:MiB], first[MiB:]]),
    )
    assert first_put.status_code == 200, first_put.text
    parts = await store.list_parts("up/cam.mp4", upload_id)
    assert [(p.number, p.size) for p in parts] == [(1, len(first)), (2, len(second))]
    assert parts[0].etag.strip('"') == first_put.headers["etag"].strip('"')
    if isinstance(store, FileObjectStore):
        # The objects router hashes every part it stores.
        assert [p.sha256 for p in parts] == [sha(first), sha(second)]

    info = await store.complete_multipart("up/cam.mp4", upload_id, parts)

    assert info.size == len(whole)
    assert info.sha256 == sha(whole)
    assert await store.get("up/cam.mp4") == whole
    with pytest.raises(UploadNotFound):
        await store.list_parts("up/cam.mp4", upload_id)


async def test_list_parts_of_an_unknown_or_aborted_upload(store: ObjectStore) -> None:
    upload_id = await store.create_multipart("up/gone")
    await store.upload_part("up/gone", upload_id, 1, b"x")
    assert [p.number for p in await store.list_parts("up/gone", upload_id)] == [1]
    await store.abort_multipart("up/gone", upload_id)
    with pytest.raises(UploadNotFound):
        await store.list_parts("up/gone", upload_id)


async def test_presign_part_refuses_bad_arguments(store: ObjectStore) -> None:
    upload_id = await store.create_multipart("up/args")
    with pytest.raises(InvalidPart):
        await store.presign_part("up/args", upload_id, 0)
    with pytest.raises(ValueError):
        await store.presign_part("up/args", upload_id, 1, expires_in=0)
    with pytest.raises(InvalidObjectKey):
        await store.presign_part("../args", upload_id, 1)


async def test_router_refuses_tampered_and_expired_part_urls(
    file_store: FileObjectStore, file_http: httpx.AsyncClient
) -> None:
    upload_id = await file_store.create_multipart("up/p.mp4")
    other_upload = await file_store.create_multipart("up/p.mp4")
    future = int(time.time()) + 60
    valid = sign_part_url(PUBLIC_BASE_URL, SECRET, "up/p.mp4", upload_id, 1, future)
    sig = parse_qs(urlsplit(valid).query)["sig"][0]
    object_url = sign_object_url(PUBLIC_BASE_URL, SECRET, "up/p.mp4", "PUT", future)
    refused = {
        "expired": sign_part_url(PUBLIC_BASE_URL, SECRET, "up/p.mp4", upload_id, 1, future - 120),
        "longer expiry": valid.replace(f"expires={future}", f"expires={future + 3600}"),
        "other part number": valid.replace("partNumber=1", "partNumber=2"),
        "other upload": valid.replace(upload_id, other_upload),
        "flipped sig": valid.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        "wrong secret": sign_part_url(PUBLIC_BASE_URL, b"nope", "up/p.mp4", upload_id, 1, future),
        "object url as part": f"{object_url}&uploadId={upload_id}&partNumber=1",
        "no sig": f"/objects/up/p.mp4?uploadId={upload_id}&partNumber=1&expires={future}",
        "no part number": valid.replace("&partNumber=1", ""),
    }

    for reason, url in refused.items():
        response = await file_http.put(url, content=b"forged part")
        assert response.status_code == 403, reason
        assert response.headers["content-type"] == "application/problem+json", reason
        assert response.json()["status"] == 403, reason
    assert "expired" in (await file_http.put(refused["expired"], content=b"x")).json()["detail"]
    assert await file_store.list_parts("up/p.mp4", upload_id) == []
    assert await file_store.list_parts("up/p.mp4", other_upload) == []

    stored = await file_http.put(valid, content=b"real part")
    assert stored.status_code == 200
    assert stored.headers["etag"] == f'"{sha(b"real part")}"'
    aborted = await file_store.create_multipart("up/p.mp4")
    await file_store.abort_multipart("up/p.mp4", aborted)
    gone = sign_part_url(PUBLIC_BASE_URL, SECRET, "up/p.mp4", aborted, 1, future)
    assert (await file_http.put(gone, content=b"late")).status_code == 404


async def test_file_list_parts_skips_a_part_without_its_record(file_store: FileObjectStore) -> None:
    upload_id = await file_store.create_multipart("up/r")
    await file_store.upload_part("up/r", upload_id, 1, b"one")
    await file_store.upload_part("up/r", upload_id, 2, b"two")
    # As after a crash between renaming the part and writing its record.
    (file_store.root / ".staging" / "uploads" / upload_id / "part-00002.json").unlink()
    assert [p.number for p in await file_store.list_parts("up/r", upload_id)] == [1]


async def test_file_multipart_unknown_or_foreign_upload_id(file_store: FileObjectStore) -> None:
    upload_id = await file_store.create_multipart("up/mine")
    for key, bad_id in [
        ("up/z", "0" * 32),
        ("up/z", "../../../etc"),
        ("up/z", upload_id),  # an upload for another key
    ]:
        with pytest.raises(UploadNotFound):
            await file_store.upload_part(key, bad_id, 1, b"x")
        with pytest.raises(UploadNotFound):
            await file_store.complete_multipart(key, bad_id, [])
        await file_store.abort_multipart(key, bad_id)
    assert await file_store.upload_part("up/mine", upload_id, 1, b"x")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("NoSuchKey", ObjectNotFound),
        ("404", ObjectNotFound),
        ("NoSuchUpload", UploadNotFound),
        ("InvalidPart", InvalidPart),
        ("InvalidPartOrder", InvalidPart),
        ("EntityTooSmall", InvalidPart),
        ("BadDigest", ChecksumMismatch),
        ("AccessDenied", ObjectStoreError),
    ],
)
def test_s3_errors_become_store_errors(code: str, error: type[Exception]) -> None:
    client_error = ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")
    with pytest.raises(error) as raised, s3_backend._translate("k", "upload"):
        raise client_error
    assert raised.value.__cause__ is client_error


async def test_file_multipart_refuses_a_part_whose_etag_does_not_match(
    file_store: FileObjectStore,
) -> None:
    upload_id = await file_store.create_multipart("up/e")
    part = await file_store.upload_part("up/e", upload_id, 1, b"data")
    forged = PartInfo(number=1, etag=sha(b"other"), size=4, sha256=sha(b"other"))
    with pytest.raises(InvalidPart):
        await file_store.complete_multipart("up/e", upload_id, [forged])
    assert (await file_store.complete_multipart("up/e", upload_id, [part])).sha256 == sha(b"data")
    assert names_in(file_store.root / ".staging" / "uploads") == []


async def test_file_multipart_verifies_the_declared_sha256(file_store: FileObjectStore) -> None:
    upload_id = await file_store.create_multipart("up/d", sha256=sha(b"declared"))
    part = await file_store.upload_part("up/d", upload_id, 1, b"actual")
    with pytest.raises(ChecksumMismatch):
        await file_store.complete_multipart("up/d", upload_id, [part])
    assert not await file_store.exists("up/d")


# ---- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
async def test_invalid_keys_are_refused_everywhere(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidObjectKey):
        await store.put_stream(key, aiter_of([b"x"]))
    with pytest.raises(InvalidObjectKey):
        await store.get(key)
    with pytest.raises(InvalidObjectKey):
        await store.stat(key)
    with pytest.raises(InvalidObjectKey):
        await store.delete(key)
    with pytest.raises(InvalidObjectKey):
        await store.create_multipart(key)
    with pytest.raises(InvalidObjectKey):
        await store.presign_get(key)
    with pytest.raises(InvalidObjectKey):
        await store.presign_put(key)
    assert issubclass(InvalidObjectKey, ValueError)


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a//", ".staging/", "a\\b"])
async def test_invalid_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidObjectKey):
        [info async for info in store.list_prefix(prefix)]
    with pytest.raises(InvalidObjectKey):
        await store.delete_prefix(prefix)


@pytest.mark.parametrize("key", GOOD_KEYS)
async def test_valid_keys_round_trip(store: ObjectStore, key: str) -> None:
    assert validate_key(key) == key
    await store.put(key, key.encode())
    assert await store.get(key) == key.encode()
    assert [info.key async for info in store.list_prefix(key)] == [key]


def test_validate_prefix_accepts_partial_names() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("orgs/1/") == "orgs/1/"
    assert validate_prefix("orgs/1/chunk-0") == "orgs/1/chunk-0"


async def test_file_store_never_writes_outside_its_root(
    file_store: FileObjectStore, tmp_path: Path
) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidObjectKey):
            await file_store.put(key, b"x")
    assert files_outside(tmp_path, file_store.root) == []


# ---- presigned URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["clips/goal.mp4", "ünï code/clé (1).json"])
async def test_presigned_get_over_http(
    store: ObjectStore, http: httpx.AsyncClient, key: str
) -> None:
    data = b"presigned content"
    await store.put(key, data, content_type="video/mp4")
    url = await store.presign_get(key, expires_in=60)

    response = await http.get(url)

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp4"


async def test_presigned_put_over_http(store: ObjectStore, http: httpx.AsyncClient) -> None:
    data = os.urandom(100_000)
    url = await store.presign_put("uploads/part.bin", expires_in=60, content_type="video/mp4")

    response = await http.put(url, content=data, headers={"Content-Type": "video/mp4"})

    assert response.status_code == 200, response.text
    info = await store.stat("uploads/part.bin")
    assert await store.get("uploads/part.bin") == data
    assert info.size == len(data)
    assert info.content_type == "video/mp4"
    # The objects router hashes what it stores; a plain presigned PUT to S3 records no sha256.
    assert info.sha256 == (sha(data) if isinstance(store, FileObjectStore) else None)


async def test_presigned_url_carries_its_expiry(store: ObjectStore) -> None:
    now = time.time()
    for url in [
        await store.presign_get("k", expires_in=120),
        await store.presign_put("k", expires_in=120),
    ]:
        query = parse_qs(urlsplit(url).query)
        if isinstance(store, FileObjectStore):
            assert now + 119 <= int(query["expires"][0]) <= now + 122
            assert url.startswith(f"{PUBLIC_BASE_URL}/objects/k?")
        else:
            assert query["X-Amz-Expires"] == ["120"]
            assert "X-Amz-Signature" in query
    with pytest.raises(ValueError):
        await store.presign_get("k", expires_in=0)


async def test_router_refuses_expired_and_tampered_signatures(
    file_store: FileObjectStore, file_http: httpx.AsyncClient
) -> None:
    await file_store.put("clips/a.mp4", b"secret video")
    past = int(time.time()) - 1
    future = int(time.time()) + 60
    expired = sign_object_url(PUBLIC_BASE_URL, SECRET, "clips/a.mp4", "GET", past)
    valid = sign_object_url(PUBLIC_BASE_URL, SECRET, "clips/a.mp4", "GET", future)
    other_key = sign_object_url(PUBLIC_BASE_URL, SECRET, "clips/b.mp4", "GET", future)
    wrong_secret = sign_object_url(PUBLIC_BASE_URL, b"not-the-secret", "clips/a.mp4", "GET", future)
    sig = parse_qs(urlsplit(valid).query)["sig"][0]
    refused = {
        "expired": expired,
        "longer expiry": valid.replace(f"expires={future}", f"expires={future + 3600}"),
        "flipped sig": valid.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        "other key's sig": f"/objects/clips/a.mp4?{urlsplit(other_key).query}",
        "wrong secret": wrong_secret,
        "no sig": f"/objects/clips/a.mp4?method=GET&expires={future}",
        "no params": "/objects/clips/a.mp4",
        "bad expires": f"/objects/clips/a.mp4?method=GET&expires=soon&sig={sig}",
    }

    for reason, url in refused.items():
        response = await file_http.get(url)
        assert response.status_code == 403, reason
        assert response.headers["content-type"] == "application/problem+json", reason
        body = response.json()
        assert body["status"] == 403 and body["title"] == "Forbidden", reason
        assert body["type"] and body["detail"], reason
    assert "expired" in (await file_http.get(expired)).json()["detail"]
    assert (await file_http.get(valid)).content == b"secret video"


async def test_router_refuses_a_get_url_used_for_put(
    file_store: FileObjectStore, file_http: httpx.AsyncClient
) -> None:
    await file_store.put("k", b"original")
    get_url = await file_store.presign_get("k")
    as_put = get_url.replace("method=GET", "method=PUT")

    assert (await file_http.put(get_url, content=b"overwrite")).status_code == 403
    assert (await file_http.put(as_put, content=b"overwrite")).status_code == 403
    assert await file_store.get("k") == b"original"


async def test_router_missing_object_is_a_404_problem(
    file_store: FileObjectStore, file_http: httpx.AsyncClient
) -> None:
    response = await file_http.get(await file_store.presign_get("no/such.mp4"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_router_streams_large_objects_and_checks_upload_checksums(
    file_store: FileObjectStore, file_http: httpx.AsyncClient
) -> None:
    data = b"".join(pseudo_random_chunks(3 * MiB + 5, 64 * 1024))
    put_url = await file_store.presign_put("big.mp4")
    good = {"x-amz-checksum-sha256": base64_sha256(data)}
    bad = {"x-amz-checksum-sha256": base64_sha256(b"other")}

    refused = await file_http.put(put_url, content=aiter_of([data[:MiB], data[MiB:]]), headers=bad)
    malformed = await file_http.put(put_url, content=data, headers={"x-amz-checksum-sha256": "!"})
    stored = await file_http.put(put_url, content=aiter_of([data[:MiB], data[MiB:]]), headers=good)
    fetched = await file_http.get(await file_store.presign_get("big.mp4"))

    assert refused.status_code == 400 and malformed.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert stored.status_code == 200
    assert json.loads(stored.content)["sha256"] == sha(data)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["content-length"] == str(len(data))
    assert fetched.headers["etag"] == f'"{sha(data)}"'
    assert fetched.headers["repr-digest"] == f"sha-256=:{base64_sha256(data)}:"


def base64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---- signing (pure functions) --------------------------------------------------------------


def test_signature_verification() -> None:
    sig = object_signature(SECRET, "a/b.mp4", "GET", 1_000)

    verify_object_signature(SECRET, "a/b.mp4", "GET", 1_000, sig, now=999.0)
    verify_object_signature(SECRET, "a/b.mp4", "get", 1_000, sig, now=1_000.0)
    refusals = [
        (SECRET, "a/b.mp4", "GET", 1_000, sig, 1_000.5),  # expired
        (SECRET, "a/b.mp4", "PUT", 1_000, sig, 0.0),  # other method
        (SECRET, "a/c.mp4", "GET", 1_000, sig, 0.0),  # other key
        (SECRET, "a/b.mp4", "GET", 2_000, sig, 0.0),  # extended expiry
        (b"other secret", "a/b.mp4", "GET", 1_000, sig, 0.0),
        (SECRET, "a/b.mp4", "GET", 1_000, sig.upper(), 0.0),
        (SECRET, "a/b.mp4", "GET", 1_000, "", 0.0),
        (SECRET, "a/b.mp4", "GET", 1_000, "ünïcode", 0.0),
    ]
    for args in refusals:
        with pytest.raises(InvalidSignature):
            verify_object_signature(*args)


def test_sign_object_url_format() -> None:
    url = sign_object_url("https://api.example/", SECRET, "a b/ü.mp4", "get", 1_700_000_000)
    parts = urlsplit(url)
    query = parse_qs(parts.query)

    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://api.example/objects/a%20b/%C3%BC.mp4"
    )
    assert query["method"] == ["GET"]
    assert query["expires"] == ["1700000000"]
    assert query["sig"] == [object_signature(SECRET, "a b/ü.mp4", "GET", 1_700_000_000)]
    with pytest.raises(InvalidObjectKey):
        sign_object_url("https://api.example", SECRET, "../x", "GET", 1)
    with pytest.raises(ValueError, match="GET or PUT"):
        sign_object_url("https://api.example", SECRET, "x", "DELETE", 1)


# ---- factory and lifecycle -----------------------------------------------------------------


async def test_open_object_store_picks_the_backend(tmp_path: Path) -> None:
    file_store = open_object_store(
        f"file://{tmp_path}/o%20bjects", secret=SECRET, public_base_url=PUBLIC_BASE_URL
    )
    custom = open_object_store(
        "s3://bucket?endpoint_url=http://127.0.0.1:9000&region=eu-west-1",
        secret=SECRET,
        public_base_url=PUBLIC_BASE_URL,
    )
    aws = open_object_store("s3://bucket", secret=SECRET, public_base_url=PUBLIC_BASE_URL)

    assert isinstance(file_store, FileObjectStore)
    assert file_store.root == tmp_path / "o bjects"
    assert file_store.root.is_dir()
    assert isinstance(custom, S3ObjectStore) and custom.bucket == "bucket"
    assert isinstance(aws, S3ObjectStore) and aws.bucket == "bucket"
    for store in (file_store, custom, aws):
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gs://bucket", "unknown object store URL scheme"),
        ("/no/scheme", "unknown object store URL scheme"),
        ("file://host/abs", "file:///absolute/path"),
        ("file:relative/dir", "absolute"),
        ("s3://", "needs a bucket"),
        ("s3://bucket/prefix", "not a key prefix"),
        ("s3://bucket?endpoint=http://x", "unknown S3 object store option"),
        ("s3://bucket?read_timeout=soon", "read_timeout must be a positive number of seconds"),
        ("s3://bucket?read_timeout=0", "read_timeout must be a positive number of seconds"),
        ("s3://bucket?read_timeout=-2", "read_timeout must be a positive number of seconds"),
        ("s3://bucket?read_timeout=nan", "read_timeout must be a positive number of seconds"),
        ("s3://bucket?connect_timeout=inf", "connect_timeout must be a positive number"),
        ("s3://bucket?connect_timeout=1&connect_timeout=2", "gives an S3 option twice"),
    ],
)
def test_open_object_store_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_object_store(url, secret=SECRET, public_base_url=PUBLIC_BASE_URL)


def test_s3_timeouts_are_read_from_the_url() -> None:
    parsed = parse_object_store_url(
        "s3://bucket?region=eu-west-1&read_timeout=2.5&connect_timeout=1"
    )
    assert (parsed.bucket, parsed.region) == ("bucket", "eu-west-1")
    assert (parsed.read_timeout, parsed.connect_timeout) == (2.5, 1.0)
    plain = parse_object_store_url("s3://bucket")
    assert (plain.read_timeout, plain.connect_timeout) == (None, None)


def timeouts_of(store: S3ObjectStore) -> tuple[float, float]:
    """The read and connect timeouts the store's client will be built with."""
    config: Any = store._config  # botocore's Config sets its options as plain attributes
    return config.read_timeout, config.connect_timeout


async def test_s3_timeouts_reach_the_client_config() -> None:
    tuned = open_object_store(
        "s3://bucket?read_timeout=2.5&connect_timeout=1",
        secret=SECRET,
        public_base_url=PUBLIC_BASE_URL,
    )
    default = open_object_store("s3://bucket", secret=SECRET, public_base_url=PUBLIC_BASE_URL)
    assert isinstance(tuned, S3ObjectStore) and isinstance(default, S3ObjectStore)
    assert timeouts_of(tuned) == (2.5, 1.0)
    assert timeouts_of(default) == (60, 60)  # botocore's own defaults when the URL says nothing
    with pytest.raises(ValueError, match="read_timeout must be a positive"):
        S3ObjectStore("bucket", read_timeout=0)
    await tuned.close()
    await default.close()


async def test_check_passes_on_a_working_store(store: ObjectStore) -> None:
    await store.check()
    await store.put("after-check", b"x")
    assert await store.exists("after-check")


async def test_check_fails_on_an_unusable_store(s3_endpoint: str, tmp_path: Path) -> None:
    missing_bucket = open_object_store(
        f"s3://no-such-bucket-here?endpoint_url={s3_endpoint}&region=us-east-1",
        secret=SECRET,
        public_base_url=PUBLIC_BASE_URL,
    )
    async with missing_bucket:
        with pytest.raises(ObjectStoreError, match="no-such-bucket-here"):
            await missing_bucket.check()

    gone = FileObjectStore(tmp_path / "gone", secret=SECRET, public_base_url=PUBLIC_BASE_URL)
    (tmp_path / "gone" / ".staging" / "tmp").rmdir()
    with pytest.raises(ObjectStoreError):
        await gone.check()


async def test_file_concurrent_completions_never_leak_file_errors(
    file_store: FileObjectStore,
) -> None:
    # A retried completion can run while the first one assembles and then removes the staging
    # directory: each one either assembles the object or finds the upload gone.
    data = [bytes([n]) * (5 * MiB) for n in range(1, 5)]
    for round_number in range(5):
        key = f"up/race-{round_number}.mp4"
        upload_id = await file_store.create_multipart(key)
        parts = [
            await file_store.upload_part(key, upload_id, n, chunk)
            for n, chunk in enumerate(data, start=1)
        ]
        results = await asyncio.gather(
            *(file_store.complete_multipart(key, upload_id, parts) for _ in range(4)),
            return_exceptions=True,
        )
        for result in results:
            assert isinstance(result, ObjectInfo | UploadNotFound), repr(result)
        assert any(isinstance(result, ObjectInfo) for result in results)
        assert await file_store.get(key) == b"".join(data)
    assert names_in(file_store.root / ".staging" / "uploads") == []


async def test_file_completion_of_an_upload_removed_meanwhile_is_upload_not_found(
    file_store: FileObjectStore,
) -> None:
    upload_id = await file_store.create_multipart("up/gone")
    part = await file_store.upload_part("up/gone", upload_id, 1, b"data")
    # As when another completion removed the staging directory after this one listed parts.
    await file_store.complete_multipart("up/gone", upload_id, [part])
    with pytest.raises(UploadNotFound):
        await file_store.complete_multipart("up/gone", upload_id, [part])


# ---- S3 under faults (chaos.s3_faults' endpoint: moto behind injected errors and stalls) ----

FAULT_READ_TIMEOUT_S = 0.5
FAULT_STALL_S = 4.0  # far past the read timeout: a request that waited it out had none


@pytest.fixture
async def faulty_s3(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[FaultyS3Endpoint, S3ObjectStore]]:
    """The fault-injecting endpoint (nothing injected until a test asks) and a store on it."""
    # Imported here: the chaos harness pulls in the workflows, which the rest of this file
    # does not need.
    from chaos.s3_faults import AWS_ENV, FaultyS3Endpoint

    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with FaultyS3Endpoint(seed=1, stall_s=FAULT_STALL_S) as endpoint:
        bucket = f"faults-{os.urandom(6).hex()}"
        await endpoint.create_bucket(bucket)
        store = S3ObjectStore(
            bucket,
            endpoint_url=endpoint.url,
            region="us-east-1",
            read_timeout=FAULT_READ_TIMEOUT_S,
            connect_timeout=1.0,
        )
        async with store:
            yield endpoint, store


async def test_s3_a_stalled_answer_to_a_put_times_out_and_is_retried(
    faulty_s3: tuple[FaultyS3Endpoint, S3ObjectStore],
) -> None:
    # botocore sends "Expect: 100-continue" with bodies, and aiohttp cancelled the read timeout
    # when the "100 Continue" came after the body went out: such a PUT waited for the stalled
    # answer as long as it took (here 4 s, with a real outage forever).
    endpoint, store = faulty_s3
    for size in (1, 1000, 200_000, 1_000_000):
        endpoint.injector.fault_next("PutObject", "stall")
        started = time.monotonic()
        await store.put(f"k{size}", b"x" * size)
        # One read timeout, one backoff of at most 1 s, one good try.
        assert time.monotonic() - started < FAULT_STALL_S - 1.0
    assert endpoint.injector.figures()["faults"]["stall"] == 4


async def test_s3_a_read_broken_off_mid_body_resumes_where_it_stopped(
    faulty_s3: tuple[FaultyS3Endpoint, S3ObjectStore], tmp_path: Path
) -> None:
    # botocore retries a request until its headers arrive, never a body that breaks off: the
    # whole download (and the activity doing it) used to fail.
    endpoint, store = faulty_s3
    data = random.Random(3).randbytes(3 * MiB + 17)
    await store.put("video.mp4", data)
    endpoint.injector.fault_next("GetObject", "stall_mid_body")
    info = await store.download_file("video.mp4", tmp_path / "video.mp4")
    assert (tmp_path / "video.mp4").read_bytes() == data and info.sha256 == sha(data)
    figures = endpoint.injector.figures()
    assert figures["faults"]["stall_mid_body"] == 1
    assert figures["requests_by_operation"]["GetObject"] == 2  # the first and one ranged resume


async def test_s3_a_read_does_not_resume_into_a_replaced_object(
    faulty_s3: tuple[FaultyS3Endpoint, S3ObjectStore],
) -> None:
    endpoint, store = faulty_s3
    await store.put("video.mp4", b"a" * MiB)
    endpoint.injector.fault_next("GetObject", "stall_mid_body")
    async with await store.open_read("video.mp4", chunk_size=64 * 1024) as reader:
        # The first GET's body is under way; replace the object before the body breaks off.
        await store.put("video.mp4", b"b" * MiB)
        with pytest.raises(ObjectStoreError):
            _ = [chunk async for chunk in reader]


async def test_s3_an_error_or_listing_that_breaks_off_is_retried(
    faulty_s3: tuple[FaultyS3Endpoint, S3ObjectStore],
) -> None:
    # aiobotocore reads an error document or a listing after its retry loop's guard: a body
    # that stalled there escaped as a raw aiohttp timeout, neither retried nor translated (the
    # attempt fence's read of a record not written yet failed a whole activity this way).
    endpoint, store = faulty_s3
    await store.put("a/1", b"1")
    endpoint.injector.fault_next("GetObject", "stall_mid_body")  # the 404's error document
    with pytest.raises(ObjectNotFound):
        await store.get("a/missing")
    endpoint.injector.fault_next("ListObjects", "stall_mid_body")
    assert [info.key async for info in store.list_prefix("a/")] == ["a/1"]
    assert endpoint.injector.figures()["faults"]["stall_mid_body"] == 2


async def test_s3_a_retried_create_leaves_no_stray_upload(
    faulty_s3: tuple[FaultyS3Endpoint, S3ObjectStore],
) -> None:
    # S3 carried out the first try, its answer was lost, botocore's retry created a second
    # upload: the first one's id was known to nobody and it stayed open (and billed).
    endpoint, store = faulty_s3
    endpoint.injector.fault_next("CreateMultipartUpload", "stall")
    upload_id = await store.create_multipart("big.mp4")
    assert await endpoint.open_uploads(store.bucket) == ["big.mp4"]
    data = random.Random(4).randbytes(MIN_PART_SIZE + 10)
    endpoint.injector.fault_next("CreateMultipartUpload", "stall")
    await store.put_stream("streamed.mp4", aiter_of([data]), part_size=MIN_PART_SIZE)
    assert await store.get("streamed.mp4") == data
    # Only the upload still in use is open.
    assert await endpoint.open_uploads(store.bucket) == ["big.mp4"]
    await store.abort_multipart("big.mp4", upload_id)
    assert await endpoint.open_uploads(store.bucket) == []
