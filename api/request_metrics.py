"""Prometheus metrics for the API: request counts and latencies by route template."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """The API's collectors, in a registry of their own so several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "polyvision_api_requests_total",
            "HTTP requests answered by the API.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "polyvision_api_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
        )


# The methods a label may name; any other (a client may send any token as the method) is
# counted as OTHER, so requests cannot mint new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    """``method`` when it is one of `KNOWN_METHODS`, else `OTHER_METHOD`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class MetricsMiddleware:
    """Pure ASGI middleware: labels by route template, never by raw path, and by known method,
    never by whatever a client sends (bounded cardinality: the routes times seven methods and
    OTHER times the statuses)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = (
                route.path
                if isinstance(route, BaseRoute) and hasattr(route, "path")
                else UNMATCHED_ROUTE
            )
            method = method_label(str(scope.get("method", "")))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
