"""A TCP proxy that cuts connections at seeded random moments, for `bench.upload_storm`.

Every connection accepted draws its fate from one seeded random generator (`CutPlan`): kept
whole, or cut once a chosen number of bytes has passed in one direction (``up``: client to
server, a request or a part's body; ``down``: server to client, an answer). At that moment the
proxy forwards the bytes allowed, then resets both sides (``SO_LINGER`` 0: an RST, as a dropped
mobile link or a restarted middlebox does). A moment is a byte offset rather than a time, so
the same seed cuts the same place of a connection's traffic whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["up", "down"]
_READ = 64 * 1024
_LINE_MAX = 1024  # longer than any request line of ours (a part URL is about 300 bytes)


@dataclass(frozen=True)
class Cut:
    """Cut a connection once ``after_bytes`` bytes went ``direction``."""

    direction: Direction
    after_bytes: int


class CutPlan:
    """Seeded fates for the connections, in the order they arrive.

    Args:
        seed: Seed of the generator.
        probability: Share of the connections that get cut (0 to 1).
        max_up_bytes: A cut upstream happens within the first this many bytes sent.
        max_down_bytes: A cut downstream happens within the first this many bytes answered.
    """

    def __init__(
        self, seed: int, probability: float, max_up_bytes: int, max_down_bytes: int
    ) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], not {probability}")
        self._rng = random.Random(seed)
        self.probability = probability
        self.max_bytes: dict[Direction, int] = {"up": max_up_bytes, "down": max_down_bytes}

    def next(self) -> Cut | None:
        """The fate of the next connection: None to keep it whole."""
        # Every draw is made whatever the outcome, so fates do not shift with the probability.
        cut = self._rng.random() < self.probability
        direction: Direction = "up" if self._rng.random() < 0.5 else "down"
        after = self._rng.randrange(max(1, self.max_bytes[direction]))
        return Cut(direction, after) if cut else None


def allowance(cut: Cut | None, direction: Direction, passed: int, size: int) -> int | None:
    """How many bytes of the next ``size`` going ``direction`` may pass, after ``passed``
    went that way before; None: all of them, the cut is not reached (or not this way). The
    cut comes with the first byte past ``after_bytes``: a connection whose traffic ends right
    there is not cut."""
    if cut is None or cut.direction != direction:
        return None
    left = cut.after_bytes - passed
    return None if left >= size else max(0, left)


_REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^ \r\n]*) HTTP/1\.[01]\r\n")
_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")


def request_label(method: str, target: str) -> str:
    """What kind of request ``method target`` is, for counting cuts: the path without its
    query, ids as ``{id}``, and an object URL (a part upload) as ``/objects/...``."""
    path = target.split("?", 1)[0]
    if path.startswith("/objects/"):
        return f"{method} /objects/..."
    return f"{method} {_ID.sub('/{id}', path)}"


def last_request(data: bytes) -> str | None:
    """The label of the last HTTP/1.1 request line in ``data``, if it holds one."""
    found = None
    for match in _REQUEST_LINE.finditer(data):
        found = match
    if found is None:
        return None
    return request_label(found.group(1).decode(), found.group(2).decode("latin-1"))


@dataclass
class ProxyCounts:
    """What the proxy saw.

    Attributes:
        connections: Connections accepted.
        cut: Connections cut.
        cut_up: Of those, cut while the client was sending (a request or a part's body).
        cut_down: Of those, cut while the server was answering.
        cut_during: Cuts by the request being sent or answered (`request_label`), and which
            of the two (``"POST /uploads/{id}/complete: answer"``).
    """

    connections: int = 0
    cut: int = 0
    cut_up: int = 0
    cut_down: int = 0
    cut_during: Counter[str] = field(default_factory=Counter)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN, dropping whatever is still buffered."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class CuttingProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``, cutting connections as ``plan`` says.

    Use ``async with``; `url` is where clients connect, `counts` what happened.
    """

    def __init__(self, upstream: tuple[str, int], plan: CutPlan, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.plan = plan
        self.host = host
        self.port = 0
        self.counts = ProxyCounts()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._relay(client_r, client_w)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        cut = self.plan.next()
        self.counts.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_w)
            return

        # HTTP/1.1 without pipelining: the request being answered is the last one sent.
        requests: list[str] = []

        def cut_now() -> None:
            assert cut is not None
            self.counts.cut += 1
            if cut.direction == "up":
                self.counts.cut_up += 1
            else:
                self.counts.cut_down += 1
            during = requests[-1] if requests else "(before a request)"
            part = "sending" if cut.direction == "up" else "answer"
            self.counts.cut_during[f"{during}: {part}"] += 1
            _reset(client_w)
            _reset(server_w)

        tail = b""

        def seen(data: bytes, allowed: int | None) -> None:
            nonlocal tail
            # With the end of the previous read: a request line may straddle two reads.
            passing = tail + data[:allowed]
            if (label := last_request(passing)) is not None:
                requests.append(label)
            tail = passing[-_LINE_MAX:]

        try:
            await asyncio.gather(
                _pump(client_r, server_w, "up", cut, cut_now, seen),
                _pump(server_r, client_w, "down", cut, cut_now),
            )
        finally:
            for writer in (client_w, server_w):
                if not writer.transport.is_closing():
                    writer.close()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    direction: Direction,
    cut: Cut | None,
    cut_now: Callable[[], None],
    seen: Callable[[bytes, int | None], None] | None = None,
) -> None:
    """Copy ``reader`` to ``writer`` until EOF, or until the cut (then ``cut_now``); ``seen``
    gets every chunk read and how much of it passes (None: all)."""
    passed = 0
    try:
        while data := await reader.read(_READ):
            allowed = allowance(cut, direction, passed, len(data))
            if seen is not None:
                seen(data, allowed)
            if allowed is not None:
                if allowed:
                    writer.write(data[:allowed])
                    await writer.drain()
                cut_now()
                return
            writer.write(data)
            await writer.drain()
            passed += len(data)
        if writer.can_write_eof() and not writer.transport.is_closing():
            writer.write_eof()
    except (ConnectionError, OSError):
        # The other end went away (or the connection was cut): make sure the peer sees it.
        writer.transport.abort()
