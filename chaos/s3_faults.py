"""The object store failing transiently: errors and timeouts injected at the S3 endpoint.

The workers store everything in S3, here moto's S3 server in this process, served through a small
WSGI middleware that faults a seeded share of the requests the way S3 does when it struggles:
``500 InternalError`` and ``503 SlowDown`` answers (with the XML error bodies AWS sends, the
request not carried out), and answers held longer than the client's read timeout, either before
the headers or in the middle of the body (the request carried out, the client never hearing so,
the case that punishes a retried request that is not idempotent).

A reference run of the same recordings goes to a bucket on the same endpoint with no fault; the
disturbed run goes to another bucket while faults are injected. Judged as every chaos scenario
is (`chaos.kills.judged`, `chaos.kills.compare`): every workflow completed, every stored object and
every analytics row identical to the reference; and no multipart upload left open in the bucket.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import parse_qs, urlencode

import aioboto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

from chaos.kills import compare, judged, undisturbed
from chaos.stack import (
    RunDir,
    WorkerProcess,
    dev_server,
    make_matches,
    match_input,
    start_match,
    upload,
    wait_all,
)
from polyvision.ports import free_port
from polyvision.temporal.client import connect

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REGION: Final = "us-east-1"
AWS_ENV: Final = {
    # Dummy credentials: moto accepts any, and fixed values keep a real AWS profile (or an
    # instance role) from ever being used against the fake endpoint.
    "AWS_ACCESS_KEY_ID": "chaos",
    "AWS_SECRET_ACCESS_KEY": "chaos",
    "AWS_SESSION_TOKEN": "chaos",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
FAULT_KINDS: Final = ("InternalError", "SlowDown", "stall", "stall_mid_body")
"""What an injected fault does: a 500, a 503, the answer held past the client's read timeout
before its headers, or after half its body (before its headers when it has none)."""

RATE: Final = 0.10
"""Share of the disturbed run's requests that are faulted."""
READ_TIMEOUT_S: Final = 2.0
"""The disturbed run's S3 read timeout (its objects URL's ``read_timeout``): with botocore's 60 s
each stall would cost a minute."""
CONNECT_TIMEOUT_S: Final = 2.0
STALL_S: Final = READ_TIMEOUT_S + 1.5
"""How long a stalled answer is held: past the workers' read timeout, so the client gives up."""
RUN_TIMEOUT_S: Final = 1200.0

_ERROR_MESSAGES: Final = {
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "SlowDown": (503, "Please reduce your request rate."),
}


def s3_operation(environ: Mapping[str, Any]) -> str:
    """The S3 operation a request is (path-style addressing), for the fault counts."""
    method = str(environ.get("REQUEST_METHOD", ""))
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    has_key = "/" in environ.get("PATH_INFO", "/").strip("/")
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "GET":
        if not has_key:
            return "ListMultipartUploads" if "uploads" in query else "ListObjects"
        if "tagging" in query:
            return "GetObjectTagging"
        return "ListParts" if "uploadId" in query else "GetObject"
    if method == "PUT":
        if not has_key:
            return "CreateBucket"
        if "tagging" in query:
            return "PutObjectTagging"
        return "UploadPart" if "uploadId" in query else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "DeleteObjects" if "delete" in query else "Post"
    if method == "DELETE":
        if not has_key:
            return "DeleteBucket"
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return method


