"""Structured logging (structlog), the activity interceptor that binds run ids to logs, tracing.

Logs are JSON when stderr is not a TTY (workers and the API in production) and coloured
key-value lines on a terminal. Every log line written while an activity runs carries the
workflow id, run id, activity type, activity id and attempt, so an operator can go from a
line in the logs to the run in the Temporal UI.

Traces: `configure_tracing` installs an OpenTelemetry provider exporting over OTLP when an
endpoint is configured, and `tracing_interceptor` is the Temporal interceptor every client gets
(`polyvision.temporal.client.connect`), so one trace runs from a workflow's start to its last
activity across processes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from temporalio.contrib.opentelemetry import TracingInterceptor


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Route structlog and the standard library's logging through one renderer.

    Args:
        level: minimum level name (``DEBUG``, ``INFO``, ...).
        json: force JSON (True) or console (False) output; None picks JSON unless stderr
            is a TTY.
    """
    use_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs and the SDK's per-poll chatter drown the pipeline's own lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _identity(
    _logger: Any, _name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event_dict


def activity_log_context(info: activity.Info) -> dict[str, Any]:
    """The log fields that identify one activity attempt."""
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "activity_id": info.activity_id,
        "attempt": info.attempt,
        "task_queue": info.task_queue,
    }


class _BindingActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # The SDK copies the current context into the executor thread of a synchronous
        # activity, so variables bound here reach its log calls too.
        with structlog.contextvars.bound_contextvars(**activity_log_context(activity.info())):
            return await self.next.execute_activity(input)


class LoggingInterceptor(Interceptor):
    """Worker interceptor that binds workflow and activity ids to every activity log line."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindingActivityInbound(next)


# -- tracing ---------------------------------------------------------------------------------

OTLP_EXPORTER_REQUIREMENT = "opentelemetry-exporter-otlp-proto-http"
"""The package `configure_tracing` exports spans with; not needed without an OTLP endpoint."""


def otlp_endpoint_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP endpoint the standard OpenTelemetry variables name, else None.

    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the full URL) wins over
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL, ``/v1/traces`` appended), as the OTLP exporter
    itself reads them; ``PV_OTLP_ENDPOINT`` is a base URL too, for a `.env` beside the others.
    """
    env = os.environ if environ is None else environ
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("PV_OTLP_ENDPOINT") or "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def configure_tracing(
    service_name: str,
    endpoint: str | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Install a global tracer provider that exports spans, when there is somewhere to send them.

    Without an endpoint and an exporter nothing is installed: OpenTelemetry's API stays a no-op,
    the Temporal tracing interceptor creates non-recording spans, and nothing is exported.

    Args:
        service_name: ``service.name`` of every span (``polyvision-worker``, ``polyvision-api``).
        endpoint: OTLP/HTTP traces URL; `otlp_endpoint_from_env` if None.
        exporter: Export to this instead of OTLP (tests pass an in-memory exporter; spans are
            then exported synchronously, as each ends).

    Returns:
        The installed provider (call ``shutdown()`` on exit to flush), or None.

    Raises:
        RuntimeError: An endpoint is configured but the OTLP exporter package is missing.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        endpoint = endpoint or otlp_endpoint_from_env()
        if not endpoint:
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise RuntimeError(
                f"traces go to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT) but the OTLP exporter is"
                f" not installed: pip install {OTLP_EXPORTER_REQUIREMENT}"
            ) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptor(tracer: Tracer | None = None) -> TracingInterceptor:
    """Temporal's OpenTelemetry interceptor, for a client (its workers inherit it).

    On the client it wraps workflow starts, signals, queries and updates in spans and passes the
    span context in a header; on workers it continues the trace: ``StartWorkflow:X`` →
    ``RunWorkflow:X`` → ``StartActivity:Y`` → ``RunActivity:Y`` (and ``StartChildWorkflow:Z`` →
    ``RunWorkflow:Z`` for children), all in one trace. Workflow spans are zero-length markers
    (the interceptor's design: a replayed workflow must not re-emit them).

    Args:
        tracer: The tracer; the global provider's if None (resolved when spans start, so
            `configure_tracing` may run before or after).
    """
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(tracer)
