"""The edge agent's HTTP client for the Polyvision API.

Every API request carries a freshly minted device token (the API spends each token's ``jti``,
so a token is good for exactly one request, retries included). Transient failures (connection
errors, timeouts, 5xx, 408, 429) are retried with exponential backoff and full jitter, honoring
``Retry-After``; any other 4xx is the caller's problem and raises `ApiError` at once with the
problem+json ``detail``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from nacl.signing import SigningKey

from edge.protocol import (
    DeviceInfo,
    FileSide,
    OpenUpload,
    PartUrl,
    PartUrls,
    Registered,
    UploadSession,
)
from polyvision.device_tokens import mint_device_token

RETRYABLE_STATUSES = frozenset({408, 429})


class ApiError(RuntimeError):
    """The API answered with an error that retrying will not fix (or retries ran out).

    Attributes:
        status: HTTP status code.
        detail: The problem+json ``detail`` (or the body text when it is not problem+json).
        title: The problem's ``title``, when present.
        problem_type: The problem's ``type`` URI, when present: what a caller branches on.
        retry_after: Seconds the server asked to wait (``Retry-After``), when it did.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        title: str | None = None,
        *,
        problem_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.title = title
        self.problem_type = problem_type
        self.retry_after = retry_after


class PartRejected(ApiError):
    """The object store refused a part PUT (an expired or invalid URL, an aborted upload).

    Kept apart from `ApiError` so a refused URL is never mistaken for a refused device.
    """


class ApiUnavailable(RuntimeError):
    """The API could not be reached (connection errors or timeouts) after every retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        attempts: Tries in total, the first one included.
        base_delay_s: Delay cap before the second try; doubles each try.
        max_delay_s: Longest wait between two tries.
    """

    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0


