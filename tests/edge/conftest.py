"""A live API (uvicorn on a free port, embedded stores, the session's Temporal dev server) for
the edge agent's integration tests, and helpers to run ``polyvision-edge`` as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Role
from polyvision.storage.upgrade import upgrade_stores
from tests.api.factories import Factory, TestOrg
from tests.fixtures.temporal import TemporalTestServer

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Exchange:
    """One HTTP request the API answered (status None: the client went away first)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int | None


class RequestLog:
    """ASGI wrapper remembering every request and its status: how the tests count part PUTs
    on the server side."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.exchanges.append(
                Exchange(
                    scope["method"],
                    scope["path"],
                    parse_qs(scope["query_string"].decode()),
                    status[0] if status else None,
                )
            )

    def stored_parts(self) -> list[tuple[str, int]]:
        """(object key path, part number) of every part PUT the API stored (2xx)."""
        return [
            (exchange.path, int(exchange.query["partNumber"][0]))
            for exchange in self.exchanges
            if exchange.method == "PUT"
            and "partNumber" in exchange.query
            and exchange.status is not None
            and 200 <= exchange.status < 300
        ]


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # pytest owns the signals; uvicorn's handlers would swallow a Ctrl-C of the test run.
        yield


@dataclass
class LiveApi:
    """The running API."""

    url: str
    app: FastAPI
    settings: Settings
    log: RequestLog
    factory: Factory
    temporal: Client
    workflows: list[str] = field(default_factory=list)

    async def provisioning_code(self, org: TestOrg) -> str:
        """A fresh code from the API, as an admin of ``org`` would get it."""
        async with httpx.AsyncClient(base_url=self.url) as http:
            response = await http.post(
                f"/orgs/{org.id}/devices/provisioning-codes",
                json={"ttl_s": 3600},
                headers=org.member(Role.admin).headers,
            )
        assert response.status_code == 201, response.text
        return str(response.json()["code"])


@pytest_asyncio.fixture
async def live_api(
    tmp_path: Path, temporal_server: TemporalTestServer, temporal_client: Client
) -> AsyncIterator[LiveApi]:
    """The API on a free port; match workflows it starts go to a task queue nobody polls, and
    are terminated at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path / "pv",
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace.name,
        api_host="127.0.0.1",
        api_port=port,
        api_public_url=url,
        task_queue_suffix=f"-edge-{uuid.uuid4().hex[:10]}",
    )
    await asyncio.to_thread(upgrade_stores, settings)
    app = create_app(settings)
    log = RequestLog(app)
    server = _TestServer(
        uvicorn.Config(log, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the API stopped during startup")
        await asyncio.sleep(0.02)
    live = LiveApi(url, app, settings, log, Factory(app), temporal_client)
    try:
        yield live
    finally:
        for workflow_id in live.workflows:
            with contextlib.suppress(RPCError):
                await temporal_client.get_workflow_handle(workflow_id).terminate("edge test done")
        server.should_exit = True
        await serving


@dataclass(frozen=True)
class Completed:
    code: int
    stdout: str
    stderr: str


def edge_command(state_dir: Path, *args: str) -> list[str]:
    """The ``polyvision-edge`` command line, run by this interpreter."""
    return [sys.executable, "-m", "edge.cli", "--state-dir", str(state_dir), *args]


async def run_edge(state_dir: Path, *args: str) -> Completed:
    """Run ``polyvision-edge`` without blocking the event loop (the API serves on it)."""
    process = await asyncio.create_subprocess_exec(
        *edge_command(state_dir, *args),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120.0)
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


async def provision(live: LiveApi, state_dir: Path, org: TestOrg, name: str = "box") -> Completed:
    """Provision ``state_dir`` as a device of ``org`` through the CLI."""
    code = await live.provisioning_code(org)
    result = await run_edge(
        state_dir, "provision", "--api", live.url, f"--code={code}", "--name", name
    )
    assert result.code == 0, result.stderr
    return result


def lines(text: str, *needles: str) -> Sequence[str]:
    """Lines of ``text`` containing every needle."""
    return [line for line in text.splitlines() if all(needle in line for needle in needles)]
