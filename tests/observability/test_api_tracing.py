"""The API is part of the match's trace: the request that starts a workflow is its parent.

A minimal app with `TracingMiddleware` and a route that starts a workflow through a client
carrying Temporal's tracing interceptor (as `api.app` does with the upload completion), against
the dev server; the spans go to an in-memory exporter.
"""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from api.middleware.tracing import TracingMiddleware
from polyvision.telemetry import tracing_interceptor
from polyvision.temporal import names
from polyvision.temporal.client import connect
from tests.fixtures.temporal import TemporalTestServer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def _traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [span] = [span for span in spans if span.name == name]
    return span


async def test_the_workflow_start_is_a_child_of_the_request_span(
    temporal_server: TemporalTestServer, task_queue: str
) -> None:
    provider, exporter = _traced()
    client = await connect(
        temporal_server.address,
        temporal_server.namespace.name,
        interceptors=[tracing_interceptor(provider.get_tracer("temporal"))],
    )
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=provider.get_tracer("api"))
    workflow_id = f"traced-{uuid.uuid4().hex[:8]}"

    @app.post("/matches/{match_id}/start")
    async def start_match(match_id: str) -> dict[str, str]:
        # Nobody polls this queue: only the start is traced here.
        handle = await client.start_workflow(
            names.HEALTH_CHECK_WORKFLOW, {"queues": []}, id=workflow_id, task_queue=task_queue
        )
        return {"workflow_id": handle.id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        response = await http.post(
            "/matches/m1/start",
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"},
        )
    assert response.status_code == 200
    await client.get_workflow_handle(workflow_id).terminate("test done")

    spans = exporter.get_finished_spans()
    provider.shutdown()
    server = _one(spans, "POST /matches/{match_id}/start")
    start = _one(spans, f"StartWorkflow:{names.HEALTH_CHECK_WORKFLOW}")
    # One trace: the caller's, continued by the API and by the workflow start.
    assert {format(span.context.trace_id, "032x") for span in spans} == {TRACE_ID}
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == CALLER_SPAN_ID
    assert start.parent is not None and start.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/matches/{match_id}/start"
    assert server.attributes["url.path"] == "/matches/m1/start"
    assert server.attributes["http.response.status_code"] == 200


async def test_without_traceparent_a_request_starts_a_trace_and_errors_are_marked() -> None:
    provider, exporter = _traced()
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=provider.get_tracer("api"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        assert (await http.get("/boom")).status_code == 500
        assert (await http.get("/nowhere")).status_code == 404
    spans = exporter.get_finished_spans()
    provider.shutdown()
    failed = _one(spans, "GET /boom")
    assert failed.parent is None
    assert failed.status.status_code is StatusCode.ERROR
    unmatched = _one(spans, "GET")  # no route: the method alone, never the raw path
    assert unmatched.status.status_code is StatusCode.UNSET
    assert unmatched.attributes is not None
    assert unmatched.attributes["http.response.status_code"] == 404
