"""The API's Prometheus endpoint.

With ``PV_METRICS_TOKEN`` set, `/metrics` answers only a request carrying
``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: ...}`` in the
scrape config); others get a 401 problem. Without it the endpoint is open, for a cluster whose
gateway keeps `/metrics` internal (``deploy/apisix/routes.yaml`` never routes it). Either way
its series are bounded: `api.request_metrics` labels by route template and known method only.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SettingsDep
from api.request_metrics import ApiMetrics

router = APIRouter(tags=["operations"])

METRICS_UNAUTHORIZED = "A valid metrics token is required."


def _authorized(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text exposition of the API's own collectors."""
    token = settings.metrics_token.get_secret_value()
    if token and not _authorized(request, token):
        raise HTTPException(401, METRICS_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    api_metrics: ApiMetrics = request.app.state.metrics
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
