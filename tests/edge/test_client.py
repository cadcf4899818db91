"""The HTTP client's retry policy and errors, against scripted HTTP answers.

The API is not involved here (the integration tests use the real one); an httpx transport
answers from a script so every retry case is exact.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from nacl.signing import SigningKey

from edge.client import (
    ApiError,
    ApiUnavailable,
    EdgeClient,
    PartRejected,
    RetryPolicy,
    Throttle,
    backoff_delay,
    retry_after_seconds,
)
from edge.protocol import PartUrl
from polyvision.device_tokens import b64url_decode

DEVICE = uuid.uuid4()
SESSION = {
    "id": str(uuid.uuid4()),
    "match_id": str(uuid.uuid4()),
    "status": "uploading",
    "part_size": 5,
    "files": {
        side: {"size": 12, "sha256": "0" * 64, "frames": 3, "parts_total": 3, "parts_done": [1]}
        for side in ("left", "right")
    },
    "error": None,
    "workflow_id": None,
    "run_id": None,
    "ui_url": None,
    "verified": None,
    "some_future_field": 1,
}


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "about:blank", "title": "Error", "status": status, "detail": detail},
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


class Script:
    """Answers requests in order and remembers them."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(script: Script, sleeps: list[float], attempts: int = 4) -> EdgeClient:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return EdgeClient(
        "http://api.test",
        DEVICE,
        SigningKey.generate(),
        http=httpx.AsyncClient(transport=httpx.MockTransport(script)),
        retry=RetryPolicy(attempts=attempts, base_delay_s=1.0, max_delay_s=8.0),
        sleep=sleep,
        rng=random.Random(7),
    )


def jti(request: httpx.Request) -> str:
    token = request.headers["Authorization"].removeprefix("Bearer ")
    payload = json.loads(b64url_decode(token.split(".")[1]))
    assert payload["sub"] == str(DEVICE)
    return str(payload["jti"])


async def test_retries_5xx_with_a_fresh_token_each_time() -> None:
    script = Script(
        problem(503, "busy"), httpx.ConnectError("refused"), httpx.Response(200, json=SESSION)
    )
    sleeps: list[float] = []
    async with make_client(script, sleeps) as client:
        session = await client.get_upload(uuid.uuid4())
    assert session.files["left"].parts_done == [1]
    assert len(script.requests) == 3 and len(sleeps) == 2
    assert len({jti(request) for request in script.requests}) == 3
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_retryable_statuses(status: int) -> None:
    script = Script(problem(status, "later"), httpx.Response(200, json=SESSION))
    sleeps: list[float] = []
    async with make_client(script, sleeps) as client:
        await client.complete(uuid.uuid4())
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
async def test_other_4xx_fail_at_once_with_the_detail(status: int) -> None:
    script = Script(problem(status, "left: missing parts [2, 3]"))
    sleeps: list[float] = []
    async with make_client(script, sleeps) as client:
        with pytest.raises(ApiError) as caught:
            await client.complete(uuid.uuid4())
    assert caught.value.status == status
    assert caught.value.detail == "left: missing parts [2, 3]"
    assert sleeps == [] and len(script.requests) == 1


async def test_retry_after_is_honoured() -> None:
    script = Script(problem(429, "slow down", {"Retry-After": "5"}), httpx.Response(204))
    sleeps: list[float] = []
    async with make_client(script, sleeps) as client:
        await client.abort(uuid.uuid4())
    assert sleeps == [5.0]


async def test_gives_up_after_the_last_attempt() -> None:
    script = Script(*[httpx.ConnectError("refused")] * 3)
    sleeps: list[float] = []
    async with make_client(script, sleeps, attempts=3) as client:
        with pytest.raises(ApiUnavailable, match="refused"):
            await client.me()
    assert len(sleeps) == 2
    script = Script(*[problem(503, "down for maintenance")] * 3)
    async with make_client(script, sleeps, attempts=3) as client:
        with pytest.raises(ApiError, match="down for maintenance") as caught:
            await client.me()
    assert caught.value.status == 503


