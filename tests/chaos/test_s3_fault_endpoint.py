"""The fault-injecting S3 endpoint of `chaos.s3_faults`: it really faults requests, as S3 does,
and our S3 store rides out a high fault rate with every byte intact."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.handlers import add_expect_header

from chaos.s3_faults import AWS_ENV, FAULT_KINDS, REGION, FaultyS3Endpoint, s3_operation
from polyvision.storage.objects import MIN_PART_SIZE, S3ObjectStore, open_object_store

READ_TIMEOUT_S = 0.4
STALL_S = 0.6  # past the read timeout: the client gives up on a stalled answer


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3Endpoint]:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with FaultyS3Endpoint(seed=3, stall_s=STALL_S) as started:
        yield started


@pytest.fixture
async def store(endpoint: FaultyS3Endpoint) -> AsyncIterator[S3ObjectStore]:
    # moto's buckets live as long as the process: a fresh name per test.
    bucket = f"faulty-{uuid.uuid4().hex[:12]}"
    await endpoint.create_bucket(bucket)
    url = endpoint.bucket_url(bucket, read_timeout=READ_TIMEOUT_S, connect_timeout=1)
    opened = open_object_store(url, secret=b"s" * 32, public_base_url="http://test")
    assert isinstance(opened, S3ObjectStore)
    async with opened:
        yield opened


async def raw_client_call(
    endpoint: FaultyS3Endpoint, bucket: str, operation: str, **kwargs: object
) -> object:
    """One S3 call with botocore's retries off, so the endpoint's answer shows as it is."""
    config = AioConfig(retries={"total_max_attempts": 1}, read_timeout=READ_TIMEOUT_S)
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint.url, region_name=REGION, config=config
    ) as s3:
        # As S3ObjectStore does: no "100 Continue" round, whose answer can cancel aiohttp's
        # read timeout (see `polyvision.storage.objects.s3`).
        s3.meta.events.unregister("before-call.s3", add_expect_header)
        return await getattr(s3, operation)(Bucket=bucket, **kwargs)


@pytest.mark.parametrize(
    ("kind", "code"), [("InternalError", "InternalError"), ("SlowDown", "SlowDown")]
)
async def test_errors_are_answered_as_s3_answers_them(
    endpoint: FaultyS3Endpoint, store: S3ObjectStore, kind: str, code: str
) -> None:
    endpoint.injector.fault_next("PutObject", kind)
    with pytest.raises(ClientError) as raised:
        await raw_client_call(endpoint, store.bucket, "put_object", Key="k", Body=b"x")
    error = raised.value.response
    assert error["Error"]["Code"] == code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == (500 if kind == "InternalError" else 503)
    assert error["ResponseMetadata"]["RequestId"]
    # Refused, not carried out.
    assert not await store.exists("k")


async def test_a_stalled_answer_times_out_after_the_request_was_carried_out(
    endpoint: FaultyS3Endpoint, store: S3ObjectStore
) -> None:
    endpoint.injector.fault_next("PutObject", "stall")
    with pytest.raises(ReadTimeoutError):
        await raw_client_call(endpoint, store.bucket, "put_object", Key="k", Body=b"x")
    assert await store.get("k") == b"x"
    assert endpoint.injector.figures()["faults"]["stall"] == 1


async def test_every_byte_round_trips_through_a_high_fault_rate(
    endpoint: FaultyS3Endpoint, store: S3ObjectStore, tmp_path: Path
) -> None:
    rng = random.Random(5)
    injector = endpoint.injector
    injector.inject(0.25)
    # Beside the random ones, each kind once where it hurts most: a lost answer to a create or
    # a completion (not idempotent), a body broken off, a refused part, a refused listing page.
    injector.fault_next("CreateMultipartUpload", "stall")
    injector.fault_next("CompleteMultipartUpload", "stall")
    injector.fault_next("GetObject", "stall_mid_body")
    injector.fault_next("UploadPart", "InternalError")
    injector.fault_next("ListObjects", "SlowDown")

    small = {f"small/{i}": rng.randbytes(rng.randint(0, 200_000)) for i in range(10)}
    for key, data in small.items():
        await store.put(key, data)
    for key, data in small.items():
        assert await store.get(key) == data

    big = rng.randbytes(MIN_PART_SIZE + 300_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    info = await store.put_stream("big/streamed", chunks(), part_size=MIN_PART_SIZE)
    assert info.sha256 == hashlib.sha256(big).hexdigest()
    downloaded = await store.download_file("big/streamed", tmp_path / "big")
    assert (tmp_path / "big").read_bytes() == big and downloaded.size == len(big)

    upload_id = await store.create_multipart("big/parts")
    parts = [
        await store.upload_part("big/parts", upload_id, 1, big[:MIN_PART_SIZE]),
        await store.upload_part("big/parts", upload_id, 2, big[MIN_PART_SIZE:]),
    ]
    assert [p.number for p in await store.list_parts("big/parts", upload_id)] == [1, 2]
    await store.complete_multipart("big/parts", upload_id, parts)
    assert b"".join([c async for c in store.read_stream("big/parts", chunk_size=1 << 16)]) == big

    listed = [info.key async for info in store.list_prefix()]
    assert listed == sorted([*small, "big/parts", "big/streamed"])
    assert await store.delete_prefix("small/") == len(small)

    injector.stop_injecting()
    figures = injector.figures()
    assert [info.key async for info in store.list_prefix()] == ["big/parts", "big/streamed"]
    assert await endpoint.open_uploads(store.bucket) == []
    # Every kind of fault was met, on all sorts of requests, and ridden out.
    assert all(figures["faults"][kind] > 0 for kind in FAULT_KINDS), figures
    assert figures["faults_total"] >= 0.1 * figures["requests"], figures
    assert len(figures["faults_by_operation"]) >= 4, figures


def test_requests_are_named_by_their_s3_operation() -> None:
    def op(method: str, path: str, query: str = "") -> str:
        return s3_operation({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query})

    assert op("PUT", "/b") == "CreateBucket"
    assert op("PUT", "/b/k/x") == "PutObject"
    assert op("PUT", "/b/k", "partNumber=1&uploadId=u") == "UploadPart"
    assert op("POST", "/b/k", "uploads") == "CreateMultipartUpload"
    assert op("POST", "/b/k", "uploadId=u") == "CompleteMultipartUpload"
    assert op("POST", "/b", "delete") == "DeleteObjects"
    assert op("GET", "/b", "list-type=2&prefix=a") == "ListObjects"
    assert op("GET", "/b/k") == "GetObject"
    assert op("GET", "/b/k", "tagging") == "GetObjectTagging"
    assert op("HEAD", "/b/k") == "HeadObject"
    assert op("DELETE", "/b/k", "uploadId=u") == "AbortMultipartUpload"
