"""A server span per HTTP request, continuing the caller's trace (W3C ``traceparent``).

Pure ASGI middleware on OpenTelemetry's API (no instrumentation package): the incoming
``traceparent``/``tracestate`` headers are extracted with the global propagator, a ``SERVER``
span is started as the current span, and everything the request does runs inside it. The
Temporal client's tracing interceptor (`polyvision.temporal.client.connect`) starts its
``StartWorkflow:MatchWorkflow`` span from the current context, so the workflow a completed
upload starts, and every activity of it, is one trace with the request that started it.

The span is named ``{METHOD} {route template}`` once routing has found the route, or just the
method when nothing matched (bounded names: never the raw path), with the stable HTTP
semantic-convention attributes. A 5xx answer, or an exception, sets the span's status to error.
Without a configured tracer provider (`polyvision.telemetry.configure_tracing`) the spans are
non-recording and cost next to nothing.
"""

from __future__ import annotations

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "polyvision.api"


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers as a carrier for the propagator (lower-case names)."""
    carrier: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        carrier[name] = f"{carrier[name]},{value}" if name in carrier else value
    return carrier


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    if isinstance(route, BaseRoute) and hasattr(route, "path"):
        return str(route.path)
    return None


class TracingMiddleware:
    """Start a ``SERVER`` span per HTTP request, child of the incoming ``traceparent``."""

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        """Args:
        app: The application to wrap.
        tracer: The tracer; the global provider's if None (looked up per request, so
            `configure_tracing` may run after the app was built).
        """
        self.app = app
        self._tracer = tracer

    def _get_tracer(self) -> Tracer:
        return self._tracer or trace.get_tracer(TRACER_NAME)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        parent = propagate.extract(_headers(scope))
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": str(scope.get("path", "")),
            "url.scheme": str(scope.get("scheme", "http")),
        }
        if scope.get("query_string"):
            attributes["url.query"] = scope["query_string"].decode("latin-1")
        client = scope.get("client")
        if client:
            attributes["client.address"] = str(client[0])
        span = self._get_tracer().start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        status_code = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                span.set_attribute("http.response.status_code", status_code)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        else:
            if status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        finally:
            _name(span, method, scope)
            context.detach(token)
            span.end()


def _name(span: Span, method: str, scope: Scope) -> None:
    template = _route_template(scope)
    if template is not None:
        span.set_attribute("http.route", template)
        span.update_name(f"{method} {template}")