async def test_non_problem_error_bodies() -> None:
    script = Script(httpx.Response(400, text="plain words"))
    async with make_client(script, []) as client:
        with pytest.raises(ApiError, match="plain words"):
            await client.me()


async def test_part_puts_carry_no_device_token_and_exact_bytes() -> None:
    script = Script(httpx.Response(500), httpx.Response(200))
    sleeps: list[float] = []
    part = PartUrl(
        number=2,
        url="http://objects.test/part?sig=x",
        headers={"x-amz-meta": "1"},
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    data = bytes(range(256)) * 3000
    async with make_client(script, sleeps) as client:
        await client.put_part(part, data)
    assert len(script.requests) == 2
    for request in script.requests:
        assert "Authorization" not in request.headers
        assert request.headers["Content-Length"] == str(len(data))
        assert "Transfer-Encoding" not in request.headers
        assert request.headers["x-amz-meta"] == "1"
    # The retry sent the whole part again.
    assert script.requests[1].content == data


async def test_register_needs_no_identity() -> None:
    registered = {"device_id": str(uuid.uuid4()), "organization_id": str(uuid.uuid4()), "name": "n"}
    script = Script(httpx.Response(201, json=registered))
    client = EdgeClient(
        "http://api.test/", http=httpx.AsyncClient(transport=httpx.MockTransport(script))
    )
    async with client:
        answer = await client.register("code", "n", "k" * 43)
        with pytest.raises(RuntimeError, match="provision"):
            await client.me()
    assert str(answer.device_id) == registered["device_id"]
    assert script.requests[0].url == "http://api.test/devices/register"
    assert "Authorization" not in script.requests[0].headers


def test_backoff_is_capped_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(1)
    # The cap doubles with each failed try, then stays at the ceiling.
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    for attempt, cap in enumerate(caps, start=1):
        samples = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(0 <= sample <= cap for sample in samples), (attempt, max(samples))
        # Spread over the whole range (full jitter): neither stuck near 0 (no backoff) nor at
        # the cap (no jitter). With 200 uniform samples each bound misses with odds ~1e-9.
        assert max(samples) > 0.9 * cap, (attempt, max(samples))
        assert min(samples) < 0.1 * cap, (attempt, min(samples))
        assert len(set(samples)) > 100


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("7", 7.0), ("soon", None), ("", None)],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, now) == 30.0
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier, now) == 0.0


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    """A fake clock and sleep for `Throttle`: the clock moves only when the code sleeps."""
    return FakeTime()


async def test_throttle_paces_bytes(fake_time: FakeTime) -> None:
    throttle = Throttle(bytes_per_s=1000.0, clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(3):
        await throttle.pace(100)
    # 300 bytes at 1000 B/s: the second chunk waits until 0.1 s, the third until 0.2 s.
    assert fake_time.sleeps == pytest.approx([0.1, 0.1])
    # Idle time is no credit to burst with: after a long pause the pacing starts afresh.
    fake_time.now += 60
    await throttle.pace(100)
    await throttle.pace(100)
    assert fake_time.sleeps == pytest.approx([0.1, 0.1, 0.1])


async def test_an_unlimited_throttle_never_sleeps(fake_time: FakeTime) -> None:
    unlimited = Throttle(clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(3):
        await unlimited.pace(10**9)
    assert fake_time.sleeps == []


async def test_a_refused_part_is_not_a_refused_device() -> None:
    script = Script(problem(403, "URL expired"))
    part = PartUrl(
        number=1, url="http://objects.test/p", expires_at=datetime.now(UTC) + timedelta(minutes=1)
    )
    async with make_client(script, []) as client:
        with pytest.raises(PartRejected, match="URL expired") as caught:
            await client.put_part(part, b"data")
    assert caught.value.status == 403