def error_body(code: str, message: str, resource: str, request_id: str) -> bytes:
    """An S3 error document, as AWS sends it with a failed request."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>{request_id}</RequestId>"
        f"<HostId>{request_id}{request_id}</HostId></Error>"
    ).encode()


class FaultInjector:
    """WSGI middleware that faults a seeded share of the requests it passes to ``app``.

    Nothing is injected until `inject` (a seeded share of all requests) or `fault_next` (one
    chosen request). Counts every request, and every fault by kind and by S3 operation, since it
    started or since the last `inject`; safe to use from the server's threads.
    """

    def __init__(self, app: WSGIApplication, *, seed: int, stall_s: float) -> None:
        self._app = app
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.stall_s = stall_s
        self.rate = 0.0
        self.kinds: tuple[str, ...] = FAULT_KINDS
        self._planned: dict[str, list[str]] = {}
        self.requests = 0
        self.requests_by_operation: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.faults_by_operation: Counter[str] = Counter()

    def inject(self, rate: float, kinds: Iterable[str] = FAULT_KINDS) -> None:
        """Fault ``rate`` of the requests from now on, each with one of ``kinds`` (drawn
        evenly); the counts start again from zero."""
        chosen = tuple(kinds)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate}")
        if not chosen or set(chosen) - set(FAULT_KINDS):
            raise ValueError(f"kinds must be some of {FAULT_KINDS}, not {chosen}")
        with self._lock:
            self.rate = rate
            self.kinds = chosen
            self.requests = 0
            self.requests_by_operation.clear()
            self.faults.clear()
            self.faults_by_operation.clear()

    def fault_next(self, operation: str, kind: str, times: int = 1) -> None:
        """Fault the next ``times`` requests of ``operation`` (an `s3_operation` name) with
        ``kind``, whatever the rate: a test's one chosen fault."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        with self._lock:
            self._planned.setdefault(operation, []).extend([kind] * times)

    def stop_injecting(self) -> None:
        """Let every request through from now on (the counts are kept)."""
        with self._lock:
            self.rate = 0.0
            self._planned.clear()

    def release_stalls(self) -> None:
        """End every held answer at once (shutting down)."""
        self._stopping.set()

    def figures(self) -> dict[str, Any]:
        """Requests and injected faults since the endpoint started or the last `inject`."""
        with self._lock:
            return {
                "requests": self.requests,
                "requests_by_operation": dict(sorted(self.requests_by_operation.items())),
                "faults": {kind: self.faults[kind] for kind in FAULT_KINDS},
                "faults_total": sum(self.faults.values()),
                "faults_by_operation": dict(sorted(self.faults_by_operation.items())),
            }

    def _draw(self, operation: str) -> str | None:
        with self._lock:
            planned = self._planned.get(operation)
            if planned:
                kind = planned.pop(0)
            elif self.rate <= 0.0 or self._rng.random() >= self.rate:
                kind = None
            else:
                kind = self._rng.choice(self.kinds)
            self.requests += 1
            self.requests_by_operation[operation] += 1
            return kind

    def _count(self, kind: str, operation: str) -> None:
        with self._lock:
            self.faults[kind] += 1
            self.faults_by_operation[operation] += 1

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        operation = s3_operation(environ)
        kind = self._draw(operation)
        if kind is None:
            return self._app(environ, start_response)
        if kind in _ERROR_MESSAGES:
            self._count(kind, operation)
            return self._error(kind, environ, start_response)
        return self._stalled(kind, operation, environ, start_response)

    def _error(
        self, code: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        # Read the request as S3 would before refusing it: an unread body makes the client see
        # a reset connection instead of the answer.
        stream = get_input_stream(environ)
        while stream.read(1 << 16):
            pass
        status, message = _ERROR_MESSAGES[code]
        request_id = uuid.uuid4().hex[:16].upper()
        body = error_body(code, message, environ.get("PATH_INFO", "/"), request_id)
        headers = [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("x-amz-id-2", request_id),
        ]
        reason = "Internal Server Error" if status == 500 else "Slow Down"
        if environ.get("REQUEST_METHOD") == "HEAD":  # a HEAD answer never has a body
            start_response(f"{status} {reason}", headers)
            return [b""]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {reason}", headers)
        return [body]

    def _stalled(
        self, kind: str, operation: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        # The request is carried out in full; only its answer is late.
        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self._app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        half = len(body) // 2
        if kind == "stall_mid_body" and half > 0:
            self._count(kind, operation)
            start_response(captured["status"], captured["headers"])
            return self._held_after(body[:half], body[half:])
        self._count("stall", operation)  # an answer without a body can only stall before it
        self._stopping.wait(self.stall_s)
        start_response(captured["status"], captured["headers"])
        return [body]

    def _held_after(self, first: bytes, rest: bytes) -> Iterator[bytes]:
        yield first
        self._stopping.wait(self.stall_s)
        yield rest


class FaultyS3Endpoint:
    """moto's S3 server behind a `FaultInjector`, on a free local port, in threads of this
    process (the buckets live in this process's moto backend)."""

    def __init__(self, seed: int, *, stall_s: float = STALL_S, host: str = "127.0.0.1") -> None:
        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass  # one line per request would drown the scenario's output

        self.injector = FaultInjector(
            DomainDispatcherApplication(create_backend_app), seed=seed, stall_s=stall_s
        )
        self.url = f"http://{host}:{free_port(host)}"
        self._server: BaseWSGIServer = make_server(
            host,
            int(self.url.rsplit(":", 1)[1]),
            self.injector,
            threaded=True,
            request_handler=QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faulty-s3", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.injector.release_stalls()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def bucket_url(self, bucket: str, **options: float) -> str:
        """The ``s3://`` objects URL of ``bucket`` here, with extra options (the timeouts)."""
        query = urlencode({"endpoint_url": self.url, "region": REGION, **options})
        return f"s3://{bucket}?{query}"

    async def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (never faulted: call it before `FaultInjector.inject`)."""
        async with aioboto3.Session().client("s3", endpoint_url=self.url, region_name=REGION) as s3:
            await s3.create_bucket(Bucket=bucket)

    async def open_uploads(self, bucket: str) -> list[str]:
        """The keys of the multipart uploads still open in ``bucket``."""
        async with aioboto3.Session().client("s3", endpoint_url=self.url, region_name=REGION) as s3:
            response = await s3.list_multipart_uploads(Bucket=bucket)
        return sorted(upload.get("Key", "") for upload in response.get("Uploads", []))


@contextlib.contextmanager
def aws_environment() -> Iterator[None]:
    """`AWS_ENV` in this process's environment (and so the workers'), restored on exit."""
    saved = {name: os.environ.get(name) for name in (*AWS_ENV, "AWS_PROFILE")}
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failed_attempts(worker: WorkerProcess) -> list[str]:
    """The last line of each exception an activity attempt of ``worker`` failed with."""
    found = []
    for record in worker.log_events_containing("Completing activity as failed"):
        exception = str(record.get("exception", "")).strip()
        found.append(exception.splitlines()[-1][:300] if exception else "failed")
    return found


async def run(
    work: Path, seed: int, *, matches: int = 2, rate: float = RATE, seconds: float = 4.0
) -> dict[str, Any]:
    """The scenario; its figures."""
    batch = make_matches(work / "synth", [seed * 100 + 70 + i for i in range(matches)], seconds)
    with aws_environment(), FaultyS3Endpoint(seed) as endpoint:
        await endpoint.create_bucket("reference")
        await endpoint.create_bucket("disturbed")
        server = await dev_server(work / "temporal-s3")
        try:
            client = await connect(server.address, server.namespace.name)
            started = time.monotonic()
            reference_run = RunDir(
                work / "reference-s3", objects_url=endpoint.bucket_url("reference"), env={**AWS_ENV}
            )
            reference = await undisturbed(client, reference_run, server.address, batch)
            reference_s = time.monotonic() - started

            disturbed_run = RunDir(
                work / "disturbed-s3",
                objects_url=endpoint.bucket_url(
                    "disturbed", read_timeout=READ_TIMEOUT_S, connect_timeout=CONNECT_TIMEOUT_S
                ),
                env={**AWS_ENV},
            )
            inputs = [match_input(m, await upload(disturbed_run, m), "-s3") for m in batch]
            started = time.monotonic()
            endpoint.injector.inject(rate)
            worker = WorkerProcess(disturbed_run.root, server.address, "-s3", env=disturbed_run.env)
            try:
                handles = [await start_match(client, i) for i in inputs]
                failures = await wait_all(handles, RUN_TIMEOUT_S)
            finally:
                endpoint.injector.stop_injecting()
                worker.stop()
            disturbed_s = time.monotonic() - started
            injected = endpoint.injector.figures()
            disturbed = await judged(disturbed_run, batch)
            left_open = await endpoint.open_uploads("disturbed")
        finally:
            await server.stop()

    failed_attempts = _failed_attempts(worker)
    return {
        "seed": seed,
        "matches": [m.name for m in batch],
        "match_seconds": batch[0].config.seconds,
        "fault_rate": rate,
        "read_timeout_s": READ_TIMEOUT_S,
        "stall_s": STALL_S,
        **injected,
        "activity_attempts_failed": len(failed_attempts),
        "activity_failures": dict(Counter(failed_attempts).most_common()),
        "workflows": len(handles),
        "workflows_completed": sum(1 for f in failures if f is None),
        "workflows_failed": [repr(f) for f in failures if f is not None],
        "multipart_uploads_left_open": left_open,
        "reference_s": round(reference_s, 1),
        "disturbed_s": round(disturbed_s, 1),
        **compare(reference, disturbed),
    }
