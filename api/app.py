"""The FastAPI application factory: clients are opened in the lifespan, never at import."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.app_state import connect_temporal
from api.gateway import install_gateway
from api.middleware.tracing import TracingMiddleware
from api.problems import install_problem_handlers
from api.request_metrics import ApiMetrics, MetricsMiddleware
from api.routes import (
    analytics,
    auth,
    delivery,
    devices,
    health,
    matches,
    objects,
    organizations,
    player_figures,
    processing,
    prometheus,
    roster,
    teams,
    uploads,
    views,
)
from api.security import create_auth_state
from polyvision.mail import Mailer
from polyvision.settings import Settings
from polyvision.storage.analytics import open_analytics_store
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.objects import open_object_store
from polyvision.telemetry import configure_tracing

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
"""The built web viewer (`scripts/build_web.sh`); served at /app/ when it is there."""


class WebViewer(StaticFiles):
    """The viewer's files, with a policy letting its own scripts, streams and workers run."""

    def __init__(self, directory: Path, stream_origin: str) -> None:
        super().__init__(directory=directory, html=True)
        media = f"'self' blob: {stream_origin}".strip()
        self.csp = (
            f"default-src 'self'; connect-src 'self' {stream_origin}; img-src {media} data:; "
            f"media-src {media}; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'"
        )

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self.csp
        # Bundles carry a content hash in their names; the page itself is checked each time.
        immutable = path.startswith("assets/") and response.status_code == 200
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if immutable else "no-cache"
        )
        return response


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when omitted)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.mailer = Mailer.from_url(settings.smtp_url.get_secret_value())
        app.state.objects = open_object_store(
            settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
        )
        app.state.analytics = open_analytics_store(settings.analytics_url)
        app.state.engine = create_engine(settings.database_url)
        app.state.sessions = session_maker(app.state.engine)
        app.state.auth = await create_auth_state(settings, app.state.sessions)
        app.state.temporal_lock = asyncio.Lock()
        # Before the Temporal client, whose tracing interceptor uses the configured tracer.
        tracer_provider = configure_tracing("polyvision-api")
        app.state.temporal = await connect_temporal(settings)
        try:
            yield
        finally:
            if tracer_provider is not None:
                tracer_provider.shutdown()
            await app.state.objects.close()
            app.state.analytics.close()
            await app.state.engine.dispose()

    app = FastAPI(
        title="Polyvision API",
        version="0.1.0",
        summary="Process a two-camera football match once, serve it to many.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    install_gateway(app, settings)
    # Added last, so outermost: the gateway's own refusals (413, 429) are counted too.
    api_metrics = ApiMetrics()
    app.state.metrics = api_metrics
    app.add_middleware(MetricsMiddleware, metrics=api_metrics)
    # Outside the metrics: every request, refusals included, is a SERVER span continuing the
    # caller's traceparent; the workflow starts made inside it are its children.
    app.add_middleware(TracingMiddleware)
    if settings.trusted_proxies:
        # Outermost, so the rate limits, lockouts and logs all see the client behind the
        # gateway. The launchers keep uvicorn's own proxy handling off (it trusts loopback by
        # default), so only the proxies named here are believed, whatever server runs the app.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.include_router(health.router)
    app.include_router(prometheus.router)
    # The hot paths early: a request is matched against the routes one by one, in the order
    # they were included, and a player fetches a segment every few seconds (an edge box a part
    # every few), while the other routes see a request now and then.
    app.include_router(objects.router)
    app.include_router(delivery.router)
    app.include_router(auth.router)
    app.include_router(auth.jwks_router)
    for area in (
        organizations,
        devices,
        uploads,
        matches,
        teams,
        roster,
        processing,
        views,
        analytics,
        player_figures,
    ):
        app.include_router(area.router)
    if (WEB_DIST / "index.html").is_file():
        origin = urlsplit(settings.api_public_url)
        app.mount("/app", WebViewer(WEB_DIST, f"{origin.scheme}://{origin.netloc}"), name="web")
        app.add_api_route("/", lambda: RedirectResponse("/app/"), include_in_schema=False)
    return app
