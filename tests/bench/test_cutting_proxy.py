"""bench.cutting_proxy: seeded fates, the byte arithmetic of a cut, and the proxy on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bench.cutting_proxy import (
    Cut,
    CutPlan,
    CuttingProxy,
    allowance,
    last_request,
    request_label,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_the_same_seed_gives_the_same_fates() -> None:
    def fates(seed: int) -> list[Cut | None]:
        plan = CutPlan(seed, 0.5, max_up_bytes=1000, max_down_bytes=100)
        return [plan.next() for _ in range(50)]

    assert fates(3) == fates(3)
    assert fates(3) != fates(4)
    cuts = [cut for cut in fates(3) if cut is not None]
    assert 10 < len(cuts) < 40
    assert all(cut.after_bytes < (1000 if cut.direction == "up" else 100) for cut in cuts)
    assert {cut.direction for cut in cuts} == {"up", "down"}


def test_probability_zero_and_one() -> None:
    never = CutPlan(1, 0.0, 10, 10)
    always = CutPlan(1, 1.0, 10, 10)
    assert all(never.next() is None for _ in range(20))
    assert all(always.next() is not None for _ in range(20))
    with pytest.raises(ValueError):
        CutPlan(1, 1.5, 10, 10)


@pytest.mark.parametrize(
    ("cut", "direction", "passed", "size", "allowed"),
    [
        (None, "up", 0, 100, None),  # not cut
        (Cut("down", 10), "up", 0, 100, None),  # cut the other way
        (Cut("up", 250), "up", 100, 100, None),  # not reached yet
        (Cut("up", 250), "up", 200, 100, 50),  # reached within this chunk
        (Cut("up", 200), "up", 100, 100, None),  # at the chunk's end: cut at the next byte
        (Cut("up", 200), "up", 200, 100, 0),
        (Cut("up", 0), "up", 0, 100, 0),  # before the first byte
    ],
)
def test_allowance(
    cut: Cut | None, direction: str, passed: int, size: int, allowed: int | None
) -> None:
    assert allowance(cut, direction, passed, size) == allowed  # type: ignore[arg-type]


class FixedPlan(CutPlan):
    """The same fate for every connection."""

    def __init__(self, cut: Cut | None) -> None:
        super().__init__(0, 0.0, 1, 1)
        self.cut = cut

    def next(self) -> Cut | None:
        return self.cut


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """A server that sends back every byte it gets, until the client closes."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _round_trip(proxy: CuttingProxy, payload: bytes) -> bytes:
    """Send ``payload`` through the proxy, half-close, and read whatever comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    received = bytearray()

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

    sending = asyncio.create_task(send())
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            received += data
    await sending
    writer.close()
    return bytes(received)


async def test_an_uncut_connection_carries_everything_both_ways() -> None:
    async with echo_server() as port, CuttingProxy(("127.0.0.1", port), FixedPlan(None)) as proxy:
        assert await asyncio.wait_for(_round_trip(proxy, PAYLOAD), 10) == PAYLOAD
    assert (proxy.counts.connections, proxy.counts.cut) == (1, 0)


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_a_cut_connection_ends_early_with_no_byte_past_the_cut(direction: str) -> None:
    cut = Cut(direction, 100_000)  # type: ignore[arg-type]
    async with echo_server() as port, CuttingProxy(("127.0.0.1", port), FixedPlan(cut)) as proxy:
        received = await asyncio.wait_for(_round_trip(proxy, PAYLOAD), 10)
    # The reset may drop bytes still in flight, never add any past the cut.
    assert len(received) <= 100_000
    assert received == PAYLOAD[: len(received)]
    assert (proxy.counts.cut, getattr(proxy.counts, f"cut_{direction}")) == (1, 1)
    part = "sending" if direction == "up" else "answer"
    assert proxy.counts.cut_during == {f"(before a request): {part}": 1}  # no HTTP in it


def test_cuts_are_told_by_the_request_they_hit() -> None:
    session = "/uploads/0b6f3c1e-2f8a-4c51-9d1e-6a1b2c3d4e5f"
    assert request_label("POST", f"{session}/complete") == "POST /uploads/{id}/complete"
    assert request_label("PUT", "/objects/orgs/x/uploads/y/left.mp4?uploadId=1&partNumber=2") == (
        "PUT /objects/..."
    )
    data = (
        f"POST {session}/parts HTTP/1.1\r\nhost: x\r\n\r\n{{}}"
        f"POST {session}/complete HTTP/1.1\r\nhost: x\r\n\r\n"
    ).encode()
    assert last_request(data) == "POST /uploads/{id}/complete"
    assert last_request(b"\x00\x01 not a request line") is None