def is_retryable(status: int) -> bool:
    """True for statuses worth another try: 5xx, 408 and 429."""
    return status >= 500 or status in RETRYABLE_STATUSES


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after failed try number ``attempt`` (1-based): full jitter.

    Full jitter (uniform in ``[0, cap]``) spreads a fleet of boxes that lost the API at the same
    moment, so they do not all come back in lockstep.
    """
    cap = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
    return rng.uniform(0.0, cap)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(response: httpx.Response) -> ApiError:
    """An `ApiError` carrying the problem+json ``detail`` of ``response``."""
    detail = response.text.strip() or response.reason_phrase
    title: str | None = None
    problem_type: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = body.get("title") if isinstance(body.get("title"), str) else None
        problem_type = body.get("type") if isinstance(body.get("type"), str) else None
        raw = body.get("detail")
        if isinstance(raw, str):
            detail = raw
        elif raw is not None:
            # FastAPI's own validation errors put a list here.
            detail = str(raw)
        elif title:
            detail = title
    return ApiError(
        response.status_code,
        detail,
        title,
        problem_type=problem_type,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


@dataclass
class Throttle:
    """Paces outgoing bytes to at most ``bytes_per_s`` (None: unlimited).

    An edge box often shares a thin uplink with the live stream; a cap keeps uploads polite.
    """

    bytes_per_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _started: float = field(default=0.0, init=False)
    _sent: int = field(default=0, init=False)

    async def pace(self, size: int) -> None:
        """Account for ``size`` bytes about to go out, sleeping first if we are ahead."""
        if not self.bytes_per_s:
            return
        now = self.clock()
        due = self._started + self._sent / self.bytes_per_s
        if self._sent == 0 or now > due + 1.0:
            # Idle time (hashing, API calls) is not credit to burst with later.
            self._started, self._sent, due = now, 0, now
        if due > now:
            await self.sleep(due - now)
        self._sent += size


Sleep = Callable[[float], Awaitable[None]]
PUT_CHUNK = 256 * 1024


class EdgeClient:
    """The device's API client: device-token auth, retries, typed answers.

    Args:
        api_url: Base URL of the API (``http://host:port``).
        device_id: This device's id; None before provisioning (only `register` works then).
        signing_key: This device's key; None before provisioning.
        http: An httpx client to use (tests pass one); a new one otherwise.
        retry: Retry policy for transient failures.
        throttle: Upload bandwidth cap for part bodies.
        sleep: Awaitable sleep (tests pass a fake).
        rng: Jitter source.
    """

    def __init__(
        self,
        api_url: str,
        device_id: uuid.UUID | None = None,
        signing_key: SigningKey | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        throttle: Throttle | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.device_id = device_id
        self._key = signing_key
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
        self._retry = retry or RetryPolicy()
        self._throttle = throttle or Throttle()
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def __aenter__(self) -> EdgeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client when this object created it."""
        if self._owns_http:
            await self._http.aclose()

    # --- transport -------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if self._key is None or self.device_id is None:
            raise RuntimeError("this client has no device identity; provision the device first")
        return {"Authorization": f"Bearer {mint_device_token(self._key, self.device_id)}"}

    async def _send(
        self,
        build: Callable[[], Awaitable[httpx.Response]],
    ) -> httpx.Response:
        """Run ``build`` (one HTTP exchange) until it succeeds, fails for good, or tries run out.

        ``build`` is called again for every try, so each try gets a fresh token and body.
        """
        last_error: Exception | None = None
        for attempt in range(1, self._retry.attempts + 1):
            wait: float | None = None
            try:
                response = await build()
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last_error = exc
            else:
                if response.is_success:
                    return response
                if not is_retryable(response.status_code):
                    raise error_from_response(response)
                last_error = error_from_response(response)
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self._retry.attempts:
                break
            delay = backoff_delay(attempt, self._retry, self._rng)
            if wait is not None:
                # The server said when; honour it but never wait less than our own backoff.
                delay = max(delay, min(wait, self._retry.max_delay_s * 4))
            await self._sleep(delay)
        if isinstance(last_error, ApiError):
            raise last_error
        raise ApiUnavailable(f"{self.api_url} unreachable: {last_error}") from last_error

    async def _api(
        self, method: str, path: str, *, json: Any = None, auth: bool = True
    ) -> httpx.Response:
        url = f"{self.api_url}{path}"

        async def build() -> httpx.Response:
            headers = self._auth_headers() if auth else {}
            return await self._http.request(method, url, json=json, headers=headers)

        return await self._send(build)

    # --- devices ---------------------------------------------------------------------------

    async def register(self, code: str, name: str, public_key: str) -> Registered:
        """``POST /devices/register``: trade a one-time provisioning code for a device id."""
        body = {"code": code, "name": name, "public_key": public_key}
        response = await self._api("POST", "/devices/register", json=body, auth=False)
        return Registered.model_validate(response.json())

    async def me(self) -> DeviceInfo:
        """``GET /devices/me``: this device as the API sees it (active or revoked)."""
        response = await self._api("GET", "/devices/me")
        return DeviceInfo.model_validate(response.json())

    # --- uploads ---------------------------------------------------------------------------

    async def open_upload(self, body: OpenUpload) -> UploadSession:
        """``POST /uploads``: open the session, or get the existing one for the same client_ref."""
        response = await self._api("POST", "/uploads", json=body.model_dump(mode="json"))
        return UploadSession.model_validate(response.json())

    async def get_upload(self, session_id: uuid.UUID) -> UploadSession:
        """``GET /uploads/{id}``, with the parts the server already holds."""
        response = await self._api("GET", f"/uploads/{session_id}")
        return UploadSession.model_validate(response.json())

    async def part_urls(
        self, session_id: uuid.UUID, side: FileSide, numbers: list[int]
    ) -> list[PartUrl]:
        """``POST /uploads/{id}/parts``: where to send parts ``numbers`` of one file."""
        body = {"file": side, "numbers": numbers}
        response = await self._api("POST", f"/uploads/{session_id}/parts", json=body)
        return PartUrls.model_validate(response.json()).urls

    async def complete(self, session_id: uuid.UUID) -> UploadSession:
        """``POST /uploads/{id}/complete``: assemble, verify, start the match workflow."""
        response = await self._api("POST", f"/uploads/{session_id}/complete")
        return UploadSession.model_validate(response.json())

    async def abort(self, session_id: uuid.UUID) -> None:
        """``DELETE /uploads/{id}``: give the session up."""
        await self._api("DELETE", f"/uploads/{session_id}")

    async def put_part(self, part: PartUrl, data: bytes) -> None:
        """Send one part's bytes to its URL (presigned S3 or the API's signed object URL).

        Raises:
            PartRejected: the store refused the part (after retries, for 5xx).
            ApiUnavailable: the store could not be reached.

        No device token: the URL itself carries the authorisation, and S3 refuses a request
        that holds two kinds of credentials.
        """
        headers: Mapping[str, str] = {**part.headers, "Content-Length": str(len(data))}

        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(data), PUT_CHUNK):
                chunk = data[start : start + PUT_CHUNK]
                await self._throttle.pace(len(chunk))
                yield chunk

        async def build() -> httpx.Response:
            return await self._http.request(part.method, part.url, content=body(), headers=headers)

        try:
            await self._send(build)
        except PartRejected:
            raise
        except ApiError as exc:
            raise PartRejected(
                exc.status,
                exc.detail,
                exc.title,
                problem_type=exc.problem_type,
                retry_after=exc.retry_after,
            ) from exc
