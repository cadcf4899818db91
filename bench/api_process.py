"""The API as the load benchmarks meet it: a real uvicorn server process on loopback.

`ApiProcess` starts ``uvicorn --factory bench.api_process:production_app`` with the settings
passed through the ``PV_`` environment (as a deployment does), waits for ``/healthz`` and stops
it at the end. Each worker builds the app as ``polyvision api`` does (`production_app`: the
settings, logging configured, then `api.app.create_app`); access logs are off and forwarded
headers are not believed, as there.
`bench_member` creates an organization and a member straight in the metadata store and signs an
access token with the API's own key ring, so a benchmark can call member routes without the
login flow (which is rate limited and hashes a password per call).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from fastapi import FastAPI

from api.app import create_app
from api.security import create_auth_state
from polyvision.settings import Settings, load_settings
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.metadata.models import Membership, Organization, Role, User, utcnow
from polyvision.telemetry import configure_logging

REPO = Path(__file__).resolve().parents[1]
_LOG_TAIL = 3000


def api_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting the API needs from ``settings``."""
    values = {
        "PV_DATA_DIR": str(settings.data_dir),
        "PV_DATABASE_URL": settings.database_url,
        "PV_ANALYTICS_URL": settings.analytics_url,
        "PV_OBJECTS_URL": settings.objects_url,
        "PV_API_HOST": settings.api_host,
        "PV_API_PORT": str(settings.api_port),
        "PV_API_PUBLIC_URL": settings.api_public_url,
        "PV_TEMPORAL_ADDRESS": settings.temporal_address,
        "PV_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "PV_TASK_QUEUE_SUFFIX": settings.task_queue_suffix,
        "PV_RATE_LIMIT_AUTH_PER_MINUTE": str(settings.rate_limit_auth_per_minute),
        "PV_RATE_LIMIT_DEVICE_PER_MINUTE": str(settings.rate_limit_device_per_minute),
        "PV_LOG_LEVEL": settings.log_level,
    }
    return {**os.environ, **values}


def production_app() -> FastAPI:
    """The app as ``polyvision api`` builds it (`programs.cli`): settings from the environment,
    logging configured (JSON lines off a terminal, no access log), then `create_app`."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def server_description() -> str:
    """uvicorn's version and the HTTP parser and event loop it picks by default."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {importlib.metadata.version('uvicorn')} ({http}, {loop})"


class ApiProcess:
    """``uvicorn`` serving ``create_app()`` with ``workers`` processes, for a ``with`` block.

    Args:
        settings: Where the API listens (``api_host``, ``api_port``) and its stores.
        workers: uvicorn worker processes (1: the server process itself serves).
        log_path: Where the server's output goes (shown when it fails to start).
    """

    def __init__(self, settings: Settings, workers: int, log_path: Path) -> None:
        self.settings = settings
        self.workers = workers
        self.log_path = log_path
        self.url = f"http://{settings.api_host}:{settings.api_port}"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "bench.api_process:production_app", "--factory",
            "--host", self.settings.api_host, "--port", str(self.settings.api_port),
            "--workers", str(self.workers),
            "--no-access-log", "--no-proxy-headers", "--log-level", "warning",
        ]  # fmt: skip

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the server and wait until ``/healthz`` answers.

        Raises:
            RuntimeError: it exited or did not answer in time (with the end of its log).
        """
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=REPO,
                env=api_environment(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the API exited during startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2.0) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the API did not answer /healthz in {timeout_s:g} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 15 s."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class BenchMember:
    """A member of a fresh organization and a bearer token for them (15 minutes from its
    making: `access_token` makes another)."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def bench_member(settings: Settings, role: Role, name: str) -> BenchMember:
    """A new organization named ``name`` with one member of ``role``, and their token
    (`access_token`)."""
    engine = create_engine(settings.database_url)
    try:
        sessions = session_maker(engine)
        slug = f"{name}-{uuid.uuid4().hex[:8]}"
        organization = Organization(name=name, slug=slug)
        user = User(
            email=f"{slug}@example.com",
            password_hash="not-a-login-account",
            email_verified_at=utcnow(),
        )
        async with sessions() as session:
            session.add(organization)
            session.add(user)
            await session.commit()
            session.add(Membership(user_id=user.id, organization_id=organization.id, role=role))
            await session.commit()
    finally:
        await engine.dispose()
    return BenchMember(organization.id, user.id, await access_token(settings, user.id))


async def access_token(settings: Settings, user_id: uuid.UUID) -> str:
    """A fresh access token (15 minutes) for ``user_id``, signed with the API's key ring (created
    in the metadata store when it has none yet), so the API accepts it as one of its own."""
    engine = create_engine(settings.database_url)
    try:
        auth = await create_auth_state(settings, session_maker(engine))
        token: str = auth.access.issue(user_id)
        return token
    finally:
        await engine.dispose()
